"""The one planner: what a ``Full`` pass would write right now, computed with the steps' own functions, read-only.

``ObserveOnly`` passes and the ``iaprun plan`` command call ``plan``; a ``Full`` pass calls the same
``steps.*.observe``/``plan`` functions and then writes. Nothing here decides anything the steps do not: it reads
what the steps read (the project's number, the service, the service's IAM policy, the IAP resource's IAM policy,
its IAP settings and the client secrets they name), asks each step's ``plan`` what it would write, and renders
the answer with ``core.plan``. It never writes, and never ensures the IAP service agent (a write a granting pass
makes first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from iaprun_operator.core import conditions as cond
from iaprun_operator.core.iapsettings import FieldChange as SettingChange
from iaprun_operator.core.model import PublicInvokerPolicy, Spec
from iaprun_operator.core.names import IAP_ACCESSOR_ROLE, RUN_INVOKER_ROLE, ServiceRef, iap_service_agent
from iaprun_operator.core.plan import IAP_POLICY, SERVICE_POLICY, Plan, field_changes, grant_changes
from iaprun_operator.core.service import observed_status
from iaprun_operator.ports import GooglePorts
from iaprun_operator.results import ObjectView
from iaprun_operator.settings import Settings
from iaprun_operator.steps import accessors, iapsettings, invoker, service
from iaprun_operator.steps.common import StepOutcome
from iaprun_operator.steps.readiness import ServiceOutcome, readiness

CHANGES_PENDING = "ChangesPending"


@dataclass(frozen=True)
class Observed:
    """What the planner read, kept for the status of an ``ObserveOnly`` pass."""

    service: Mapping[str, Any] | None
    number: str
    plan: Plan
    refusal: cond.Failure | None = None
    """Why a pass would not touch the service (ManagementConflict, PolicyDenied), as the pass reports it."""
    settings_failure: cond.Failure | None = None
    """Why the IAP settings could not be planned (a client secret that cannot be read: a pass stalls there)."""


async def plan(
    google: GooglePorts, obj: ObjectView, spec: Spec, ref: ServiceRef, settings: Settings, now: datetime
) -> Observed:
    """Read what a pass reads, and decide with the steps' plan functions; write nothing."""
    number = await google.projects.number(ref.project)
    observed = await service.observe(google, ref)
    decided = service.plan(obj, spec, ref, observed, settings)
    notes = tuple(e.message for e in decided.notices)
    if decided.refusal is not None:
        refused = Plan("Refuse", refusal=decided.refusal.message, notes=notes)
        return Observed(observed, number, refused, decided.refusal)
    updating = decided.action is service.ServiceAction.UPDATE and decided.body is not None
    fields = field_changes(decided.mask, decided.body or {}, observed) if updating else ()
    # A created service starts with empty policies: the pass that creates it plans its IAM against those.
    exists = observed is not None
    run_policy = await google.run.get_iam_policy(ref) if exists else {}
    resource = ref.iap_resource(number)
    iap_policy = await google.iap.get_iam_policy(resource, ref.project) if exists else {}
    invoker_plan = invoker.plan(run_policy, spec, f"serviceAccount:{iap_service_agent(number)}")
    ledger = list((obj.status.get("iap") or {}).get("addedMembers") or ())
    accessor_plan = accessors.plan(iap_policy, spec, ledger, now).decided
    grants = grant_changes(SERVICE_POLICY, run_policy, invoker_plan.policy)
    grants += grant_changes(IAP_POLICY, iap_policy, accessor_plan.policy)
    if invoker_plan.public_members and not invoker_plan.removed_public:
        notes += (
            f"{RUN_INVOKER_ROLE} held by {', '.join(invoker_plan.public_members)}: kept and reported "
            f"(publicInvokerBindings: {PublicInvokerPolicy.REPORT.value})",
        )
    changes, unplanned = await _settings(google, obj, spec, ref, resource, exists=exists)
    if unplanned is not None:
        notes += (f"IAP settings not planned: {unplanned.message}",)
    action = decided.action.value.capitalize()
    found = Plan(action, fields, tuple(grants), notes=notes, settings=changes)
    return Observed(observed, number, found, settings_failure=unplanned)


async def _settings(
    google: GooglePorts, obj: ObjectView, spec: Spec, ref: ServiceRef, resource: str, *, exists: bool
) -> tuple[tuple[SettingChange, ...], cond.Failure | None]:
    """The settings step's own decision; read only when the object declares settings or owns some (with neither,
    the step writes nothing). A service about to be created has no settings yet: planned against none."""
    ledger = iapsettings.managed_fields(obj)
    if spec.iap.settings is None and not ledger:
        return (), None
    try:
        if exists:
            observed = await iapsettings.observe(google, spec, ref, resource)
        else:
            observed = iapsettings.Observed({}, await iapsettings.read_secrets(google, spec, ref))
    except iapsettings.SecretUnavailableError as error:
        return (), error.failure
    return iapsettings.plan(observed, spec, ledger).changes, None


def outcome(obj: ObjectView, spec: Spec, ref: ServiceRef, seen: Observed) -> StepOutcome:
    """An ``ObserveOnly`` pass's report: the plan in status, step conditions saying what a pass would change, and
    the ``Synced`` condition carrying the one-line summary."""
    planned = seen.plan
    out = ServiceOutcome(status={"plan": planned.to_status(obj.generation), "projectNumber": seen.number})
    if seen.service is not None:
        out.status.update(observed_status(seen.service))
        readiness(ref, obj, seen.service, out)
    if seen.refusal is not None:
        out.failure = seen.refusal
        return out
    out.conditions += _step_conditions(spec, seen)
    synced = cond.Condition(cond.SYNCED, planned.empty, "ObserveOnly", f"ObserveOnly: {planned.summary()}")
    out.conditions.append(synced)
    return out


def _step_conditions(spec: Spec, seen: Observed) -> list[cond.Condition]:
    """What each step would change, in the step conditions (True: nothing to change there)."""
    planned = seen.plan
    pending: list[cond.Condition] = []
    if planned.service_action == "Create":
        pending.append(cond.Condition(cond.SERVICE_READY, False, CHANGES_PENDING, "the service does not exist"))
    iap = [f for f in planned.fields if f.path == "iapEnabled"]
    pending.append(
        cond.Condition(cond.IAP_ENABLED, False, CHANGES_PENDING, f"iapEnabled would be set to {spec.iap.enabled}")
        if iap
        else cond.Condition(cond.IAP_ENABLED, True, "Enabled" if spec.iap.enabled else "Disabled", "as declared")
    )
    for kind, policy, role in (
        (cond.INVOKER_GRANTED, SERVICE_POLICY, RUN_INVOKER_ROLE),
        (cond.ACCESSORS_SYNCED, IAP_POLICY, IAP_ACCESSOR_ROLE),
    ):
        found = [f"{g.action.lower()} {g.member}" for g in planned.grants if g.policy == policy]
        pending.append(
            cond.Condition(kind, False, CHANGES_PENDING, f"{role}: {', '.join(found)}")
            if found
            else cond.Condition(kind, True, "AsDeclared", f"{role} is as the spec declares")
        )
    return pending + _settings_condition(spec, seen)


def _settings_condition(spec: Spec, seen: Observed) -> list[cond.Condition]:
    """IapSettingsSynced under ObserveOnly: the fields a pass would set, or why they could not be planned."""
    if seen.settings_failure is not None:
        failure = seen.settings_failure
        return [cond.Condition(cond.IAP_SETTINGS_SYNCED, False, failure.reason, failure.message)]
    if seen.plan.settings:
        fields = ", ".join(c.path for c in seen.plan.settings)
        return [cond.Condition(cond.IAP_SETTINGS_SYNCED, False, CHANGES_PENDING, f"IAP settings: would set {fields}")]
    if spec.iap.settings is not None:
        return [cond.Condition(cond.IAP_SETTINGS_SYNCED, True, "AsDeclared", "the IAP settings are as declared")]
    return []
