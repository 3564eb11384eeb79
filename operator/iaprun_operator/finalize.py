"""Deletion of an IapRunService: delete its Cloud Run service, or abandon it (remove only the ownership marks).

Under managementPolicy ObserveOnly or Paused, deletion makes no Google call: the service is left untouched, and
recorded in the ledger (a ConfigMap) before the object goes, so no orphan sweep finishes it later, whatever
restarts in between. If the record cannot be written, the object waits in deletion (retried with backoff).

The service is looked for where status recorded it or, when status records nothing, where the spec points:
the operator may have created it and died before writing status. Either way only a service carrying this
object's ownership mark is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.model import DeletionPolicy, InvalidSpecError, ManagementPolicy, management_policy, parse_spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.orphans import LeftService
from iaprun_operator.core.service import ownership, without_owner
from iaprun_operator.ledger import Ledger, LedgerError
from iaprun_operator.ports import GooglePorts
from iaprun_operator.results import Event, ObjectView, Requeue, Result
from iaprun_operator.scope import authorise, resolve_project
from iaprun_operator.settings import Settings


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


def deletion_policy(spec: Mapping[str, Any]) -> DeletionPolicy:
    """The spec's deletion policy; anything but a valid "Abandon" deletes (as the default does), so a spec
    that no longer parses still lets its object go."""
    try:
        return DeletionPolicy(spec.get("deletionPolicy") or DeletionPolicy.DELETE.value)
    except (ValueError, TypeError):
        return DeletionPolicy.DELETE


async def finalize(
    obj: ObjectView,
    google: GooglePorts,
    settings: Settings,
    *,
    deleting_started: bool,
    ledger: Ledger | None = None,
) -> Result:
    """Deletion: Delete removes the service and waits; Abandon removes only the ownership marks.

    ``ledger``: where a deletion under ObserveOnly or Paused is recorded (the operator always passes one; None
    only in tests that never delete under those policies: the service is then left unrecorded)."""
    result = Result()
    result.facts.foreign_members = 0  # this object no longer reports foreign members
    if (policy := management_policy(obj.spec)) is not ManagementPolicy.FULL:
        return await _leave(obj, settings, policy, ledger, result)
    ref = _recorded_ref(obj) or _declared_ref(obj, settings)
    if ref is None:
        result.done = True  # nothing can have been created
        return result
    try:
        await _finish(obj, google, ref, result, deleting_started=deleting_started)
    except GoogleError as error:
        if error.kind in (Kind.PERMISSION, Kind.API_NOT_ENABLED) and not obj.status.get("projectNumber"):
            # No pass of this object ever got as far as the project's number, which comes before any write:
            # it created nothing there (a mistyped or inaccessible project). Waiting for access that may never
            # come would leave the object stuck deleting.
            result.events.append(
                Event.normal(
                    "NothingToDelete",
                    f"{ref.name} cannot be read ({error.message}); this object never had access to project "
                    f"{ref.project}, so it created nothing there",
                )
            )
            result.done = True
            return result
        result.requeue = Requeue.RETRY
        result.retry_after = error.retry_after
        result.message = f"{error.api} {error.method}: {error.message}"
        result.events.append(Event.warning("DeleteFailed", result.message))
    return result


async def _leave(
    obj: ObjectView, settings: Settings, policy: ManagementPolicy, ledger: Ledger | None, result: Result
) -> Result:
    """Whatever deletionPolicy says: under ObserveOnly no write, under Paused not even a read (docs/api.md). The
    service keeps its marks, so the record comes first: the object goes only once the sweep can see it."""
    ref = _recorded_ref(obj) or _declared_ref(obj, settings)
    entry = LeftService(obj.owner, ref, datetime.now(UTC).isoformat())
    try:
        if ledger is not None:
            await ledger.record(entry)
    except LedgerError as error:
        result.requeue = Requeue.RETRY
        result.message = f"the service is left untouched, but could not be recorded as such: {error}"
        result.events.append(Event.warning("LeaveNotRecorded", result.message))
        return result
    where = ref.name if ref else "the Cloud Run service"
    result.events.append(Event.normal("LeftUntouched", f"managementPolicy is {policy.value}: {where} is left as it is"))
    result.done = True
    return result


async def _finish(
    obj: ObjectView, google: GooglePorts, ref: ServiceRef, result: Result, *, deleting_started: bool
) -> None:
    observed = await google.run.get(ref)
    if observed is None:
        result.done = True
        return
    if ownership(observed) != obj.owner.label:
        result.events.append(Event.normal("NotOwned", f"{ref.name} is not owned by this object; left as is"))
        result.done = True
        return
    if deletion_policy(obj.spec) is DeletionPolicy.ABANDON:
        await google.run.update(ref, without_owner(observed), ("labels", "annotations"))
        result.facts.changes.append("Abandoned")
        result.events.append(
            Event.normal("Abandoned", f"{ref.name} left running with IAP and access intact; ownership marks removed")
        )
        result.done = True
        return
    if not deleting_started or not observed.get("reconciling"):
        await google.run.delete(ref)
        result.facts.changes.append("Deleting")
        result.events.append(Event.normal("Deleting", f"Deleting Cloud Run service {ref.name}"))
    result.requeue = Requeue.PROGRESS
    result.message = f"waiting for Cloud Run to delete {ref.name}"
