"""One level-triggered reconcile pass of an IapRunService, and its deletion.

It observes Google, compares with the spec, writes only what differs, and returns the status to write,
the Events to post and when to come back. It never trusts what it did last time, never waits for a
long-running operation (it reads the service's state next pass), and never touches a service it does
not own. Kubernetes I/O stays in ``handlers``; Google I/O goes through the adapters in ``google``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from iaprun_operator import metrics
from iaprun_operator.core import conditions as cond
from iaprun_operator.core import references, tenancy
from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.iam import AccessorPlan, format_time, plan_accessors, plan_invoker
from iaprun_operator.core.model import Adoption, InvalidSpecError, PublicInvokerPolicy, Spec, parse_spec
from iaprun_operator.core.names import Owner, ServiceRef, iap_service_agent
from iaprun_operator.core.service import (
    abandoned_by,
    desired_service,
    ownership,
    plan_update,
    template_hash,
    without_owner,
)
from iaprun_operator.google.bundle import Google
from iaprun_operator.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PROJECT_ANNOTATION = "iaprun.dev/default-project"
IAM_ATTEMPTS = 4
IAM_BACKOFF = 0.2
"""Seconds before repeating an IAM read-modify-write that met ABORTED; doubled each time, jittered down to half."""


@dataclass(frozen=True)
class ObjectView:
    """What the loop needs to know about the Kubernetes object and its namespace."""

    namespace: str
    name: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    cluster_id: str
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    namespace_annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> Owner:
        return Owner(self.cluster_id, self.namespace, self.name)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Result:
    """The outcome of one pass: status fields to write, Events, and when to look again."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    requeue: str | None = None
    """None: settled. "progress": work in flight, poll soon. "retry": a transient failure, back off."""
    retry_after: float | None = None
    message: str = ""
    done: bool = False
    """Deletion only: the finalizer may go."""


class _Pass:
    """State of one reconcile pass, so the steps read as a list."""

    def __init__(self, obj: ObjectView, google: Google, settings: Settings, now: datetime) -> None:
        self.obj = obj
        self.google = google
        self.settings = settings
        self.now = now
        self.result = Result()
        self.steps: list[cond.Condition] = []
        self.progress: cond.Progress | None = None
        self.failure: cond.Failure | None = None
        self.revision_failure: cond.Failure | None = None
        self.step = cond.SERVICE_READY
        """The step in progress, so a failure marks the right step condition False."""

    def event(self, kind: str, reason: str, message: str) -> None:
        if kind == "Normal":
            metrics.CHANGES.labels(reason).inc()
        self.result.events.append(Event(kind, reason, message))

    def _report(self, failure: cond.Failure) -> None:
        """The failing step's condition goes False, and one Warning Event per distinct failure."""
        if failure is self.revision_failure:
            return  # the service step already reported it, with Cloud Run's own reason
        if not any(c.type == self.step for c in self.steps):
            self.steps.append(cond.Condition(self.step, False, failure.reason, failure.message))
        ready = cond.find(self.obj.status.get("conditions") or (), cond.READY) or {}
        if (ready.get("reason"), ready.get("message")) != (failure.reason, failure.message):
            self.event("Warning", failure.reason, failure.message)

    def stall(self, reason: str, message: str) -> Result:
        """End the pass: it cannot progress until the spec, the policy or a permission changes."""
        self.failure = cond.Failure(reason, message, stalled=True)
        return self.finish()

    def finish(self) -> Result:
        if self.failure is None and self.progress is None:
            self.failure = self.revision_failure
        if self.failure is not None:
            self._report(self.failure)
        rendered = cond.render(
            cond.summarise(self.steps, progress=self.progress, failure=self.failure),
            self.obj.status.get("conditions") or (),
            generation=self.obj.generation,
            now=self.now,
        )
        self.result.status["conditions"] = rendered
        self.result.status["observedGeneration"] = self.obj.generation
        if self.failure is not None and not self.failure.stalled:
            self.result.requeue = "retry"
            self.result.message = self.failure.message
        elif self.progress is not None:
            self.result.requeue = "progress"
            self.result.message = self.progress.message
        return self.result


def resolve_project(obj: ObjectView, spec: Spec, settings: Settings) -> str | None:
    return spec.project_id or obj.namespace_annotations.get(DEFAULT_PROJECT_ANNOTATION) or settings.default_project


def authorise(obj: ObjectView, spec: Spec, project: str, settings: Settings, *, adopting: bool = False) -> str | None:
    """The tenancy policy's word on everything this object asks the operator to do: None, or why not.

    ``adopting``: the object is about to take over an unowned service, which its rule must allow as well.
    """
    return tenancy.check(
        settings.tenancy,
        namespace=obj.namespace,
        namespace_labels=obj.namespace_labels,
        refs=references.extract(spec, project),
        operator_account=settings.operator_service_account,
        adopting=adopting,
    )


def _failure_for(error: GoogleError) -> cond.Failure:
    if error.kind is Kind.PERMISSION:
        return cond.Failure("PermissionDenied", error.message, stalled=True)
    if error.kind in (Kind.INVALID, Kind.FAILED_PRECONDITION):
        return cond.Failure("UpdateFailed", error.message, stalled=True)
    if error.kind is Kind.RATE_LIMITED:
        return cond.Failure("RateLimited", error.message, stalled=False)
    return cond.Failure("UpdateFailed", error.message, stalled=False)


async def reconcile(
    obj: ObjectView, google: Google, settings: Settings, now: datetime, *, follow_up: bool = False
) -> Result:
    """One pass: parse, authorise, observe, act, report.

    ``follow_up``: the pass comes back for work an earlier pass started (a Cloud Run operation, a retry).
    IAM that a pass of this same generation found right is then not read again: polling a rollout costs
    one read of the service, and the next drift pass checks the IAM as usual.
    """
    p = _Pass(obj, google, settings, now)
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

    ref = ServiceRef(project, spec.region, spec.service_name)
    p.result.status.update(projectID=project, region=spec.region, serviceName=spec.service_name, externalRef=ref.name)
    try:
        number = await google.projects.number(project)
        p.result.status["projectNumber"] = number
        observed = await _service_step(p, spec, ref)
        if observed is not None and p.failure is None and not (follow_up and _iam_verified(obj)):
            agent = iap_service_agent(number)
            p.step = cond.INVOKER_GRANTED
            await _invoker_step(p, spec, ref, number, agent)
            if p.failure is None:
                p.step = cond.ACCESSORS_SYNCED
                await _accessor_step(p, spec, ref, number, agent)
    except GoogleError as error:
        p.failure = _failure_for(error)
        p.result.retry_after = error.retry_after
    return p.finish()


def refuse(obj: ObjectView, google: Google, settings: Settings, now: datetime, message: str) -> Result:
    """A pass that stops before it starts: the object asks for something the operator will not do as written
    (``InvalidSpec``), found outside the spec (an annotation). No Google call is made."""
    return _Pass(obj, google, settings, now).stall("InvalidSpec", message)


def _iam_verified(obj: ObjectView) -> bool:
    """Whether a pass of the current generation found (or made) the invoker grant and the accessors right."""
    if obj.status.get("observedGeneration") != obj.generation:
        return False
    conditions = obj.status.get("conditions") or ()
    for kind in (cond.INVOKER_GRANTED, cond.ACCESSORS_SYNCED):
        found = cond.find(conditions, kind)
        if found is None or found.get("status") != "True" or found.get("observedGeneration") != obj.generation:
            return False
    return True


async def _service_step(p: _Pass, spec: Spec, ref: ServiceRef) -> dict[str, Any] | None:
    """Create, adopt or update the Cloud Run service; returns what was observed (None: not usable)."""
    owner = p.obj.owner
    observed = await p.google.run.get(ref)
    desired_hash = template_hash(spec)
    if observed is None:
        if p.obj.status.get("externalRef") == ref.name and p.obj.status.get("templateHash"):
            p.event("Warning", "Recreating", f"{ref.name} disappeared outside the operator; creating it again")
        try:
            await p.google.run.create(ref, desired_service(spec, owner))
        except GoogleError as error:
            if error.kind is not Kind.NOT_FOUND:
                raise
            # Not found on create: the parent does not exist. The project exists (its number was read), so it
            # is the region; retrying cannot help.
            p.failure = cond.Failure(
                "InvalidSpec", f"Cloud Run has no region {spec.region!r}: {error.message}", stalled=True
            )
            return None
        p.result.status["templateHash"] = desired_hash
        p.event("Normal", "Created", f"Creating Cloud Run service {ref.name} with IAP {_on_off(spec)}")
        p.progress = cond.Progress("Creating", f"Cloud Run is creating {ref.name}")
        p.steps += [
            cond.Condition(cond.SERVICE_READY, False, "Creating", "Cloud Run is deploying the first revision"),
            cond.Condition(
                cond.IAP_ENABLED,
                True,
                "Enabled" if spec.iap.enabled else "Disabled",
                "Set when the service was created",
            ),
        ]
        # The service exists from now on: its IAM can be set in this same pass.
        return {"name": ref.name}

    claimed = ownership(observed)
    if claimed != owner.label:
        if claimed is None and spec.adoption is Adoption.IF_UNOWNED:
            if not _may_adopt(p, spec, ref, observed):
                return None
        else:
            holder = "another IapRunService or cluster" if claimed else "nobody (it was not created by this operator)"
            p.failure = cond.Failure(
                "ManagementConflict",
                f"Cloud Run service {ref.name} exists and is owned by {holder}; it was left untouched. "
                "Set spec.adoption: IfUnowned to take over an unowned service",
                stalled=True,
            )
            return None

    desired = desired_service(spec, owner, observed)
    update = plan_update(desired, observed, applied_hash=p.obj.status.get("templateHash"), desired_hash=desired_hash)
    _observe_service(p, observed)
    if update:
        await p.google.run.update(ref, desired, update.mask)
        p.result.status["templateHash"] = desired_hash
        p.event("Normal", "Updated", f"Updating {', '.join(update.mask)}: {'; '.join(update.reasons)}")
        if "invokerIamDisabled" in update.mask and not spec.invoker_iam_disabled:
            p.event(
                "Warning",
                "InvokerIamCheckRestored",
                f"{ref.name} had invokerIamDisabled: true (Cloud Run's public access, no run.invoker check), "
                "which the spec does not ask for; the invoker IAM check was turned back on",
            )
        p.progress = cond.Progress("Updating", f"Cloud Run is applying {', '.join(update.mask)}")
        p.steps.append(cond.Condition(cond.SERVICE_READY, False, "Updating", "; ".join(update.reasons)))
        p.steps.append(_iap_condition(spec, bool(observed.get("iapEnabled")), pending="iapEnabled" in update.mask))
        return observed

    p.result.status["templateHash"] = desired_hash
    p.steps.append(_iap_condition(spec, bool(observed.get("iapEnabled")), pending=False))
    terminal = observed.get("terminalCondition") or {}
    state = terminal.get("state", "")
    if observed.get("reconciling"):
        p.progress = cond.Progress("Updating", f"Cloud Run is rolling out {ref.name}")
        p.steps.append(cond.Condition(cond.SERVICE_READY, False, "Reconciling", "Cloud Run is rolling out a revision"))
    elif state == "CONDITION_FAILED":
        reason = _camel(str(terminal.get("reason") or terminal.get("revisionReason") or "RevisionFailed"))
        message = str(terminal.get("message") or "Cloud Run reports the service failed")
        p.steps.append(cond.Condition(cond.SERVICE_READY, False, reason, message))
        if p.obj.status.get("latestCreatedRevision") != observed.get("latestCreatedRevision"):
            p.event("Warning", reason, message)
        # The service exists, so its IAM is still kept right while the revision is broken.
        p.revision_failure = cond.Failure(reason, message, stalled=True)
    elif state == "CONDITION_SUCCEEDED":
        p.steps.append(cond.Condition(cond.SERVICE_READY, True, "Ready", "Cloud Run reports the service ready"))
    else:
        p.progress = cond.Progress("Updating", f"Cloud Run reports {state or 'no state'} for {ref.name}")
        p.steps.append(cond.Condition(cond.SERVICE_READY, False, "Pending", f"Cloud Run state {state or 'unknown'}"))
    return observed


def _may_adopt(p: _Pass, spec: Spec, ref: ServiceRef, observed: Mapping[str, Any]) -> bool:
    """Adopt an unowned service only where the rule allows it, or when this same owner abandoned it."""
    if abandoned_by(observed) == p.obj.owner.label:
        p.event("Normal", "Adopting", f"Taking back Cloud Run service {ref.name}, which this object abandoned")
        return True
    denied = authorise(p.obj, spec, ref.project, p.settings, adopting=True)
    if denied:
        p.failure = cond.Failure("PolicyDenied", denied, stalled=True)
        return False
    p.event("Normal", "Adopting", f"Taking over unowned Cloud Run service {ref.name} (adoption: IfUnowned)")
    return True


def _observe_service(p: _Pass, observed: Mapping[str, Any]) -> None:
    for key in ("latestReadyRevision", "latestCreatedRevision"):
        if observed.get(key):
            p.result.status[key] = observed[key]
    if observed.get("uri"):
        p.result.status["url"] = observed["uri"]


def _iap_condition(spec: Spec, observed: bool, *, pending: bool) -> cond.Condition:
    if pending or observed != spec.iap.enabled:
        return cond.Condition(cond.IAP_ENABLED, False, "Updating", f"Setting iapEnabled to {spec.iap.enabled}")
    if spec.iap.enabled:
        return cond.Condition(cond.IAP_ENABLED, True, "Enabled", "IAP is enabled on the service")
    return cond.Condition(cond.IAP_ENABLED, True, "Disabled", "IAP is disabled as declared (invoker IAM still applies)")


def _on_off(spec: Spec) -> str:
    return "enabled" if spec.iap.enabled else "disabled"


def _camel(reason: str) -> str:
    if reason.isupper() or "_" in reason:
        return "".join(part.capitalize() for part in reason.lower().split("_"))
    return reason


async def _read_modify_write(
    read: Callable[[], Awaitable[dict[str, Any]]],
    plan: Callable[[dict[str, Any]], Any],
    write: Callable[[dict[str, Any]], Awaitable[Any]],
    *,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Any:
    """Read, plan and write a policy with its etag; a concurrent change (ABORTED) restarts the cycle after a
    backoff, as Google asks ("retry the whole read-modify-write with exponential backoff")."""
    for attempt in range(IAM_ATTEMPTS):
        decided = plan(await read())
        if decided.policy is None:
            return decided
        try:
            await write(decided.policy)
            return decided
        except GoogleError as error:
            if error.kind is not Kind.CONFLICT or attempt == IAM_ATTEMPTS - 1:
                raise
            delay = IAM_BACKOFF * 2**attempt * random.uniform(0.5, 1.0)
            log.info("IAM policy changed concurrently; retrying the read-modify-write (%s)", error.message)
            await pause(delay)
    raise AssertionError("unreachable")


async def _invoker_step(p: _Pass, spec: Spec, ref: ServiceRef, number: str, agent: str) -> None:
    member = f"serviceAccount:{agent}"
    remove_public = spec.iap.public_invoker is PublicInvokerPolicy.REMOVE

    async def write(policy: dict[str, Any]) -> Any:
        if spec.iap.enabled:
            # The agent must exist before a policy names it. Made sure of only when granting (once per
            # project and process), so a pass that finds the grant in place makes no write at all.
            await p.google.projects.iap_agent(ref.project, number)
        return await p.google.run.set_iam_policy(ref, policy)

    def plan(policy: dict[str, Any]) -> Any:
        return plan_invoker(
            policy,
            agent_member=member,
            grant=spec.iap.enabled,
            remove_public=remove_public,
            protect=spec.iap.enabled,
        )

    try:
        decided = await _read_modify_write(lambda: p.google.run.get_iam_policy(ref), plan, write)
    except GoogleError as error:
        if error.kind is Kind.INVALID and "does not exist" in error.message:
            # First use of IAP in a project: the agent takes a while to become usable (gcloud waits too).
            p.steps.append(cond.Condition(cond.INVOKER_GRANTED, False, "ServiceAgentNotReady", error.message))
            p.failure = cond.Failure(
                "DependencyNotReady", f"IAP service agent not usable yet: {error.message}", stalled=False
            )
            return
        raise
    if decided.public_members:
        metrics.PUBLIC_INVOKER_FOUND.inc(len(decided.public_members))
        action = "removed" if decided.removed_public else "kept (publicInvokerBindings: Report)"
        p.event(
            "Warning",
            "PublicInvokerBinding",
            f"run.invoker was granted to {', '.join(decided.public_members)} on {ref.name}; {action}",
        )
    if decided.policy is not None and spec.iap.enabled:
        p.event("Normal", "InvokerGranted", f"Granted roles/run.invoker on {ref.service} to {member}")
    elif decided.policy is not None and not decided.removed_public:
        p.event("Normal", "InvokerRevoked", f"Removed roles/run.invoker of {member} (IAP is off)")
    p.result.status.setdefault("iap", {})["serviceAgent"] = agent
    if spec.iap.enabled:
        p.steps.append(
            cond.Condition(cond.INVOKER_GRANTED, True, "Granted", f"{member} holds roles/run.invoker on the service")
        )
    else:
        p.steps.append(cond.Condition(cond.INVOKER_GRANTED, True, "NotRequired", "IAP is off; no agent grant needed"))


async def _accessor_step(p: _Pass, spec: Spec, ref: ServiceRef, number: str, agent: str) -> None:
    resource = ref.iap_resource(number)
    ledger: Sequence[str] = (p.obj.status.get("iap") or {}).get("addedMembers") or ()

    record_first = False

    def plan(policy: dict[str, Any]) -> Any:
        nonlocal record_first
        decided = plan_accessors(policy, spec.iap.accessors, mode=spec.iap.policy, ledger=ledger, now=p.now)
        # Additive: members about to be granted enter the ledger (status) before the grant. Granted first,
        # a lost status write (a crash right after the grant) would leave them looking foreign for ever:
        # never revoked when removed from the spec. This pass records them; the next one grants them.
        record_first = decided.policy is not None and not set(decided.ledger) <= set(ledger)
        return replace(decided, policy=None) if record_first else decided

    decided = await _read_modify_write(
        lambda: p.google.iap.get_iam_policy(resource, ref.project),
        plan,
        lambda pol: p.google.iap.set_iam_policy(resource, ref.project, pol),
    )
    if record_first:
        newcomers = sorted(set(decided.ledger) - set(ledger))
        p.result.status.setdefault("iap", {})["addedMembers"] = sorted(set(ledger) | set(decided.ledger))
        p.steps.append(cond.Condition(cond.ACCESSORS_SYNCED, False, "Granting", f"granting {', '.join(newcomers)}"))
        p.progress = p.progress or cond.Progress("Updating", f"granting access to {', '.join(newcomers)}")
        return
    if decided.added:
        p.event(
            "Normal",
            "AccessGranted",
            f"roles/iap.httpsResourceAccessor granted to {', '.join(decided.added)}",
        )
    if decided.removed:
        p.event(
            "Normal",
            "AccessRevoked",
            f"roles/iap.httpsResourceAccessor removed from {', '.join(decided.removed)}",
        )
    for binding in decided.removed_foreign:
        p.event(
            "Warning",
            "ForeignBindingRemoved",
            f"roles/iap.httpsResourceAccessor removed from {binding.describe()}: a condition this object does "
            "not declare (accessorsPolicy: Authoritative)",
        )
    if decided.expired:
        p.event("Normal", "AccessExpired", f"Access expired for {', '.join(decided.expired)}")
    metrics.FOREIGN_MEMBERS.set(p.obj.owner.readable, len(decided.foreign))
    iap_status = p.result.status.setdefault("iap", {})
    iap_status.update(
        serviceAgent=agent,
        resource=resource,
        accessors=[
            {"member": a.member, **({"expires": format_time(a.expires)} if a.expires else {})}
            for a in decided.effective
        ],
        foreignMembers=list(decided.foreign),
        addedMembers=list(decided.ledger),
        nextExpiry=format_time(decided.next_expiry) if decided.next_expiry else None,
    )
    p.steps.append(
        cond.Condition(
            cond.ACCESSORS_SYNCED,
            True,
            "Synced",
            f"{len(decided.effective)} accessor(s) hold roles/iap.httpsResourceAccessor" + _kept_note(decided),
        )
    )


def _kept_note(decided: AccessorPlan) -> str:
    if not decided.kept_conditional:
        return ""
    return (
        f"; {', '.join(decided.kept_conditional)} hold(s) it only under a condition set outside this object, "
        "kept as is (Additive never widens a conditional grant)"
    )


def _recorded_ref(obj: ObjectView) -> ServiceRef | None:
    status = obj.status
    if not status.get("externalRef") or not status.get("projectID"):
        return None
    return ServiceRef(str(status["projectID"]), str(status["region"]), str(status["serviceName"]))


def _declared_ref(obj: ObjectView, settings: Settings) -> ServiceRef | None:
    """Where the spec points, if this object may use that place at all (else it cannot have created it)."""
    try:
        spec = parse_spec(obj.spec, name=obj.name)
    except InvalidSpecError:
        return None
    project = resolve_project(obj, spec, settings)
    if not project:
        return None
    return None if authorise(obj, spec, project, settings) else ServiceRef(project, spec.region, spec.service_name)


async def finalize(obj: ObjectView, google: Google, settings: Settings, *, deleting_started: bool) -> Result:
    """Deletion: Delete removes the service and waits; Abandon removes only the ownership marks.

    The service is looked for where status recorded it or, when status records nothing, where the spec
    points: the operator may have created it and died before writing status. Either way only a service
    carrying this object's ownership mark is touched.
    """
    result = Result()
    metrics.FOREIGN_MEMBERS.set(obj.owner.readable, 0)  # this object no longer reports foreign members
    ref = _recorded_ref(obj) or _declared_ref(obj, settings)
    if ref is None:
        result.done = True  # nothing can have been created
        return result
    policy = obj.spec.get("deletionPolicy") or "Delete"
    try:
        observed = await google.run.get(ref)
        if observed is None:
            result.done = True
            return result
        if ownership(observed) != obj.owner.label:
            result.events.append(Event("Normal", "NotOwned", f"{ref.name} is not owned by this object; left as is"))
            result.done = True
            return result
        if policy == "Abandon":
            await google.run.update(ref, without_owner(observed), ("labels", "annotations"))
            metrics.CHANGES.labels("Abandoned").inc()
            result.events.append(
                Event(
                    "Normal",
                    "Abandoned",
                    f"{ref.name} left running with IAP and access intact; ownership marks removed",
                )
            )
            result.done = True
            return result
        if not deleting_started or not observed.get("reconciling"):
            await google.run.delete(ref)
            metrics.CHANGES.labels("Deleting").inc()
            result.events.append(Event("Normal", "Deleting", f"Deleting Cloud Run service {ref.name}"))
        result.requeue = "progress"
        result.message = f"waiting for Cloud Run to delete {ref.name}"
    except GoogleError as error:
        if error.kind is Kind.PERMISSION and not obj.status.get("projectNumber"):
            # No pass of this object ever got as far as the project's number, which comes before any write:
            # it created nothing there (a mistyped or inaccessible project). Waiting for access that may never
            # come would leave the object stuck deleting.
            result.events.append(
                Event(
                    "Normal",
                    "NothingToDelete",
                    f"{ref.name} cannot be read ({error.message}); this object never had access to project "
                    f"{ref.project}, so it created nothing there",
                )
            )
            result.done = True
            return result
        result.requeue = "retry"
        result.retry_after = error.retry_after
        result.message = f"{error.api} {error.method}: {error.message}"
        result.events.append(Event("Warning", "DeleteFailed", result.message))
    return result
