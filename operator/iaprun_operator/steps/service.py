"""The Cloud Run service: create it, adopt it, or bring its fields back to the spec; report its readiness.

``observe`` reads the service, ``plan`` decides (a ``ServicePlan`` value: what would be written and why),
``apply`` writes exactly that plan, ``outcome`` turns plan and observation into conditions, status and Events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.model import Adoption, Spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.service import (
    abandoned_by,
    applied_status,
    desired_service,
    listing_confirms,
    observed_status,
    ownership,
    plan_update,
    template_hash,
)
from iaprun_operator.ports import GooglePorts
from iaprun_operator.results import Event, ObjectView
from iaprun_operator.scope import authorise
from iaprun_operator.settings import Settings
from iaprun_operator.steps.readiness import ServiceOutcome, iap_condition, readiness


class ServiceAction(Enum):
    CREATE = "create"
    UPDATE = "update"
    KEEP = "keep"
    """The service is as the spec says: nothing to write."""
    REFUSE = "refuse"
    """The service is not this object's to touch."""


@dataclass(frozen=True)
class ServicePlan:
    """What the step will do to the service, decided before anything is written."""

    ref: ServiceRef
    action: ServiceAction
    desired_hash: str
    body: Mapping[str, Any] | None = None
    """The service to create, or the desired service an update writes the ``mask`` of."""
    mask: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    notices: tuple[Event, ...] = ()
    """Events announced before the write (recreating, adopting): posted even if the write then fails."""
    refusal: cond.Failure | None = None


async def observe(google: GooglePorts, ref: ServiceRef) -> dict[str, Any] | None:
    return await google.run.get(ref)


async def observe_and_plan(
    google: GooglePorts, obj: ObjectView, spec: Spec, ref: ServiceRef, settings: Settings
) -> tuple[dict[str, Any] | None, ServicePlan]:
    """The service and the plan for it. A routine pass (drift, resume) takes the service from a recent regional
    listing when that copy only confirms what the status shows (nothing to write, ready and settled, the same
    revision and URL); anything else, and every other pass, reads the service itself."""
    if obj.listing_age > 0 and _was_ready(obj.status):
        # Only a Ready object's status can be confirmed by a listed copy: any other would list, then read anyway.
        listed = await google.run.listed(ref, max_age=obj.listing_age)
        if listed is not None and listing_confirms(obj.status, listed):
            decided = plan(obj, spec, ref, listed, settings)
            if decided.action is ServiceAction.KEEP and not decided.notices:
                return listed, decided
    observed = await observe(google, ref)
    return observed, plan(obj, spec, ref, observed, settings)


def _was_ready(status: Mapping[str, Any]) -> bool:
    return cond.holds(status.get("conditions") or (), cond.READY)


def plan(
    obj: ObjectView, spec: Spec, ref: ServiceRef, observed: Mapping[str, Any] | None, settings: Settings
) -> ServicePlan:
    owner = obj.owner
    desired_hash = template_hash(spec)
    if observed is None:
        notices: tuple[Event, ...] = ()
        if obj.status.get("externalRef") == ref.name and obj.status.get("templateHash"):
            notices = (Event.warning("Recreating", f"{ref.name} disappeared outside the operator; creating it again"),)
        body = desired_service(spec, owner)
        return ServicePlan(ref, ServiceAction.CREATE, desired_hash, body=body, notices=notices)
    notices = ()
    claimed = ownership(observed)
    if claimed != owner.label:
        if claimed is not None or spec.adoption is not Adoption.IF_UNOWNED:
            return ServicePlan(ref, ServiceAction.REFUSE, desired_hash, refusal=_conflict(ref, claimed))
        adoption = _adoption(obj, spec, ref, observed, settings)
        if isinstance(adoption, cond.Failure):
            return ServicePlan(ref, ServiceAction.REFUSE, desired_hash, refusal=adoption)
        notices = (adoption,)
    applied = obj.status.get("applied") or {}
    desired = desired_service(spec, owner, observed, applied)
    update = plan_update(
        desired,
        observed,
        applied_hash=obj.status.get("templateHash"),
        desired_hash=desired_hash,
        applied_fields=applied.get("fields"),
    )
    if not update:
        return ServicePlan(ref, ServiceAction.KEEP, desired_hash, notices=notices)
    return ServicePlan(
        ref,
        ServiceAction.UPDATE,
        desired_hash,
        body=desired,
        mask=tuple(update.mask),
        reasons=tuple(update.reasons),
        notices=notices,
    )


def _conflict(ref: ServiceRef, claimed: str | None) -> cond.Failure:
    holder = "another IapRunService or cluster" if claimed else "nobody (it was not created by this operator)"
    return cond.Failure(
        "ManagementConflict",
        f"Cloud Run service {ref.name} exists and is owned by {holder}; it was left untouched. "
        "Set spec.adoption: IfUnowned to take over an unowned service",
        stalled=True,
    )


def _adoption(
    obj: ObjectView, spec: Spec, ref: ServiceRef, observed: Mapping[str, Any], settings: Settings
) -> Event | cond.Failure:
    """Adopt an unowned service only where the rule allows it, or when this same owner abandoned it."""
    if abandoned_by(observed) == obj.owner.label:
        return Event.normal("Adopting", f"Taking back Cloud Run service {ref.name}, which this object abandoned")
    denied = authorise(obj, spec, ref.project, settings, adopting=True)
    if denied:
        return cond.Failure("PolicyDenied", denied, stalled=True)
    return Event.normal("Adopting", f"Taking over unowned Cloud Run service {ref.name} (adoption: IfUnowned)")


async def apply(google: GooglePorts, plan: ServicePlan, spec: Spec) -> cond.Failure | None:
    """Write the plan; a failure that retrying cannot mend is returned, other Google errors raised."""
    if plan.action is ServiceAction.CREATE:
        assert plan.body is not None
        try:
            await google.run.create(plan.ref, plan.body)
        except GoogleError as error:
            if error.kind is not Kind.NOT_FOUND:
                raise
            # Not found on create: the parent does not exist. The project exists (its number was read), so it
            # is the region; retrying cannot help.
            message = f"Cloud Run has no region {spec.region!r}: {error.message}"
            return cond.Failure("InvalidSpec", message, stalled=True)
    elif plan.action is ServiceAction.UPDATE:
        assert plan.body is not None
        await google.run.update(plan.ref, plan.body, plan.mask)
    return None


async def run(google: GooglePorts, obj: ObjectView, spec: Spec, ref: ServiceRef, settings: Settings) -> ServiceOutcome:
    """The step: observe, plan, apply, outcome."""
    observed, decided = await observe_and_plan(google, obj, spec, ref, settings)
    out = ServiceOutcome(events=list(decided.notices))
    if decided.refusal is not None:
        out.failure = decided.refusal
        return out
    if observed is not None:
        out.status.update(observed_status(observed))
    try:
        out.failure = await apply(google, decided, spec)
    except GoogleError as error:
        out.error = error
        return out
    if out.failure is None:
        outcome(decided, spec, obj, observed, out)
    return out


def outcome(
    plan: ServicePlan, spec: Spec, obj: ObjectView, observed: Mapping[str, Any] | None, out: ServiceOutcome
) -> None:
    """Fill ``out`` with what the written (or kept) plan means for conditions, status and Events."""
    out.status["templateHash"] = plan.desired_hash
    applied = applied_status(spec, obj.status.get("applied"))
    if applied is not None:
        out.status["applied"] = applied
    out.proceed = True
    if plan.action is ServiceAction.CREATE:
        _created(plan, spec, out)
    elif plan.action is ServiceAction.UPDATE:
        assert observed is not None
        _updated(plan, spec, observed, out)
    else:
        assert observed is not None
        out.conditions.append(iap_condition(spec, bool(observed.get("iapEnabled")), pending=False))
        readiness(plan.ref, obj, observed, out)


def _created(plan: ServicePlan, spec: Spec, out: ServiceOutcome) -> None:
    out.events.append(
        Event.normal(
            "Created",
            f"Creating Cloud Run service {plan.ref.name} with IAP {'enabled' if spec.iap.enabled else 'disabled'}",
        )
    )
    out.progress = cond.Progress("Creating", f"Cloud Run is creating {plan.ref.name}")
    out.conditions += [
        cond.Condition(cond.SERVICE_READY, False, "Creating", "Cloud Run is deploying the first revision"),
        cond.Condition(
            cond.IAP_ENABLED, True, "Enabled" if spec.iap.enabled else "Disabled", "Set when the service was created"
        ),
    ]


def _updated(plan: ServicePlan, spec: Spec, observed: Mapping[str, Any], out: ServiceOutcome) -> None:
    mask = ", ".join(plan.mask)
    out.events.append(Event.normal("Updated", f"Updating {mask}: {'; '.join(plan.reasons)}"))
    if "invokerIamDisabled" in plan.mask and not spec.invoker_iam_disabled:
        out.events.append(
            Event.warning(
                "InvokerIamCheckRestored",
                f"{plan.ref.name} had invokerIamDisabled: true (Cloud Run's public access, no run.invoker check), "
                "which the spec does not ask for; the invoker IAM check was turned back on",
            )
        )
    out.progress = cond.Progress("Updating", f"Cloud Run is applying {mask}")
    out.conditions.append(cond.Condition(cond.SERVICE_READY, False, "Updating", "; ".join(plan.reasons)))
    out.conditions.append(iap_condition(spec, bool(observed.get("iapEnabled")), pending="iapEnabled" in plan.mask))
