"""One level-triggered reconcile pass of an IapRunService: the sequencer of the steps in ``steps``.

It parses and authorises the spec, then runs one step per Google resource (the Cloud Run service, its IAM,
the IAP resource's IAM) in order, and folds their outcomes into the status to write, the Events to post and
when to come back. It never trusts what it did last time, never waits for a long-running operation (it reads
the service's state next pass), and never touches a service it does not own. Kubernetes I/O stays in
``handlers``; Google I/O goes through the ports in ``ports``.
"""

from __future__ import annotations

from datetime import datetime

from iaprun_operator import planner
from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError, Kind, org_policy_refusal, prerequisite
from iaprun_operator.core.model import InvalidSpecError, ManagementPolicy, Spec, parse_spec
from iaprun_operator.core.names import ServiceRef, iap_service_agent
from iaprun_operator.finalize import finalize
from iaprun_operator.ports import GooglePorts
from iaprun_operator.results import Event, EventType, Facts, ObjectView, Requeue, Result
from iaprun_operator.scope import DEFAULT_PROJECT_ANNOTATION, authorise, resolve_project
from iaprun_operator.settings import Settings
from iaprun_operator.steps import accessors, iapsettings, invoker, service
from iaprun_operator.steps.common import IAM_ATTEMPTS, IAM_BACKOFF, StepOutcome, read_modify_write

__all__ = [
    "DEFAULT_PROJECT_ANNOTATION",
    "IAM_ATTEMPTS",
    "IAM_BACKOFF",
    "Event",
    "EventType",
    "Facts",
    "ObjectView",
    "Requeue",
    "Result",
    "authorise",
    "finalize",
    "read_modify_write",
    "reconcile",
    "refuse",
    "resolve_project",
]


class _Pass:
    """What the steps of one pass have reported so far, folded into the pass's ``Result`` by ``finish``."""

    def __init__(self, obj: ObjectView, now: datetime) -> None:
        self.obj = obj
        self.now = now
        self.result = Result()
        self.steps: list[cond.Condition] = []
        self.progress: cond.Progress | None = None
        self.failure: cond.Failure | None = None
        self.revision_failure: cond.Failure | None = None
        self.step = cond.SERVICE_READY
        """The step in progress, so a failure marks the right step condition False."""

    def absorb(self, out: StepOutcome) -> None:
        self.steps += out.conditions
        self.result.events += out.events
        for key, value in out.status.items():
            known = self.result.status.get(key)
            if isinstance(value, dict) and isinstance(known, dict):
                known.update(value)
            else:
                self.result.status[key] = value
        self.progress = self.progress or out.progress
        self.failure = self.failure or out.failure

    def fail(self, error: GoogleError, project: str) -> None:
        self.failure = _failure_for(error, project, self.result.status.get("projectNumber"))
        self.result.retry_after = error.retry_after

    def stall(self, reason: str, message: str) -> Result:
        """End the pass: it cannot progress until the spec, the policy or a permission changes."""
        self.failure = cond.Failure(reason, message, stalled=True)
        return self.finish()

    def _report(self, failure: cond.Failure) -> None:
        """The failing step's condition goes False, and one Warning Event per distinct failure."""
        if not any(c.type == self.step for c in self.steps):
            self.steps.append(cond.Condition(self.step, False, failure.reason, failure.message))
        ready = cond.find(self.obj.status.get("conditions") or (), cond.READY) or {}
        if (ready.get("reason"), ready.get("message")) != (failure.reason, failure.message):
            self.result.events.append(Event.warning(failure.reason, failure.message))

    def paused(self) -> Result:
        """Paused: no Google call; the conditions stay as the last pass left them, ``Synced`` says why."""
        synced = cond.Condition(
            cond.SYNCED,
            False,
            "Paused",
            "spec.managementPolicy is Paused: the operator makes no Google call for this object; what status shows "
            "is as of the last pass before the pause",
        )
        previous = self.obj.status.get("conditions") or ()
        self.result.status["conditions"] = cond.replace(previous, synced, generation=self.obj.generation, now=self.now)
        self.result.status["plan"] = None
        return self.result

    def finish(self) -> Result:
        failure = self.failure
        if failure is not None:
            self._report(failure)
        elif self.progress is None:
            failure = self.revision_failure  # already reported by the service step, with Cloud Run's reason
        rendered = cond.render(
            cond.summarise(self.steps, progress=self.progress, failure=failure),
            self.obj.status.get("conditions") or (),
            generation=self.obj.generation,
            now=self.now,
        )
        self.result.status["conditions"] = rendered
        self.result.status["observedGeneration"] = self.obj.generation
        if failure is not None and (not failure.stalled or failure.recheck):
            self.result.requeue = Requeue.RETRY
            self.result.message = failure.message
        elif self.progress is not None:
            self.result.requeue = Requeue.PROGRESS
            self.result.message = self.progress.message
        self.result.facts.changes += [e.reason for e in self.result.events if e.type is EventType.NORMAL]
        return self.result


def _failure_for(error: GoogleError, project: str, number: str | None) -> cond.Failure:
    if error.kind is Kind.API_NOT_ENABLED:
        needed = prerequisite(error, project=project, number=number)
        return cond.Failure(cond.API_NOT_ENABLED, needed.describe(), stalled=True, recheck=True)
    if error.kind is Kind.ORG_POLICY:
        target = f"the resource of {error.api} {error.method}"
        return cond.Failure(cond.ORG_POLICY_DENIED, org_policy_refusal(error).describe(target), stalled=True)
    if error.kind is Kind.PERMISSION:
        return cond.Failure("PermissionDenied", error.message, stalled=True)
    if error.kind in (Kind.INVALID, Kind.FAILED_PRECONDITION):
        return cond.Failure("UpdateFailed", error.message, stalled=True)
    if error.kind is Kind.RATE_LIMITED:
        return cond.Failure("RateLimited", error.message, stalled=False)
    return cond.Failure("UpdateFailed", error.message, stalled=False)


def _admit(p: _Pass, settings: Settings) -> tuple[Spec, str] | Result:
    """The spec and its project, or the stalled result saying why the pass cannot start."""
    obj = p.obj
    try:
        spec = parse_spec(obj.spec, name=obj.name)
    except InvalidSpecError as error:
        return p.stall("InvalidSpec", str(error))
    project = resolve_project(obj, spec, settings)
    if not project:
        return p.stall(
            "InvalidSpec",
            f"no project: set spec.projectID, the namespace annotation {DEFAULT_PROJECT_ANNOTATION}, "
            "or the operator's default project",
        )
    pinned = obj.status.get("projectID")
    if pinned and pinned != project:
        return p.stall(
            "ProjectChanged",
            f"this object manages a service in project {pinned!r}; it now resolves to {project!r}. "
            "Projects are immutable: restore the namespace default or recreate the object",
        )
    denied = authorise(obj, spec, project, settings)
    if denied:
        return p.stall("PolicyDenied", denied)
    return spec, project


async def reconcile(
    obj: ObjectView, google: GooglePorts, settings: Settings, now: datetime, *, follow_up: bool = False
) -> Result:
    """One pass: parse, authorise, then the steps in order, then report.

    ``follow_up``: the pass comes back for work an earlier pass started (a Cloud Run operation, a retry).
    IAM that a pass of this same generation found right is then not read again: polling a rollout costs
    one read of the service, and the next drift pass checks the IAM as usual.
    """
    p = _Pass(obj, now)
    admitted = _admit(p, settings)
    if isinstance(admitted, Result):
        return admitted
    spec, project = admitted
    if spec.management_policy is ManagementPolicy.PAUSED:
        return p.paused()
    ref = ServiceRef(project, spec.region, spec.service_name)
    p.result.status.update(projectID=project, region=spec.region, serviceName=spec.service_name, externalRef=ref.name)
    try:
        if spec.management_policy is ManagementPolicy.OBSERVE_ONLY:
            p.absorb(planner.outcome(obj, spec, ref, await planner.plan(google, obj, spec, ref, settings, now)))
        else:
            p.result.status["plan"] = None  # a plan shown under ObserveOnly is stale once the pass applies it
            await _steps(p, google, settings, spec, ref, skip_iam=follow_up and _iam_verified(obj))
    except GoogleError as error:
        p.fail(error, project)
    return p.finish()


async def _steps(
    p: _Pass, google: GooglePorts, settings: Settings, spec: Spec, ref: ServiceRef, *, skip_iam: bool
) -> None:
    pinned = _pinned_number(p.obj, ref.project)
    if pinned:
        google.projects.remember(ref.project, pinned)
    number = pinned or await google.projects.number(ref.project)
    p.result.status["projectNumber"] = number
    await google.projects.check_iap(ref.project, number)
    served = await service.run(google, p.obj, spec, ref, settings)
    p.absorb(served)
    p.revision_failure = served.revision_failure
    if served.error is not None:
        raise served.error
    if not served.proceed or skip_iam:
        iapsettings.refresh_access(p.obj, p.result.status)
        return
    agent = iap_service_agent(number)
    p.step = cond.INVOKER_GRANTED
    granted = await invoker.run(google, spec, ref, number, agent)
    p.absorb(granted)
    p.result.facts.public_invoker_found = granted.public_found
    if granted.failure is not None:
        return
    p.step = cond.ACCESSORS_SYNCED
    iap_status = p.obj.status.get("iap") or {}
    known = accessors.Context(
        ledger=list(iap_status.get("addedMembers") or ()),
        generation=p.obj.generation,
        refusal=iap_status.get("orgPolicyRefusal"),
    )
    synced = await accessors.run(google, spec, ref, number, agent, known, p.now)
    p.absorb(synced)
    p.result.facts.foreign_members = synced.foreign
    p.step = cond.IAP_SETTINGS_SYNCED
    p.absorb(await iapsettings.run(google, p.obj, spec, ref, number, p.result.status))


def refuse(obj: ObjectView, google: GooglePorts, settings: Settings, now: datetime, message: str) -> Result:
    """A pass that stops before it starts: the object asks for something the operator will not do as written
    (``InvalidSpec``), found outside the spec (an annotation). No Google call is made."""
    return _Pass(obj, now).stall("InvalidSpec", message)


def _pinned_number(obj: ObjectView, project: str) -> str | None:
    """The project's number as an earlier pass of this object learnt it: a project keeps its number for life
    and its ID is never reused, so the object needs Resource Manager only on its first pass (and, once
    remembered, neither do the project's other objects)."""
    number = obj.status.get("projectNumber")
    return str(number) if number and obj.status.get("projectID") == project else None


def _iam_verified(obj: ObjectView) -> bool:
    """Whether a pass of the current generation found (or made) the invoker grant and the accessors right."""
    if obj.status.get("observedGeneration") != obj.generation:
        return False
    conditions = obj.status.get("conditions") or ()
    kinds = (cond.INVOKER_GRANTED, cond.ACCESSORS_SYNCED, cond.IAP_SETTINGS_SYNCED)
    return all(cond.holds(conditions, kind, obj.generation) for kind in kinds)
