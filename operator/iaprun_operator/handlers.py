"""The kopf wiring: which events run the reconcile loop, and how its results reach Kubernetes.

Thin on purpose: every decision lives in ``reconcile`` and ``core``. Here we only
- run one reconcile for create, update and resume (one handler id, so progress is keyed once),
- wake each object on a timer for drift checks (interval per object, jittered) and accessor expiry,
- finalise on deletion,
- write the returned status through kopf's patch (observedGeneration with the conditions), post Events,
  and turn "come back later" into ``kopf.TemporaryError`` with a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from iaprun_operator import metrics, sweep
from iaprun_operator.core.model import InvalidSpecError, parse_timestamp
from iaprun_operator.diffbase import DigestDiffBaseStorage
from iaprun_operator.google.bundle import Google
from iaprun_operator.google.ratelimit import PassSlots
from iaprun_operator.kube import ObjectExistence
from iaprun_operator.reconcile import ObjectView, Result, finalize, reconcile, refuse
from iaprun_operator.settings import Settings

GROUP, VERSION, PLURAL = "iaprun.dev", "v1alpha1", "iaprunservices"
PREFIX = "iaprun.dev"
DRIFT_ANNOTATION = "iaprun.dev/drift-interval"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamespaceInfo:
    uid: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


@dataclass
class Runtime:
    """What handlers share: settings, the Google adapters, and the cluster's identity."""

    settings: Settings
    google: Google | None = None
    cluster_id: str = ""
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    passes: PassSlots | None = None
    """At most ``settings.workers`` reconcile passes at work at once; a pass waiting for quota holds no slot
    (made on the operator's event loop)."""
    places: set[tuple[str, str]] = field(default_factory=set)
    """Every (project, region) a pass of this process resolved an object to: where the orphan sweep looks."""
    sweeper: asyncio.Task[None] | None = None

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())


def backoff(retry: int, *, base: float, cap: float) -> float:
    """Exponential backoff with full jitter on the top half, so retries of many objects spread out."""
    delay = min(cap, base * (1.5**retry))
    return delay / 2 + random.uniform(0, delay / 2)


def drift_interval(annotations: Mapping[str, str], *, default: float, floor: float) -> float:
    """The object's drift interval: its annotation (seconds, ``s`` suffix allowed), else the operator's default.

    An annotation below ``floor``, or not a finite number, raises ``InvalidSpecError``: the object stalls with a
    message naming the annotation and the floor, rather than being checked every tick (or never) as it asks.
    """
    raw = str(annotations.get(DRIFT_ANNOTATION) or "").strip()
    if not raw:
        return default  # the platform's own choice, not bound by the floor it sets for tenants
    try:
        value = float(raw.removesuffix("s"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < floor:
        raise InvalidSpecError(
            f"annotation {DRIFT_ANNOTATION}: {raw!r} is not a number of seconds of at least {floor:g} (the "
            f'operator\'s floor, IAPRUN_MIN_DRIFT_INTERVAL_SECONDS); write one such as "{max(floor, 600):g}" '
            "or remove the annotation"
        )
    return value


def _now(settings: Settings) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=settings.clock_offset)


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    settings = runtime.settings
    diffbase = DigestDiffBaseStorage(prefix=PREFIX)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = f"{PREFIX}/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
        # A digest of the last handled spec, not kopf's copy of it (diffbase.py says why).
        settings.persistence.diffbase_storage = diffbase
        settings.posting.reporting_component = "iap-run-operator"
        # Events come from the loop (one per change or failure). kopf would also turn its own log lines
        # into Events, e.g. an Error Event for every "come back later" while Cloud Run works.
        settings.posting.level = logging.CRITICAL
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.networking.request_timeout = 60
        # Ride out a control-plane restart (a minute or more of refused connections): kopf's default retries
        # give up after ~54 s, and a status patch given up on is lost until the object's next event. Retry
        # every 5 s for ~5 minutes, so the operator is back within seconds of the API server.
        settings.networking.error_backoffs = [1, 1, 2, 3, 5] + [5] * 58
        # W reconcile passes at once (Runtime.passes) bound the Google work. kopf's per-object workers get
        # a looser cap: a worker keeps its slot while it sleeps out a requeue delay (a Cloud Run operation)
        # and for idle_timeout after its last event, so a cap of W admitted only about W objects every few
        # seconds; no cap at all let a thousand objects flood the API server at once (patch timeouts, and
        # a watch lagging so far that handlers got bodies older than their own last patch). Each worker in
        # flight costs memory: 4W peaked above 300 MB at 1,000 objects, 2W cost throughput (docs/performance.md).
        settings.queueing.worker_limit = 3 * runtime.settings.workers
        settings.queueing.idle_timeout = 1.0
        settings.execution.max_workers = runtime.settings.workers
        runtime.google = Google.build(runtime.settings)
        runtime.passes = PassSlots(runtime.settings.workers)
        if runtime.settings.orphan_sweep_interval > 0:
            runtime.sweeper = asyncio.create_task(sweep_forever(ObjectExistence(GROUP, VERSION, PLURAL)))
        metrics.serve(runtime.settings.metrics_port)

    async def sweep_forever(exists: ObjectExistence) -> None:
        interval = runtime.settings.orphan_sweep_interval
        while True:
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))
            if runtime.google is None or not runtime.cluster_id:
                continue
            try:
                report = await sweep.sweep(
                    set(runtime.places),
                    runtime.google,
                    runtime.cluster_id,
                    exists,  # the API server's answer for every owner: no in-process hint can go stale
                    namespace=settings.watch_namespace,
                )
            except Exception:  # the sweep must outlive any one failure; the next one tries again
                log.exception("Orphan sweep failed")
                continue
            if report.deleted or report.abandoned or report.reported or report.failed:
                log.info(
                    "Orphan sweep: %d deleted, %d abandoned, %d reported, %d failed",
                    len(report.deleted),
                    len(report.abandoned),
                    len(report.reported),
                    len(report.failed),
                )

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster ServiceAccount first, then KUBECONFIG (a custom registry has no default login)."""
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(
            **kwargs
        )
        return info

    @kopf.on.cleanup(registry=registry)
    async def shutdown(**_: Any) -> None:
        if runtime.sweeper is not None:
            runtime.sweeper.cancel()
        if runtime.google is not None:
            runtime.google.calls.close()

    @kopf.index("", "v1", "namespaces", id="namespaces", registry=registry)
    def namespaces(
        name: str, uid: str, labels: Mapping[str, str], annotations: Mapping[str, str], **_: Any
    ) -> dict[str, NamespaceInfo]:
        return {name: NamespaceInfo(uid=uid, labels=dict(labels), annotations=dict(annotations))}

    def view(
        body: kopf.Body, index: kopf.Index[str, NamespaceInfo], status: Mapping[str, Any] | None = None
    ) -> ObjectView:
        namespace = str(body.metadata.namespace)
        info = next(iter(index.get(namespace, [])), None)
        if not runtime.cluster_id:
            system = next(iter(index.get("kube-system", [])), None)
            runtime.cluster_id = settings.cluster_id or (system.uid if system else "cluster")
        return ObjectView(
            namespace=namespace,
            name=str(body.metadata.name),
            generation=int(body.metadata.get("generation") or 0),
            spec=dict(body.spec),
            status=dict(body.status if status is None else status),
            cluster_id=runtime.cluster_id,
            namespace_labels=info.labels if info else {},
            namespace_annotations=info.annotations if info else {},
        )

    def publish(result: Result, body: kopf.Body, patch: kopf.Patch) -> None:
        # Only what changed: a steady-state pass then patches nothing in Kubernetes either.
        for key, value in status_changes(body.status, result.status).items():
            patch.status[key] = value
        for event in result.events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)

    async def run_pass(
        body: kopf.Body,
        patch: kopf.Patch,
        index: kopf.Index[str, NamespaceInfo],
        memo: Any,
        *,
        follow_up: bool = False,
    ) -> Result:
        assert runtime.google is not None
        assert runtime.passes is not None
        started = time.monotonic()
        # The object's lock first: a pass holding a slot never waits for another pass of the same object, which
        # may have given its slot up for a quota wait and need one back to finish.
        async with runtime.lock(str(body.metadata.uid)), runtime.passes.slot():
            # kopf hands over a body older than this process's own last status patch when the watch lags
            # past its consistency timeout; the status as last written here is then the better truth
            # (else, e.g., a missing templateHash would read as a template change and cost a PATCH).
            memo.pop("due_by", None)  # a pass is running: whatever kopf owed the object is being done
            known = memo.get("status")
            obj = view(body, index, None if known is None else with_stored_ledger(known, body.status))
            try:
                drift_interval(body.metadata.annotations, default=0, floor=settings.min_drift_interval)
            except InvalidSpecError as error:
                result = refuse(obj, runtime.google, settings, _now(settings), str(error))
            else:
                result = await reconcile(obj, runtime.google, settings, _now(settings), follow_up=follow_up)
            memo["status"] = merged(obj.status, result.status)
        if (project := memo["status"].get("projectID")) and (region := memo["status"].get("region")):
            runtime.places.add((str(project), str(region)))
        outcome = result.requeue or "settled"
        metrics.RECONCILES.labels(outcome).inc()
        metrics.RECONCILE_SECONDS.labels(outcome).observe(time.monotonic() - started)
        count(result, obj.owner.readable)
        publish(result, body, patch)
        metrics.OBJECTS.observe(str(body.metadata.uid), memo["status"])
        return result

    def come_back(result: Result, retry: int, memo: Any = None) -> None:
        """Ask kopf for the next pass, and (with ``memo``) note by when it is owed, for the rescue."""
        if result.requeue == "progress":
            delay = backoff(retry, base=1.0, cap=15.0)
        elif result.requeue == "retry":
            delay = result.retry_after or backoff(retry, base=2.0, cap=300.0)
        else:
            return
        if memo is not None:
            memo["due_by"] = time.monotonic() + delay + settings.rescue_grace
        raise kopf.TemporaryError(result.message, delay=delay)

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    async def reconcile_handler(body: kopf.Body, patch: kopf.Patch, retry: int, memo: Any, **kwargs: Any) -> None:
        # A retry comes back for the operation the previous pass started: it need not re-read the IAM.
        memo["handling"] = int(memo.get("handling") or 0) + 1
        try:
            result = await run_pass(body, patch, kwargs["namespaces"], memo, follow_up=retry > 0)
        finally:
            memo["handling"] -= 1
        memo["next_drift"] = _next_drift(body, settings)
        come_back(result, retry, memo)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        id="drift",
        registry=registry,
        interval=settings.timer_tick,
        initial_delay=settings.timer_tick,
    )
    async def drift_handler(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Any, **kwargs: Any) -> None:
        diffbase.migrate(body=body, patch=patch)  # an earlier version's copy of the spec, once, if unchanged
        if rescue_due(memo, settings.rescue_grace, time.monotonic()):
            logger.warning(
                f"kopf has not run the reconcile pass this object is owed for {settings.rescue_grace:.0f} s "
                "(its watch event lost, or the API server unreachable); reconciling from its timer"
            )
            metrics.RESCUES.inc()
        elif not _drift_due(body, memo, settings):
            return
        memo["next_drift"] = _next_drift(body, settings)
        result = await run_pass(body, patch, kwargs["namespaces"], memo)
        if result.requeue is None:
            memo["drift_retry"] = 0
            return
        # The drift pass started work (a correcting patch) or hit a transient error: look again soon,
        # not a whole drift interval later.
        retry = int(memo.get("drift_retry") or 0)
        memo["drift_retry"] = retry + 1
        base, cap = (1.0, 15.0) if result.requeue == "progress" else (2.0, 300.0)
        memo["next_drift"] = time.monotonic() + (result.retry_after or backoff(retry, base=base, cap=cap))

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="finalize", registry=registry)
    async def finalize_handler(body: kopf.Body, retry: int, **kwargs: Any) -> None:
        assert runtime.google is not None
        async with runtime.lock(str(body.metadata.uid)):
            obj = view(body, kwargs["namespaces"])
            result = await finalize(obj, runtime.google, settings, deleting_started=retry > 0)
        count(result, obj.owner.readable)
        for event in result.events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        if not result.done:
            come_back(result, retry)
        runtime.locks.pop(str(body.metadata.uid), None)
        metrics.OBJECTS.forget(str(body.metadata.uid))


def count(result: Result, owner: str) -> None:
    """The one place the facts a pass returns become metrics."""
    for reason in result.facts.changes:
        metrics.CHANGES.labels(reason).inc()
    if result.facts.public_invoker_found:
        metrics.PUBLIC_INVOKER_FOUND.inc(result.facts.public_invoker_found)
    if result.facts.foreign_members is not None:
        metrics.FOREIGN_MEMBERS.set(owner, result.facts.foreign_members)


def status_changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields whose value differs from what the object already shows.

    None means "absent" in a merge patch, so a None that is already absent is no change.
    """
    return {key: value for key, value in wanted.items() if _without_none(current.get(key)) != _without_none(value)}


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def with_stored_ledger(known: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``known`` with the Additive ledger as the API server stores it.

    A grant waits until the ledger naming the member is stored (so a crash can never leave a grant the
    object does not remember). The cached status may hold a ledger whose patch failed; only the stored one
    may let a grant through. A lagging copy only costs an extra pass.
    """
    iap = dict(known.get("iap") or {})
    ledger = (stored.get("iap") or {}).get("addedMembers")
    if ledger is None:
        iap.pop("addedMembers", None)
    else:
        iap["addedMembers"] = ledger
    return {**known, "iap": iap}


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` after a JSON merge patch of ``changes`` (None removes a key; mappings merge)."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def _next_drift(body: kopf.Body, settings: Settings) -> float:
    """When the object's next drift pass is due: its interval with jitter, and never sooner than the floor when
    the interval came from (or was refused in) its annotation."""
    floor = settings.min_drift_interval
    try:
        interval = drift_interval(body.metadata.annotations, default=settings.drift_interval, floor=floor)
    except InvalidSpecError:  # the pass stalled the object; look again no sooner than the floor allows
        interval = max(settings.drift_interval, floor)
    jitter = interval * settings.drift_jitter
    delay = interval + random.uniform(-jitter, jitter)
    if body.metadata.annotations.get(DRIFT_ANNOTATION):
        delay = max(delay, floor)
    return time.monotonic() + delay


def rescue_due(memo: Any, grace: float, now: float) -> bool:
    """Whether the timer should run a pass that kopf owes the object and has not run (a lost watch event).

    kopf owes a pass when it has not finished one in this process (the object's first event is being handled;
    owed by ``grace`` after the timer's first tick), or when a pass asked to come back (owed by the delay plus
    ``grace``: ``memo["due_by"]``, cleared when any pass starts). Never while the reconcile handler runs: it
    owns the object (a create waiting for quota, say), and a timer pass would queue behind it and then act
    on the status from before it (no applied template hash: a needless PATCH).
    """
    if memo.get("handling"):
        return False
    due = memo.get("due_by")
    if due is None and memo.get("next_drift") is None:
        due = float(memo.setdefault("first_tick", now)) + grace
    return due is not None and now >= float(due)


def _drift_due(body: kopf.Body, memo: Any, settings: Settings) -> bool:
    """A drift check is due at the object's own interval, or earlier when an accessor expires."""
    due = memo.get("next_drift")
    if due is None:
        return False
    if time.monotonic() >= float(due):
        return True
    expiry = (body.status.get("iap") or {}).get("nextExpiry")
    if expiry:
        try:
            return parse_timestamp(str(expiry)) <= _now(settings)
        except ValueError:
            return True
    return False
