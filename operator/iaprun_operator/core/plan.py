"""The plan as people read it: what a ``Full`` pass would write, as structured entries and a one-line summary.

Pure rendering of the decisions the steps already made (``steps.service.plan``, ``core.iam.plan_invoker``,
``core.iam.plan_accessors``): it decides nothing itself, so the plan shown under ``ObserveOnly`` and by
``iaprun plan`` cannot differ from what a pass writes. Service fields are the ``updateMask`` paths with their
values from -> to (the template broken down to the leaves the spec declares); IAM entries are the grants a
policy write adds or removes, per role and condition, computed from the policy read and the policy to write;
IAP settings entries are ``steps.iapsettings.plan``'s own changes (IAP v1 paths, from -> to, a client secret only
ever shown as ``(secret)``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from iaprun_operator.core.iapsettings import FieldChange as SettingChange
from iaprun_operator.core.model import is_public_member, normalise_member
from iaprun_operator.core.names import (
    ABANDONED_BY_ANNOTATION,
    DELETION_POLICY_ANNOTATION,
    OWNER_ANNOTATION,
    OWNER_LABEL,
)
from iaprun_operator.core.service import contains  # the comparison the update itself uses

_MAX_VALUE = 1024
SERVICE_POLICY = "Service"
IAP_POLICY = "IAP"
OWNERSHIP_FIELDS = frozenset(
    {
        f"labels.{OWNER_LABEL}",
        f"annotations.{OWNER_ANNOTATION}",
        f"annotations.{DELETION_POLICY_ANNOTATION}",
        f"annotations.{ABANDONED_BY_ANNOTATION}",
    }
)
"""The operator's own marks on a service it adopts: listed in the plan (a pass writes them), but no change to the
service's configuration or access, so a plan holding only these is empty."""


@dataclass(frozen=True)
class FieldChange:
    """One service field the pass writes: its path (dotted, list indexes in brackets), before and after."""

    path: str
    before: Any
    after: Any

    @property
    def ownership(self) -> bool:
        return self.path in OWNERSHIP_FIELDS

    def to_status(self) -> dict[str, str]:
        return {"field": self.path, "from": _text(self.before), "to": _text(self.after)}


@dataclass(frozen=True)
class GrantChange:
    """One member gaining or losing one role on one policy (under a condition, when the binding has one)."""

    policy: str
    role: str
    member: str
    action: str
    """"Grant" or "Revoke"."""
    condition: str = ""

    @property
    def public(self) -> bool:
        return is_public_member(self.member)

    def to_status(self) -> dict[str, str]:
        entry = {"policy": self.policy, "role": self.role, "member": self.member, "action": self.action}
        if self.condition:
            entry["condition"] = self.condition
        return entry


@dataclass(frozen=True)
class Plan:
    """Every change a ``Full`` pass would make right now (empty: it would write nothing)."""

    service_action: str = "Keep"
    """Create, Update, Keep, or Refuse (the service is not this object's to touch)."""
    fields: tuple[FieldChange, ...] = ()
    grants: tuple[GrantChange, ...] = ()
    refusal: str = ""
    notes: tuple[str, ...] = ()
    """What the pass would announce without writing (a public binding kept under Report, an adoption)."""
    settings: tuple[SettingChange, ...] = ()
    """IAP settings fields the pass writes (set or cleared), as the settings step decided them."""

    @property
    def changes(self) -> int:
        """Changes to the service's configuration or access (the ownership marks of an adoption not counted)."""
        created = self.service_action == "Create"
        return created + len([f for f in self.fields if not f.ownership]) + len(self.grants) + len(self.settings)

    @property
    def empty(self) -> bool:
        return self.changes == 0

    @property
    def marks_only(self) -> bool:
        """A pass would write only the ownership marks (adopting a service exactly as it is)."""
        return self.empty and bool(self.fields)

    def summary(self) -> str:
        if self.refusal:
            return f"no change possible: {self.refusal}"
        if self.marks_only:
            return (
                "no changes: the service and its access are as the spec declares (adopting writes the ownership marks)"
            )
        if self.empty:
            return "no changes: the service and its access are as the spec declares"
        parts = []
        updated = sorted({f.path.split(".")[0].split("[")[0] for f in self.fields if not f.ownership})
        if self.service_action == "Create":
            parts.append("create the service")
        elif updated:
            parts.append(f"update {', '.join(updated)}")
        for action, verb in (("Grant", "grant"), ("Revoke", "revoke")):
            found = [g for g in self.grants if g.action == action]
            if found:
                parts.append(f"{verb} {', '.join(sorted({f'{g.role} to {g.member}' for g in found}))}")
        if self.settings:
            parts.append(f"set IAP settings {', '.join(c.path for c in self.settings)}")
        return "; ".join(parts)

    def to_status(self, generation: int) -> dict[str, Any]:
        public = [g for g in self.grants if g.public]
        return {
            "observedGeneration": generation,
            "changes": self.changes,
            "summary": self.summary()[:2048],
            "service": {"action": self.service_action, "fields": [f.to_status() for f in self.fields]},
            "iam": [g.to_status() for g in self.grants if not g.public],
            "publicBindings": [g.to_status() for g in public],
            "iapSettings": [setting_status(c) for c in self.settings],
            "notes": list(self.notes),
        }


def setting_status(change: SettingChange) -> dict[str, str]:
    """One IAP settings entry: its IAP v1 path, before and after (a secret is ``(secret)``, a cleared field
    ``(unset)``)."""
    return {"field": change.path, "from": _text(change.before), "to": _text(change.after)}


def _text(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _at(value: Any, path: str) -> Any:
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _declared_leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Leaves of ``value`` with list items indexed (``containers[0].image``): what a template declares."""
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _declared_leaves(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for index, item in enumerate(value):
            yield from _declared_leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def field_changes(
    mask: Sequence[str], desired: Mapping[str, Any], observed: Mapping[str, Any] | None
) -> tuple[FieldChange, ...]:
    """The entries of a masked update (or a create, ``observed`` None: every field written, from unset)."""
    have: Mapping[str, Any] = observed or {}
    out: list[FieldChange] = []
    for top in mask:
        want, was = desired.get(top), have.get(top)
        if top in ("labels", "annotations"):
            keys = sorted(set(want or {}) | set(was or {}))
            out += [
                FieldChange(f"{top}.{k}", (was or {}).get(k), (want or {}).get(k))
                for k in keys
                if (was or {}).get(k) != (want or {}).get(k)
            ]
        elif top == "template" and isinstance(want, Mapping):
            leaves = [
                FieldChange(f"template.{p}", _at(was, p), v)
                for p, v in _declared_leaves(want, "")
                if not contains(v, _at(was, p), p.rsplit(".", 1)[-1])
            ]
            out += leaves or [FieldChange("template", "(as deployed)", "(the spec's template, written again)")]
        else:
            out.append(FieldChange(top, was, want))
    return tuple(out)


def _grants(policy: Mapping[str, Any] | None) -> set[tuple[str, str, str]]:
    return {
        (str(b.get("role")), normalise_member(str(m)), str((b.get("condition") or {}).get("expression", "")))
        for b in (policy or {}).get("bindings") or ()
        for m in b.get("members") or ()
    }


def grant_changes(kind: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[GrantChange]:
    """What writing ``after`` over ``before`` grants and revokes (None ``after``: nothing is written)."""
    if after is None:
        return []
    old, new = _grants(before), _grants(after)
    return [
        *(GrantChange(kind, r, m, "Grant", c) for r, m, c in sorted(new - old)),
        *(GrantChange(kind, r, m, "Revoke", c) for r, m, c in sorted(old - new)),
    ]
