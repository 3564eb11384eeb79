"""IAM policy read-modify-write logic for the two policies the operator touches.

- The Cloud Run service policy: the IAP service agent must hold ``roles/run.invoker``; a public invoker
  binding (``allUsers``/``allAuthenticatedUsers``) on an IAP-protected service is removed (fail closed).
- The IAP resource policy: the declared accessors hold ``roles/iap.httpsResourceAccessor``; an accessor
  with an expiry or access levels gets ONE conditional binding (policy version 3) in IAP's documented form:
  ``"accessPolicies/N/accessLevels/L" in request.auth.access_levels`` (several levels joined by ``||``: any
  one of them lets the member in) and ``request.time < timestamp("...")``, joined by ``&&``. Titles are fixed
  (``iaprun-expiry`` for an expiry alone, as before; ``iaprun-access`` with access levels) and levels sorted, so
  an unchanged spec yields the identical binding and neither mode rewrites it. A conditional binding the
  operator did not write is never widened: Additive keeps it exactly as found, Authoritative removes it and
  says so.

Every function takes the observed policy dict and returns a new one plus what changed; the caller
writes it back with the observed etag, so a concurrent writer makes the write fail and the whole
read-modify-write is retried. Bindings for other roles, and other members where the mode says so, are
never touched.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from iaprun_operator.core.model import (
    ACCESS_LEVEL_RE,
    Accessor,
    AccessorsPolicy,
    is_public_member,
    normalise_member,
)
from iaprun_operator.core.names import IAP_ACCESSOR_ROLE, RUN_INVOKER_ROLE

Policy = dict[str, Any]

EXPIRY_TITLE = "iaprun-expiry"
ACCESS_TITLE = "iaprun-access"
_OUR_TITLES = frozenset({EXPIRY_TITLE, ACCESS_TITLE})
_EXPIRY_RE = re.compile(r'^request\.time\s*<\s*timestamp\("([^"]+)"\)$')
_LEVEL_RE = re.compile(r'^"(' + ACCESS_LEVEL_RE.pattern.strip("^$") + r')"\s+in\s+request\.auth\.access_levels$')


@dataclass(frozen=True)
class Grant:
    """The condition an accessor's grant carries: until when, and under which access levels (any of them)."""

    expires: datetime | None = None
    access_levels: tuple[str, ...] = ()

    @property
    def conditional(self) -> bool:
        return self.expires is not None or bool(self.access_levels)

    def condition(self) -> dict[str, str]:
        """The binding's condition (only for a conditional grant)."""
        parts = []
        if self.access_levels:
            levels = " || ".join(f'"{level}" in request.auth.access_levels' for level in self.access_levels)
            parts.append(f"({levels})" if len(self.access_levels) > 1 else levels)
        if self.expires is not None:
            parts.append(expiry_expression(self.expires))
        if not self.access_levels:
            return {
                "title": EXPIRY_TITLE,
                "description": "Access granted by iap-run-operator until this time",
                "expression": parts[0],
            }
        until = " until this time" if self.expires is not None else ""
        return {
            "title": ACCESS_TITLE,
            "description": f"Access granted by iap-run-operator under access levels{until}",
            "expression": " && ".join(parts),
        }

    def sort_key(self) -> tuple[bool, datetime, tuple[str, ...]]:
        return (self.expires is not None, self.expires or datetime.min.replace(tzinfo=UTC), self.access_levels)


def grant_of(accessor: Accessor) -> Grant:
    return Grant(accessor.expires, tuple(sorted(set(accessor.access_levels))))


def expiry_expression(expires: datetime) -> str:
    return f'request.time < timestamp("{format_time(expires)}")'


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expression(expression: str) -> Grant | None:
    """The grant an expression the operator writes stands for; None for any other expression."""
    expires: datetime | None = None
    levels: list[str] = []
    for part in (p.strip() for p in expression.strip().split(" && ")):
        expiry = _EXPIRY_RE.match(part)
        if expiry and expires is None:
            try:
                expires = datetime.fromisoformat(expiry.group(1).replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                return None
            continue
        if levels or expires is not None:
            return None  # levels come first, once
        inner = part[1:-1] if part.startswith("(") and part.endswith(")") else part
        for alternative in inner.split(" || "):
            level = _LEVEL_RE.match(alternative.strip())
            if not level:
                return None
            levels.append(level.group(1))
    grant = Grant(expires, tuple(levels))
    return grant if grant.conditional and list(grant.access_levels) == sorted(set(levels)) else None


def grant_of_condition(condition: Mapping[str, Any] | None) -> Grant | None:
    """The grant of a condition the operator wrote (its title and expression), or None for anything else."""
    if not condition or condition.get("title") not in _OUR_TITLES:
        return None
    return parse_expression(str(condition.get("expression", "")))


def expiry_of(condition: Mapping[str, Any] | None) -> datetime | None:
    """The expiry of an expiry-only condition the operator wrote, or None for anything else."""
    if not condition:
        return None
    grant = parse_expression(str(condition.get("expression", "")))
    return grant.expires if grant is not None and not grant.access_levels else None


def _bindings(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [copy.deepcopy(dict(b)) for b in policy.get("bindings") or ()]


def _canonical(bindings: Iterable[Mapping[str, Any]]) -> list[tuple[str, tuple[str, ...], str]]:
    out = []
    for b in bindings:
        members = tuple(sorted(set(b.get("members") or ())))
        if members:
            cond = b.get("condition") or {}
            out.append((str(b["role"]), members, str(cond.get("expression", ""))))
    return sorted(out)


def policy_fingerprint(policy: Mapping[str, Any]) -> str:
    """A short digest of a policy's bindings (order and duplicates aside), to recognise a write seen before."""
    digest = hashlib.sha256(json.dumps(_canonical(policy.get("bindings") or ())).encode()).hexdigest()
    return digest[:16]


def same_bindings(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _canonical(a.get("bindings") or ()) == _canonical(b.get("bindings") or ())


def _finish(policy: Mapping[str, Any], bindings: list[dict[str, Any]]) -> Policy:
    """A policy to write: empty bindings dropped, version 3 when any condition is present, etag kept."""
    kept = [b for b in bindings if b.get("members")]
    new: Policy = {"bindings": kept}
    conditional = any(b.get("condition") for b in kept)
    new["version"] = 3 if conditional else int(policy.get("version") or 1)
    if policy.get("etag"):
        new["etag"] = policy["etag"]
    return new


@dataclass(frozen=True)
class InvokerPlan:
    """The service policy to write (None: nothing to write) and what the plan found."""

    policy: Policy | None
    granted: bool
    public_members: tuple[str, ...] = ()
    removed_public: tuple[str, ...] = ()


def plan_invoker(
    policy: Mapping[str, Any], *, agent_member: str, grant: bool, remove_public: bool, protect: bool
) -> InvokerPlan:
    """Make the service policy say what the spec implies.

    ``grant``: the IAP agent must hold run.invoker unconditionally; otherwise (IAP turned off) the
    agent's binding is removed, as gcloud does for ``--no-iap``. ``protect``: the object declares the
    service IAP-protected, so a public run.invoker binding is reported and, with ``remove_public``,
    removed.
    """
    bindings = _bindings(policy)
    public: list[str] = []
    for b in bindings if protect else ():
        if b.get("role") == RUN_INVOKER_ROLE:
            public.extend(m for m in b.get("members") or () if is_public_member(m))
    removed: list[str] = []
    if protect and remove_public and public:
        for b in bindings:
            if b.get("role") == RUN_INVOKER_ROLE:
                before = list(b.get("members") or ())
                b["members"] = [m for m in before if not is_public_member(m)]
                removed.extend(m for m in before if is_public_member(m))
    invoker = [b for b in bindings if b.get("role") == RUN_INVOKER_ROLE and not b.get("condition")]
    if grant:
        holds = any(agent_member in (b.get("members") or ()) for b in invoker)
        if not holds:
            if invoker:
                invoker[0]["members"] = [*invoker[0].get("members", ()), agent_member]
            else:
                bindings.append({"role": RUN_INVOKER_ROLE, "members": [agent_member]})
    else:
        for b in invoker:
            b["members"] = [m for m in b.get("members") or () if m != agent_member]
    new = _finish(policy, bindings)
    changed = not same_bindings(policy, new)
    return InvokerPlan(
        policy=new if changed else None,
        granted=grant,
        public_members=tuple(public),
        removed_public=tuple(removed),
    )


@dataclass(frozen=True)
class RemovedBinding:
    """A conditional grant Authoritative mode removed that the operator did not write: who, under what."""

    members: tuple[str, ...]
    title: str
    expression: str

    def describe(self) -> str:
        return f"{', '.join(self.members)} under condition {self.title!r} ({self.expression})"


@dataclass(frozen=True)
class AccessorPlan:
    """The IAP policy to write (None: nothing to write) and the bookkeeping for status and Events."""

    policy: Policy | None
    effective: tuple[Accessor, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    expired: tuple[str, ...]
    foreign: tuple[str, ...]
    ledger: tuple[str, ...]
    next_expiry: datetime | None = None
    notes: Sequence[str] = field(default_factory=tuple)
    removed_foreign: tuple[RemovedBinding, ...] = ()
    """Authoritative: each foreign conditional binding removed (or left without some of its members)."""
    kept_conditional: tuple[str, ...] = ()
    """Additive: declared members someone else grants only under a condition; left as they are, not widened."""


def _accessor_members(policy: Mapping[str, Any]) -> dict[str, Grant]:
    """Members holding the accessor role, each with its grant (unconditional for a foreign condition)."""
    held: dict[str, Grant] = {}
    for b in policy.get("bindings") or ():
        if b.get("role") != IAP_ACCESSOR_ROLE:
            continue
        grant = grant_of_condition(b.get("condition")) or Grant()
        for m in b.get("members") or ():
            held[normalise_member(m)] = grant
    return held


def _is_ours(binding: Mapping[str, Any]) -> bool:
    """Accessor bindings the operator may rewrite: unconditional ones and its own conditions."""
    cond = binding.get("condition")
    return not cond or grant_of_condition(cond) is not None


def _grants(bindings: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(member, condition expression) pairs of the accessor role; "" is unconditional."""
    return {
        (normalise_member(m), str((b.get("condition") or {}).get("expression", "")))
        for b in bindings
        if b.get("role") == IAP_ACCESSOR_ROLE
        for m in b.get("members") or ()
    }


def _foreign_removed(
    accessor_bindings: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> tuple[RemovedBinding, ...]:
    """Authoritative: the foreign conditional grants that the new bindings no longer carry."""
    kept = _grants(new)
    out = []
    for b in accessor_bindings:
        if _is_ours(b):
            continue
        cond = b.get("condition") or {}
        expression = str(cond.get("expression", ""))
        gone = tuple(
            sorted({normalise_member(m) for m in b.get("members") or ()} - {m for m, e in kept if e == expression})
        )
        if gone:
            out.append(RemovedBinding(gone, str(cond.get("title", "")), expression))
    return tuple(out)


def _grant_bindings(wanted: Mapping[str, Grant]) -> list[dict[str, Any]]:
    """The operator's own bindings: one unconditional, one per distinct condition."""
    by_grant: dict[Grant, list[str]] = {}
    for member, grant in sorted(wanted.items()):
        by_grant.setdefault(grant, []).append(member)
    ours: list[dict[str, Any]] = []
    for grant, members in sorted(by_grant.items(), key=lambda kv: kv[0].sort_key()):
        binding: dict[str, Any] = {"role": IAP_ACCESSOR_ROLE, "members": members}
        if grant.conditional:
            binding["condition"] = grant.condition()
        ours.append(binding)
    return ours


def plan_accessors(
    policy: Mapping[str, Any],
    accessors: Sequence[Accessor],
    *,
    mode: AccessorsPolicy,
    ledger: Sequence[str],
    now: datetime,
) -> AccessorPlan:
    """Compute the accessor bindings for ``mode``.

    Authoritative: the role's bindings become exactly the live accessors; everyone else is removed, and
    each removed conditional binding the operator did not write is reported (``removed_foreign``).

    Additive: the object manages only the members of its ledger (the ones it granted) plus declared
    members nobody held yet. Every other grant of the role is left exactly as it is, binding for binding:
    a foreign conditional binding keeps all its members and its condition, even a declared member (it is
    not granted again without the condition: that would widen its access; ``kept_conditional`` says so).
    """
    live = [a for a in accessors if a.expires is None or a.expires > now]
    wanted = {a.member: grant_of(a) for a in live}
    held = _accessor_members(policy)
    # Reported once: when the expired binding is still there to remove.
    expired = tuple(a.member for a in accessors if a.expires is not None and a.expires <= now and a.member in held)
    bindings = _bindings(policy)
    others = [b for b in bindings if b.get("role") != IAP_ACCESSOR_ROLE]
    accessor_bindings = [b for b in bindings if b.get("role") == IAP_ACCESSOR_ROLE]
    if mode is AccessorsPolicy.AUTHORITATIVE:
        ours = _grant_bindings(wanted)
        return _plan(
            policy,
            _finish(policy, others + ours),
            live=live,
            granted=wanted,
            held=held,
            removed=tuple(sorted(set(held) - set(wanted))),
            expired=expired,
            foreign=(),
            ledger=(),
            removed_foreign=_foreign_removed(accessor_bindings, ours),
        )

    # A declared member that already held the role was granted by someone else: not ours to remove later,
    # so it does not enter the ledger, and its grant is not ours to rewrite.
    new_ledger = tuple(sorted(m for m in wanted if m in ledger or m not in held))
    managed = set(ledger) | set(new_ledger)
    kept, removed = _additive_kept(accessor_bindings, managed, dropped=set(ledger) - set(wanted))
    granted = {m: wanted[m] for m in new_ledger}
    unconditional = {m for m, e in _grants(kept) if not e or parse_expression(e) is not None}
    return _plan(
        policy,
        _finish(policy, others + kept + _grant_bindings(granted)),
        live=live,
        granted=granted,
        held=held,
        removed=tuple(sorted(removed)),
        expired=expired,
        foreign=tuple(sorted(m for m in held if m not in wanted and m not in ledger)),
        ledger=new_ledger,
        kept_conditional=tuple(sorted(m for m in wanted if m not in managed and m not in unconditional)),
    )


def _additive_kept(
    accessor_bindings: Sequence[dict[str, Any]], managed: set[str], *, dropped: set[str]
) -> tuple[list[dict[str, Any]], set[str]]:
    """Additive: the role's bindings without the members this object manages (it rewrites their grants), and
    which of its own former members (``dropped``: in the ledger, no longer declared) that removes."""
    kept: list[dict[str, Any]] = []
    removed: set[str] = set()
    for b in accessor_bindings:
        if not _is_ours(b):
            kept.append(b)  # foreign condition: exactly as found
            continue
        members = [m for m in b.get("members") or () if normalise_member(m) not in managed]
        removed.update(normalise_member(m) for m in b.get("members") or () if normalise_member(m) in dropped)
        if members:
            kept.append({**b, "members": members})
    return kept, removed


def _plan(
    policy: Mapping[str, Any],
    new: Policy,
    *,
    live: Sequence[Accessor],
    granted: Mapping[str, Grant],
    held: Mapping[str, Grant],
    **rest: Any,
) -> AccessorPlan:
    changed = not same_bindings(policy, new)
    return AccessorPlan(
        policy=new if changed else None,
        effective=tuple(sorted(live, key=lambda a: a.member)),
        added=tuple(sorted(m for m in granted if m not in held or held[m] != granted[m])),
        next_expiry=min((g.expires for g in granted.values() if g.expires is not None), default=None),
        **rest,
    )
