"""The Cloud Run service's IAM: roles/run.invoker for the IAP service agent (IAP on) and no public invoker.

``observe`` reads the policy, ``plan`` is ``core.iam.plan_invoker`` (an ``InvokerPlan``: the policy to write or
None), ``apply`` writes that policy, repeated as a whole on a concurrent change; ``outcome`` reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.iam import InvokerPlan, plan_invoker
from iaprun_operator.core.model import PublicInvokerPolicy, Spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.ports import GooglePorts
from iaprun_operator.results import Event
from iaprun_operator.steps.common import StepOutcome, read_modify_write


@dataclass
class InvokerOutcome(StepOutcome):
    public_found: int = 0
    """Public members found holding run.invoker (counted as a metric)."""


def plan(policy: dict[str, Any], spec: Spec, member: str) -> InvokerPlan:
    return plan_invoker(
        policy,
        agent_member=member,
        grant=spec.iap.enabled,
        remove_public=spec.iap.public_invoker is PublicInvokerPolicy.REMOVE,
        protect=spec.iap.enabled,
    )


async def run(google: GooglePorts, spec: Spec, ref: ServiceRef, number: str, agent: str) -> InvokerOutcome:
    """The step: read-modify-write the service policy, then report what it found and did."""
    member = f"serviceAccount:{agent}"

    async def write(policy: dict[str, Any]) -> Any:
        if spec.iap.enabled:
            # The agent must exist before a policy names it. Made sure of only when granting (once per
            # project and process), so a pass that finds the grant in place makes no write at all.
            await google.projects.iap_agent(ref.project, number)
        return await google.run.set_iam_policy(ref, policy)

    try:
        decided = await read_modify_write(
            lambda: google.run.get_iam_policy(ref), lambda policy: plan(policy, spec, member), write
        )
    except GoogleError as error:
        if error.kind is Kind.INVALID and "does not exist" in error.message:
            # First use of IAP in a project: the agent takes a while to become usable (gcloud waits too).
            return InvokerOutcome(
                conditions=[cond.Condition(cond.INVOKER_GRANTED, False, "ServiceAgentNotReady", error.message)],
                failure=cond.Failure(
                    "DependencyNotReady", f"IAP service agent not usable yet: {error.message}", stalled=False
                ),
            )
        raise
    return outcome(decided, spec, ref, member, agent)


def outcome(decided: InvokerPlan, spec: Spec, ref: ServiceRef, member: str, agent: str) -> InvokerOutcome:
    out = InvokerOutcome(status={"iap": {"serviceAgent": agent}}, public_found=len(decided.public_members))
    if decided.public_members:
        action = "removed" if decided.removed_public else "kept (publicInvokerBindings: Report)"
        out.events.append(
            Event.warning(
                "PublicInvokerBinding",
                f"run.invoker was granted to {', '.join(decided.public_members)} on {ref.name}; {action}",
            )
        )
    if decided.policy is not None and spec.iap.enabled:
        out.events.append(Event.normal("InvokerGranted", f"Granted roles/run.invoker on {ref.service} to {member}"))
    elif decided.policy is not None and not decided.removed_public:
        out.events.append(Event.normal("InvokerRevoked", f"Removed roles/run.invoker of {member} (IAP is off)"))
    if spec.iap.enabled:
        out.conditions.append(
            cond.Condition(cond.INVOKER_GRANTED, True, "Granted", f"{member} holds roles/run.invoker on the service")
        )
    else:
        out.conditions.append(
            cond.Condition(cond.INVOKER_GRANTED, True, "NotRequired", "IAP is off; no agent grant needed")
        )
    return out
