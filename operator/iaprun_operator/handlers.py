"""The kopf wiring: which events run the reconcile loop, and how its results reach Kubernetes.

Thin on purpose: every decision lives in ``reconcile``, ``finalize``, ``schedule`` and ``core``. ``register``
is the list of "on this event, run that"; the handlers below it
- run one reconcile for create, update and resume (one handler id, so progress is keyed once),
- wake each object on a timer for drift checks (interval per object, jittered), accessor expiry and the rescue,
- finalise on deletion,
- run each pass through ``passes`` (the status written before the object's lock is let go, Events posted), follow
  work in flight for a while, and turn a longer "come back later" into ``kopf.TemporaryError`` with the one
  backoff policy (``schedule``).
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
from iaprun_operator.core.shards import shard_of
from iaprun_operator.finalize import finalize
from iaprun_operator.google.bundle import Google
from iaprun_operator.google.ratelimit import PassSlots
from iaprun_operator.kube import GROUP, PLURAL, VERSION
from iaprun_operator.passes import count, follow, post_events, run_pass, view
from iaprun_operator.runtime import PREFIX, NamespaceInfo, Runtime, configure, login
from iaprun_operator.schedule import (
    DRIFT_ANNOTATION,
    ObjectState,
    after_drift_pass,
    come_back_after,
    drift_due,
    next_drift,
    rescue_due,
    state_of,
)
from iaprun_operator.status import merged, status_changes, with_stored_ledger

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
    # Stopped (the object deleted, the operator exiting), the daemon is cancelled at once (kopf's advice for async
    # daemons): its sleep holds no task, and a pass it runs is cut at its next await, its status cache dropped.
    # Without a timeout kopf would wait for it to notice, looking again every 60 s, holding up the deletion.
    kopf.daemon(GROUP, VERSION, PLURAL, id="drift", initial_delay=tick, cancellation_timeout=5.0, registry=registry)(
        partial(drift_daemon, shared=runtime)
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


async def reconcile_handler(body: kopf.Body, retry: int, memo: Any, shared: Runtime, **kw: Any) -> None:
    uid = str(body.metadata.uid)
    if uid in shared.released:
        return  # handed off to another shard (handoff): a late event of this replica's
    state = state_of(memo)
    shared.diffbase.migrate(body=body, patch=kw["patch"])  # an earlier version's copy of the spec, once, if unchanged
    state.handling += 1
    try:
        # A retry needs no IAM re-read; a resume (nothing changed while away) is routine, as a drift pass is.
        routine = retry == 0 and kw.get("reason") == kopf.Reason.RESUME
        result = await run_pass(shared, body, kw["namespaces"], state, follow_up=retry > 0, routine=routine)
        result, attempt = await follow(shared, body, kw["namespaces"], state, result, retry)
    finally:
        state.handling -= 1
    if uid in shared.released:
        return
    state.next_drift = next_drift(body.metadata.annotations, shared.settings)
    if (delay := come_back_after(result, attempt)) is not None:
        state.due_by = time.monotonic() + delay + shared.settings.rescue_grace  # owed by then: the rescue
        raise kopf.TemporaryError(result.message, delay=delay)


async def drift_daemon(
    body: kopf.Body, memo: Any, logger: Any, stopped: kopf.DaemonStopped, shared: Runtime, **kw: Any
) -> None:
    """Each object's watchman: every ``IAPRUN_TIMER_TICK_SECONDS`` it looks whether a drift pass, an accessor
    expiry, a rescue or a hand-off is due, until the object goes (kopf keeps ``body`` fresh meanwhile).

    A kopf daemon looping on its own sleep rather than a kopf timer: a timer's tick went through kopf's handler
    machinery (and logged a line) for every object every tick, 0.6 ms each, which at 10,000 objects was over
    half a core for nothing (docs/performance.md). Here a tick that finds nothing due costs a few comparisons.
    """
    state, tick = state_of(memo), shared.settings.timer_tick
    while not stopped:
        if await look(shared, body, state, logger, kw["namespaces"]):
            return  # handed off to another shard: this replica never acts on the object again
        await asyncio.sleep(tick)


async def look(
    runtime: Runtime, body: kopf.Body, state: ObjectState, logger: Any, index: kopf.Index[str, NamespaceInfo]
) -> bool:
    """One tick: hand the object off, rescue a pass kopf owes it, or run a drift pass when one is due; True once
    the object is another shard's."""
    settings = runtime.settings
    if await handoff.hand_off(runtime, body, state):
        return True
    if rescued := rescue_due(state, settings.rescue_grace, time.monotonic()):
        logger.warning(
            f"kopf has not run the reconcile pass this object is owed for {settings.rescue_grace:.0f} s "
            "(its watch event lost, or the API server unreachable); reconciling from its timer"
        )
        metrics.RESCUES.inc()
    elif not drift_due(state, body.status, settings):
        return False
    state.next_drift = next_drift(body.metadata.annotations, settings)
    after_drift_pass(state, await run_pass(runtime, body, index, state, routine=not rescued))
    return False


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
