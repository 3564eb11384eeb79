"""IAM policy read-modify-write logic for the two policies the operator touches.

- The Cloud Run service policy: the IAP service agent must hold ``roles/run.invoker``; a public invoker
  binding (``allUsers``/``allAuthenticatedUsers``) on an IAP-protected service is removed (fail closed).
- The IAP resource policy: the declared accessors hold ``roles/iap.httpsResourceAccessor``; an accessor
  with an expiry gets a conditional binding ``request.time < timestamp(...)`` (policy version 3).

Every function takes the observed policy dict and returns a new one plus what changed; the caller
writes it back with the observed etag, so a concurrent writer makes the write fail and the whole
read-modify-write is retried. Bindings for other roles, and other members where the mode says so, are
never touched.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from iaprun_operator.core.model import Accessor, AccessorsPolicy, is_public_member, normalise_member
from iaprun_operator.core.names import IAP_ACCESSOR_ROLE, RUN_INVOKER_ROLE

Policy = dict[str, Any]

EXPIRY_TITLE = "iaprun-expiry"
_EXPIRY_RE = re.compile(r'^request\.time\s*<\s*timestamp\("([^"]+)"\)$')


def expiry_expression(expires: datetime) -> str:
    return f'request.time < timestamp("{format_time(expires)}")'


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expiry_of(condition: Mapping[str, Any] | None) -> datetime | None:
    """The expiry of a condition the operator wrote, or None for anything else."""
    if not condition:
        return None
    match = _EXPIRY_RE.match(str(condition.get("expression", "")).strip())
    if not match:
        return None
    try:
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


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


def _accessor_members(policy: Mapping[str, Any]) -> dict[str, datetime | None]:
    """Members holding the accessor role, each with its expiry (None: unconditional or foreign cond)."""
    held: dict[str, datetime | None] = {}
    for b in policy.get("bindings") or ():
        if b.get("role") != IAP_ACCESSOR_ROLE:
            continue
        expiry = expiry_of(b.get("condition"))
        for m in b.get("members") or ():
            held[normalise_member(m)] = expiry
    return held


def _is_ours(binding: Mapping[str, Any]) -> bool:
    """Accessor bindings the operator may rewrite: unconditional ones and its own expiry conditions."""
    cond = binding.get("condition")
    return not cond or (cond.get("title") == EXPIRY_TITLE and expiry_of(cond) is not None)


def plan_accessors(
    policy: Mapping[str, Any],
    accessors: Sequence[Accessor],
    *,
    mode: AccessorsPolicy,
    ledger: Sequence[str],
    now: datetime,
) -> AccessorPlan:
    """Compute the accessor bindings for ``mode``.

    Authoritative: the role's bindings become exactly the live accessors; everyone else is removed.
    Additive: live accessors are added; members in ``ledger`` (added earlier by this object) that are no
    longer declared are removed; every other member is left alone and reported as foreign.
    """
    live = [a for a in accessors if a.expires is None or a.expires > now]
    wanted = {a.member: a.expires for a in live}
    held = _accessor_members(policy)
    # Reported once: when the expired binding is still there to remove.
    expired = tuple(a.member for a in accessors if a.expires is not None and a.expires <= now and a.member in held)
    bindings = _bindings(policy)
    others = [b for b in bindings if b.get("role") != IAP_ACCESSOR_ROLE]
    accessor_bindings = [b for b in bindings if b.get("role") == IAP_ACCESSOR_ROLE]

    if mode is AccessorsPolicy.AUTHORITATIVE:
        foreign_kept: list[dict[str, Any]] = []
        removable = set(held) - set(wanted)
        foreign: tuple[str, ...] = ()
        new_ledger: tuple[str, ...] = ()
    else:
        drop = set(ledger) - set(wanted)
        foreign_kept = []
        for b in accessor_bindings:
            members = [m for m in b.get("members") or () if normalise_member(m) not in wanted and m not in drop]
            if not members:
                continue
            if _is_ours(b) and b.get("condition"):
                # Another member inside one of our expiry bindings: keep it with its own condition.
                foreign_kept.append({**b, "members": members})
            elif _is_ours(b):
                foreign_kept.append({"role": IAP_ACCESSOR_ROLE, "members": members})
            else:
                foreign_kept.append({**b, "members": members})
        removable = drop & set(held)
        foreign = tuple(sorted(m for m in held if m not in wanted and m not in drop))
        # A declared member that already held the role was granted by someone else: not ours to remove
        # later, so it does not enter the ledger.
        new_ledger = tuple(sorted(m for m in wanted if m in ledger or m not in held))

    by_expiry: dict[datetime | None, list[str]] = {}
    for member, expires in sorted(wanted.items()):
        by_expiry.setdefault(expires, []).append(member)
    ours: list[dict[str, Any]] = []
    for expires, members in sorted(by_expiry.items(), key=lambda kv: (kv[0] is not None, kv[0] or now)):
        binding: dict[str, Any] = {"role": IAP_ACCESSOR_ROLE, "members": members}
        if expires is not None:
            binding["condition"] = {
                "title": EXPIRY_TITLE,
                "description": "Access granted by iap-run-operator until this time",
                "expression": expiry_expression(expires),
            }
        ours.append(binding)

    new = _finish(policy, others + foreign_kept + ours)
    changed = not same_bindings(policy, new)
    added = tuple(sorted(m for m in wanted if m not in held or held[m] != wanted[m]))
    next_expiry = min((e for e in wanted.values() if e is not None), default=None)
    return AccessorPlan(
        policy=new if changed else None,
        effective=tuple(sorted(live, key=lambda a: a.member)),
        added=added,
        removed=tuple(sorted(removable)),
        expired=expired,
        foreign=foreign,
        ledger=new_ledger,
        next_expiry=next_expiry,
    )
