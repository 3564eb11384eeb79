"""The kopf wiring: which events run the reconcile loop, and how its results reach Kubernetes.

Thin on purpose: every decision lives in ``reconcile``, ``finalize``, ``schedule`` and ``core``. ``register``
is the list of "on this event, run that"; the handlers below it
- run one reconcile for create, update and resume (one handler id, so progress is keyed once),
- wake each object on a timer for drift checks (interval per object, jittered), accessor expiry and the rescue,
- finalise on deletion,
- write the returned status through kopf's patch (observedGeneration with the conditions), post Events,
  and turn "come back later" into ``kopf.TemporaryError`` with the one backoff policy (``schedule``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import kopf

from iaprun_operator import handoff, kube, ledger, metrics, sweep
from iaprun_operator.core.model import InvalidSpecError
from iaprun_operator.core.shards import shard_of
from iaprun_operator.finalize import finalize
from iaprun_operator.google.bundle import Google
from iaprun_operator.google.ratelimit import PassSlots
from iaprun_operator.kube import GROUP, PLURAL, VERSION
from iaprun_operator.reconcile import reconcile, refuse
from iaprun_operator.results import ObjectView, Result
from iaprun_operator.runtime import PREFIX, NamespaceInfo, Runtime, configure, login
from iaprun_operator.schedule import (
    DRIFT_ANNOTATION,
    ObjectState,
    after_drift_pass,
    come_back_after,
    drift_due,
    drift_interval,
    listing_age,
    next_drift,
    now,
    rescue_due,
    state_of,
)
from iaprun_operator.status import merged, newest_only, status_changes, with_stored_ledger

__all__ = ["DRIFT_ANNOTATION", "PREFIX", "Runtime", "merged", "register", "status_changes", "with_stored_ledger"]
log = logging.getLogger(__name__)


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """On this event, run that."""
    kopf.on.startup(id="start", registry=registry)(partial(start, shared=runtime))
    kopf.on.login(id="login", registry=registry)(partial(login, shared=runtime))
    kopf.on.cleanup(id="stop", registry=registry)(partial(stop, shared=runtime))
    kopf.index("", "v1", "namespaces", id="namespaces", registry=registry)(namespaces)
    handle = partial(reconcile_handler, shared=runtime)
    for event in (kopf.on.resume, kopf.on.create, kopf.on.update):
        event(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)(handle)
    tick = runtime.settings.timer_tick
    kopf.timer(GROUP, VERSION, PLURAL, id="drift", interval=tick, initial_delay=tick, registry=registry)(
        partial(drift_handler, shared=runtime)
    )
    kopf.on.delete(GROUP, VERSION, PLURAL, id="finalize", registry=registry)(partial(finalize_handler, shared=runtime))


async def start(settings: kopf.OperatorSettings, shared: Runtime, **_: Any) -> None:
    ha = shared.settings.ha
    configure(settings, shared.settings.workers, shared.diffbase, ha)
    if ha.shards > 1:
        shared.labels = handoff.ShardLabels(shared.settings.watch_namespace)
    if ha.shard == 0 and ha.lease_namespace is not None:
        handoff.run_assigner(ha, shared.settings.watch_namespace, shared.stopping)
    shared.cluster_id = await kube.cluster_id(shared.settings.cluster_id)
    shared.google = Google.build(shared.settings, observer=metrics.GOOGLE_CALLS)
    shared.passes = PassSlots(shared.settings.workers)
    shared.ledger = ledger.ConfigMapLedger(ledger.namespace_of_operator(shared.settings.operator_namespace))
    if (interval := shared.settings.orphan_sweep_interval) > 0:
        shared.sweeper = asyncio.create_task(
            sweep.forever(
                lambda: set(shared.places),
                shared.google,
                shared.cluster_id,
                kube.ObjectExistence(GROUP, VERSION, PLURAL),
                shared.ledger,
                interval=interval,
                namespace=shared.settings.watch_namespace,
                owns=None if ha.shards == 1 else lambda ns, name: shard_of(ns, name, ha.shards) == ha.shard,
            )
        )
    metrics.serve(shared.settings.metrics_port)


async def stop(shared: Runtime, **_: Any) -> None:
    shared.stopping.set()
    if shared.sweeper is not None:
        shared.sweeper.cancel()
    if shared.google is not None:
        shared.google.calls.close()


def namespaces(
    name: str, uid: str, labels: Mapping[str, str], annotations: Mapping[str, str], **_: Any
) -> dict[str, NamespaceInfo]:
    return {name: NamespaceInfo(uid=uid, labels=dict(labels), annotations=dict(annotations))}


async def reconcile_handler(
    body: kopf.Body, patch: kopf.Patch, retry: int, memo: Any, shared: Runtime, **kw: Any
) -> None:
    if str(body.metadata.uid) in shared.released:
        return  # handed off to another shard (handoff): a late event of this replica's
    state = state_of(memo)
    state.handling += 1
    try:
        # A retry needs no IAM re-read; a resume (nothing changed while away) is routine, as a drift pass is.
        routine = retry == 0 and kw.get("reason") == kopf.Reason.RESUME
        result = await run_pass(shared, body, patch, kw["namespaces"], state, follow_up=retry > 0, routine=routine)
    finally:
        state.handling -= 1
    state.next_drift = next_drift(body.metadata.annotations, shared.settings)
    if (delay := come_back_after(result, retry)) is not None:
        state.due_by = time.monotonic() + delay + shared.settings.rescue_grace  # owed by then: the rescue
        raise kopf.TemporaryError(result.message, delay=delay)


async def drift_handler(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Any, shared: Runtime, **kw: Any) -> None:
    settings, state = shared.settings, state_of(memo)
    if await handoff.hand_off(shared, body, state):
        return
    shared.diffbase.migrate(body=body, patch=patch)  # an earlier version's copy of the spec, once, if unchanged
    if rescued := rescue_due(state, settings.rescue_grace, time.monotonic()):
        logger.warning(
            f"kopf has not run the reconcile pass this object is owed for {settings.rescue_grace:.0f} s "
            "(its watch event lost, or the API server unreachable); reconciling from its timer"
        )
        metrics.RESCUES.inc()
    elif not drift_due(state, body.status, settings):
        return
    state.next_drift = next_drift(body.metadata.annotations, settings)
    after_drift_pass(state, await run_pass(shared, body, patch, kw["namespaces"], state, routine=not rescued))


async def finalize_handler(body: kopf.Body, retry: int, shared: Runtime, **kw: Any) -> None:
    assert shared.google is not None
    uid = str(body.metadata.uid)
    # No ``released`` check here: returning early would let kopf remove the finalizer unfinished. A stale deletion
    # event of a handed-off object is finalised again, idempotently (a service already gone counts as deleted).
    async with shared.lock(uid):
        obj = view(shared, body, kw["namespaces"])
        result = await finalize(obj, shared.google, shared.settings, deleting_started=retry > 0, ledger=shared.ledger)
    count(result, obj.owner.readable)
    post_events(result, body)
    if not result.done and (delay := come_back_after(result, retry)) is not None:
        raise kopf.TemporaryError(result.message, delay=delay)
    shared.locks.pop(uid, None)
    metrics.OBJECTS.forget(uid)


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
    patch: kopf.Patch,
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
    # may have given its slot up for a quota wait and need one back to finish.
    async with runtime.lock(str(body.metadata.uid)), runtime.passes.slot():
        # kopf hands over a body older than this process's own last status patch when the watch lags past its
        # consistency timeout; the status as last written here is then the better truth (else, e.g., a
        # missing templateHash would read as a template change and cost a PATCH).
        state.due_by = None  # a pass is running: whatever kopf owed the object is being done
        state.passes += 1
        number = state.passes
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
        state.status = merged(obj.status, result.status)
    if (project := state.status.get("projectID")) and (region := state.status.get("region")):
        runtime.places.add((str(project), str(region)))
    outcome = result.requeue.value if result.requeue else "settled"
    metrics.RECONCILES.labels(outcome).inc()
    metrics.RECONCILE_SECONDS.labels(outcome).observe(time.monotonic() - started)
    count(result, obj.owner.readable)
    # Only when something changed: a steady-state pass then patches nothing in Kubernetes either. kopf applies
    # the patch after this returns, outside the lock: only the newest pass's write may land (newest_only).
    if status_changes(body.status, result.status):
        patch.fns.append(newest_only(result.status, lambda: state.passes == number))
    post_events(result, body)
    metrics.OBJECTS.observe(str(body.metadata.uid), state.status)
    return result


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
