"""One pass of one object as the kopf handlers run it: under the object's lock and a pass slot, its status written
before the lock is let go (``statuswrite``), its Events posted, its facts counted; and the reconcile handler's own
follow-up of work in flight (``follow``).

Apart from ``handlers`` so that module stays the list of events and what each runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import kopf

from iaprun_operator import metrics
from iaprun_operator.core.model import InvalidSpecError
from iaprun_operator.reconcile import reconcile, refuse
from iaprun_operator.results import ObjectView, Requeue, Result
from iaprun_operator.runtime import NamespaceInfo, Runtime
from iaprun_operator.schedule import ObjectState, come_back_after, drift_interval, listing_age, now
from iaprun_operator.status import merged, status_changes, with_stored_ledger
from iaprun_operator.statuswrite import StatusWriteError

log = logging.getLogger(__name__)
FOLLOW_WITHIN = 20.0
"""Seconds a reconcile handler keeps polling work in flight itself before it hands the wait to kopf (``follow``)."""


async def follow(
    runtime: Runtime,
    body: kopf.Body,
    index: kopf.Index[str, NamespaceInfo],
    state: ObjectState,
    result: Result,
    attempt: int,
) -> tuple[Result, int]:
    """Polls work in flight (a Cloud Run operation) from the handler itself for up to ``FOLLOW_WITHIN`` seconds,
    as the same backoff spaces kopf's retries, and returns the last pass's result and the attempt it stopped at.

    Handed to kopf instead, each poll cost a progress patch, a wake-up patch and two or three watch events of
    kopf's own (docs/performance.md). Each pass still runs under the object's lock and a pass slot, writes its
    status before the next one starts, and sees the status as last written here (which is stored: a write not
    known to be stored leaves no cached status). Events for the object wait in kopf's queue meanwhile: a spec
    change made during the wait is handled at most ``FOLLOW_WITHIN`` seconds later.
    """
    waited, uid = 0.0, str(body.metadata.uid)
    while result.requeue is Requeue.PROGRESS and (delay := come_back_after(result, attempt)) is not None:
        if waited + delay > FOLLOW_WITHIN:
            break
        await asyncio.sleep(delay)
        waited, attempt = waited + delay, attempt + 1
        if uid in runtime.released or runtime.stopping.is_set():
            break
        fresher = body if state.status is None else kopf.Body(cast(kopf.RawBody, {**body, "status": state.status}))
        result = await run_pass(runtime, fresher, index, state, follow_up=True)
    return result, attempt


def view(
    runtime: Runtime,
    body: kopf.Body,
    index: kopf.Index[str, NamespaceInfo],
    status: Mapping[str, Any] | None = None,
    listing: float = 0.0,
) -> ObjectView:
    namespace = str(body.metadata.namespace)
    info = next(iter(index.get(namespace, [])), None)
    return ObjectView(
        namespace=namespace,
        name=str(body.metadata.name),
        generation=int(body.metadata.get("generation") or 0),
        spec=dict(body.spec),
        status=dict(body.status if status is None else status),
        cluster_id=runtime.cluster_id,
        namespace_labels=info.labels if info else {},
        namespace_annotations=info.annotations if info else {},
        listing_age=listing,
    )


async def run_pass(
    runtime: Runtime,
    body: kopf.Body,
    index: kopf.Index[str, NamespaceInfo],
    state: ObjectState,
    *,
    follow_up: bool = False,
    routine: bool = False,
) -> Result:
    assert runtime.google is not None
    assert runtime.passes is not None
    settings, started = runtime.settings, time.monotonic()
    # The object's lock first: a pass holding a slot never waits for another pass of the same object, which
    # may have given its slot up for a quota wait and need one back to finish. The status is written under
    # the lock too (outside the slot), so one object's passes write in the order they ran.
    async with runtime.lock(str(body.metadata.uid)):
        async with runtime.passes.slot():
            # kopf hands over a body older than this process's own last status write when the watch lags; the
            # status as last written here is then the better truth (else, e.g., a missing templateHash would
            # read as a template change and cost a PATCH).
            state.due_by = None  # a pass is running: whatever kopf owed the object is being done
            known = state.status
            stored = None if known is None else with_stored_ledger(known, body.status)
            listing = listing_age(body.metadata.annotations, settings) if routine else 0.0
            obj = view(runtime, body, index, stored, listing=listing)
            try:
                drift_interval(body.metadata.annotations, default=0, floor=settings.min_drift_interval)
            except InvalidSpecError as error:
                result = refuse(obj, runtime.google, settings, now(settings), str(error))
            else:
                result = await reconcile(obj, runtime.google, settings, now(settings), follow_up=follow_up)
        await write_status(runtime, body, state, merged(obj.status, result.status), result)
    if (project := state.status and state.status.get("projectID")) and (region := state.status.get("region")):
        runtime.places.add((str(project), str(region)))
    outcome = result.requeue.value if result.requeue else "settled"
    metrics.RECONCILES.labels(outcome).inc()
    metrics.RECONCILE_SECONDS.labels(outcome).observe(time.monotonic() - started)
    count(result, obj.owner.readable)
    post_events(result, body)
    metrics.OBJECTS.observe(str(body.metadata.uid), state.status or obj.status)
    return result


async def write_status(
    runtime: Runtime, body: kopf.Body, state: ObjectState, written: dict[str, Any], result: Result
) -> None:
    """The pass's status, written before the object's lock is let go: only the fields that differ from what the
    API server last showed (kopf's body) or from what this process last wrote (a lagging watch), so a steady
    pass writes nothing. A write not known to be stored leaves no cached status (the next pass goes by the
    stored body) and asks for another pass soon, which writes again."""
    changes = status_changes(body.status, result.status)
    if state.status is not None:
        changes.update(status_changes(state.status, result.status))
    state.status = written
    if not changes:
        return
    try:
        await runtime.status_writer.write(str(body.metadata.namespace), str(body.metadata.name), changes)
    except StatusWriteError as error:
        log.warning("%s; the object gets another pass", error)
        state.status = None
        result.requeue, result.retry_after, result.message = Requeue.RETRY, None, str(error)
    except BaseException:  # cancelled (the object's daemon stopped mid-pass): the write's fate is unknown
        state.status = None
        raise


def post_events(result: Result, body: kopf.Body) -> None:
    for event in result.events:
        kopf.event(body, type=event.type.value, reason=event.reason, message=event.message)


def count(result: Result, owner: str) -> None:
    """The one place the facts a pass returns become metrics."""
    for reason in result.facts.changes:
        metrics.CHANGES.labels(reason).inc()
    if result.facts.public_invoker_found:
        metrics.PUBLIC_INVOKER_FOUND.inc(result.facts.public_invoker_found)
    if result.facts.foreign_members is not None:
        metrics.FOREIGN_MEMBERS.set(owner, result.facts.foreign_members)
