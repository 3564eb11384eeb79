"""The IAP resource's IAM: roles/iap.httpsResourceAccessor for exactly the declared accessors.

``observe`` reads the IAP policy, ``plan`` is ``core.iam.plan_accessors`` wrapped in an ``AccessorStepPlan``
(which, under Additive, first records newcomers in the ledger and writes nothing), ``apply`` writes the
plan's policy, ``outcome`` reports status, conditions and Events.

A write that domain-restricted sharing refuses stalls the object (``OrgPolicyDenied``) and is recorded in
``status.iap.orgPolicyRefusal`` with a fingerprint of the refused policy and the generation: later passes make
the same write again only once the spec (generation) or the policy to write has changed, never in a loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError, Kind, Violation, org_policy_refusal
from iaprun_operator.core.iam import AccessorPlan, format_time, plan_accessors, policy_fingerprint
from iaprun_operator.core.model import Spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.ports import GooglePorts
from iaprun_operator.results import Event
from iaprun_operator.steps.common import StepOutcome, read_modify_write


@dataclass(frozen=True)
class AccessorStepPlan:
    decided: AccessorPlan
    record_first: bool
    """Additive: members about to be granted enter the ledger (status) before the grant. Granted first, a lost
    status write (a crash right after the grant) would leave them looking foreign for ever: never revoked when
    removed from the spec. This pass records them; the next one grants them."""

    @property
    def policy(self) -> dict[str, Any] | None:
        return None if self.record_first else self.decided.policy


@dataclass
class AccessorOutcome(StepOutcome):
    foreign: int | None = None
    """Members holding access this object does not declare (counted as a metric; None: not reported)."""


def plan(policy: dict[str, Any], spec: Spec, ledger: Sequence[str], now: datetime) -> AccessorStepPlan:
    decided = plan_accessors(policy, spec.iap.accessors, mode=spec.iap.policy, ledger=ledger, now=now)
    record_first = decided.policy is not None and not set(decided.ledger) <= set(ledger)
    return AccessorStepPlan(decided, record_first)


@dataclass(frozen=True)
class Context:
    """What the step knows of the object beyond its spec: the ledger, its generation, a recorded refusal."""

    ledger: Sequence[str]
    generation: int = 0
    refusal: Mapping[str, Any] | None = None


async def run(
    google: GooglePorts, spec: Spec, ref: ServiceRef, number: str, agent: str, known: Context, now: datetime
) -> AccessorOutcome:
    """The step: read-modify-write the IAP policy, then report."""
    resource = ref.iap_resource(number)
    attempted: list[str] = []

    async def write(policy: dict[str, Any]) -> Any:
        attempted.append(policy_fingerprint(policy))
        refused = known.refusal or {}
        if refused.get("generation") == known.generation and refused.get("policy") == attempted[-1]:
            raise _recorded_refusal(refused)  # Google refused this very write: not sent again
        return await google.iap.set_iam_policy(resource, ref.project, policy)

    try:
        step_plan = await read_modify_write(
            lambda: google.iap.get_iam_policy(resource, ref.project),
            lambda policy: plan(policy, spec, known.ledger, now),
            write,
        )
    except GoogleError as error:
        if error.kind is not Kind.ORG_POLICY or not attempted:
            raise
        return _refused(error, resource, known.generation, attempted[-1])
    if step_plan.record_first:
        return _recorded(step_plan.decided, known.ledger)
    return outcome(step_plan.decided, agent, resource)


def _recorded_refusal(refused: Mapping[str, Any]) -> GoogleError:
    """The refusal recorded in status, as the error Google gave."""
    constraint = str(refused.get("constraint", ""))
    violations = tuple(Violation(constraint, f"configvalue={m}") for m in refused.get("members") or ())
    return GoogleError(
        Kind.ORG_POLICY, "refused earlier", api="iap", method="setIamPolicy", code=400, violations=violations
    )


def _refused(error: GoogleError, resource: str, generation: int, fingerprint: str) -> AccessorOutcome:
    refusal = org_policy_refusal(error)
    message = refusal.describe(resource)
    record = {
        "constraint": refusal.constraint,
        "members": list(refusal.members),
        "generation": generation,
        "policy": fingerprint,
    }
    return AccessorOutcome(
        status={"iap": {"orgPolicyRefusal": record}},
        conditions=[cond.Condition(cond.ACCESSORS_SYNCED, False, cond.ORG_POLICY_DENIED, message)],
        failure=cond.Failure(cond.ORG_POLICY_DENIED, message, stalled=True),
    )


def _recorded(decided: AccessorPlan, ledger: Sequence[str]) -> AccessorOutcome:
    newcomers = sorted(set(decided.ledger) - set(ledger))
    return AccessorOutcome(
        status={"iap": {"addedMembers": sorted(set(ledger) | set(decided.ledger))}},
        conditions=[cond.Condition(cond.ACCESSORS_SYNCED, False, "Granting", f"granting {', '.join(newcomers)}")],
        progress=cond.Progress("Updating", f"granting access to {', '.join(newcomers)}"),
    )


def outcome(decided: AccessorPlan, agent: str, resource: str) -> AccessorOutcome:
    role = "roles/iap.httpsResourceAccessor"
    out = AccessorOutcome(foreign=len(decided.foreign))
    if decided.added:
        out.events.append(Event.normal("AccessGranted", f"{role} granted to {', '.join(decided.added)}"))
    if decided.removed:
        out.events.append(Event.normal("AccessRevoked", f"{role} removed from {', '.join(decided.removed)}"))
    for binding in decided.removed_foreign:
        out.events.append(
            Event.warning(
                "ForeignBindingRemoved",
                f"{role} removed from {binding.describe()}: a condition this object does "
                "not declare (accessorsPolicy: Authoritative)",
            )
        )
    if decided.expired:
        out.events.append(Event.normal("AccessExpired", f"Access expired for {', '.join(decided.expired)}"))
    out.status["iap"] = {
        "serviceAgent": agent,
        "resource": resource,
        "accessors": [
            {
                "member": a.member,
                **({"expires": format_time(a.expires)} if a.expires else {}),
                **({"accessLevels": list(a.access_levels)} if a.access_levels else {}),
            }
            for a in decided.effective
        ],
        "foreignMembers": list(decided.foreign),
        "addedMembers": list(decided.ledger),
        "nextExpiry": format_time(decided.next_expiry) if decided.next_expiry else None,
        "orgPolicyRefusal": None,
    }
    out.conditions.append(
        cond.Condition(
            cond.ACCESSORS_SYNCED,
            True,
            "Synced",
            f"{len(decided.effective)} accessor(s) hold {role}" + _kept_note(decided),
        )
    )
    return out


def _kept_note(decided: AccessorPlan) -> str:
    if not decided.kept_conditional:
        return ""
    return (
        f"; {', '.join(decided.kept_conditional)} hold(s) it only under a condition set outside this object, "
        "kept as is (Additive never widens a conditional grant)"
    )
