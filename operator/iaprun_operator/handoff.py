"""Moving objects between shards without a moment in which two replicas act on one object.

The shard label is the single owner of record, and only a replica that may act on an object (or on nothing)
ever changes it:

- **New objects** (no label) are seen by no replica when there are several shards. Shard 0's active replica
  runs the *assigner*: it watches unlabelled objects and labels each with ``shard_of`` (its first write).
- **More shards**: an object that the new count gives to another shard is handed off by its current owner,
  from its own drift timer, holding the object's lock and only while no pass is in flight or owed; it writes
  the new label and never acts on the object again (``Runtime.released``). The label change drops the object
  from the owner's watch and adds it to the new shard's, which resumes it.
- **Fewer shards**: objects labelled for a shard that no longer exists (or anything that is not a shard
  index) are collected by shard 0's active replica, which first takes the removed shard's Lease: a replica of
  it still running would hold that Lease, so nothing moves until it is gone, and it cannot come back while the
  objects move.

A replica that runs an older shard count during a rollout never disagrees with the newer one: rendezvous
hashing gives an object the same shard among the first N as among the first N + 1 unless shard N wins it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import kopf
from kubernetes import client, watch

from iaprun_operator import leadership
from iaprun_operator.core.shards import LABEL, labelled_shard, shard_of
from iaprun_operator.kube import GROUP, PLURAL, VERSION, api_client
from iaprun_operator.schedule import ObjectState
from iaprun_operator.settings import HaSettings

if TYPE_CHECKING:
    from iaprun_operator.runtime import Runtime

log = logging.getLogger(__name__)
COLLECT_EVERY = 60.0
"""Seconds between looks for objects of removed shards (a label-selected list, usually empty)."""


class ShardLabels:
    """Lists IapRunService objects by label selector and writes their shard label (the only writes here)."""

    def __init__(self, namespace: str | None) -> None:
        self._api = client.CustomObjectsApi(api_client())
        self._namespace = namespace

    def list_page(self, selector: str, **extra: Any) -> Any:
        if self._namespace:
            return self._api.list_namespaced_custom_object(
                GROUP, VERSION, self._namespace, PLURAL, label_selector=selector, **extra
            )
        return self._api.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector=selector, **extra)

    def pages(self, selector: str) -> Iterator[dict[str, Any]]:
        """Every object matching ``selector``, 500 at a time."""
        token = None
        while True:
            page = self.list_page(selector, limit=500, _continue=token, _request_timeout=60)
            yield from page.get("items", [])
            if not (token := page.get("metadata", {}).get("continue")):
                return

    def events(self, selector: str, version: str) -> Iterator[dict[str, Any]]:
        """Watch events from ``version`` (ends after a few minutes, or raises on a stale version)."""
        yield from watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.list_page, selector, resource_version=version, timeout_seconds=240, allow_watch_bookmarks=False
        )

    def label(self, obj: dict[str, Any], shard: int) -> None:
        meta = obj["metadata"]
        patch = {"metadata": {"labels": {LABEL: str(shard)}, "resourceVersion": meta["resourceVersion"]}}
        self._api.patch_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], patch, _request_timeout=30
        )


def _label_new(labels: ShardLabels, obj: dict[str, Any], shards: int) -> None:
    meta = obj.get("metadata", {})
    if LABEL in (meta.get("labels") or {}):
        return
    shard = shard_of(meta["namespace"], meta["name"], shards)
    try:
        labels.label(obj, shard)  # with the resourceVersion read: a concurrent change wins, the watch brings it back
    except client.ApiException as error:
        if error.status not in (404, 409):
            raise


def assign_new(labels: ShardLabels, shards: int, stop: threading.Event) -> None:
    """Label every unlabelled object with its shard, then keep doing so from a watch (shard 0's active replica)."""
    selector = f"!{LABEL}"
    while not stop.is_set():
        try:
            page = labels.list_page(selector, _request_timeout=60)
            for obj in page.get("items", []):
                _label_new(labels, obj, shards)
            for event in labels.events(selector, page["metadata"]["resourceVersion"]):
                if stop.is_set():
                    return
                if event["type"] in ("ADDED", "MODIFIED"):
                    _label_new(labels, event["raw_object"], shards)
        except Exception as error:  # API server away, a stale watch: list again shortly
            log.warning("Shard assigner: %s; listing again", error)
            stop.wait(2.0)


def collect_removed(labels: ShardLabels, ha: HaSettings, me: str, stop: threading.Event) -> int:
    """Move the objects of shards that no longer exist, each shard under its own Lease. Returns objects moved."""
    kept = ",".join(str(k) for k in range(ha.shards))
    found: dict[int | None, list[dict[str, Any]]] = {}
    for obj in labels.pages(f"{LABEL},{LABEL} notin ({kept})"):
        found.setdefault(labelled_shard(obj["metadata"].get("labels")), []).append(obj)
    moved = 0
    for shard, objects in sorted(found.items(), key=lambda item: -1 if item[0] is None else item[0]):
        lease = None
        if shard is not None:
            lease = leadership.Lease(
                client.CoordinationV1Api(api_client()),
                namespace=str(ha.lease_namespace),
                name=leadership.lease_name(ha, shard),
                me=f"{me}/collector",
                duration=ha.lease_duration,
            )
            if not lease.acquire(ha.retry_period, stop):
                return moved
        try:
            for obj in objects:
                meta = obj["metadata"]
                labels.label(obj, shard_of(meta["namespace"], meta["name"], ha.shards))
                moved += 1
        finally:
            if lease is not None:
                lease.release()
        log.info("Moved %d objects of removed shard %s to the remaining %d shards", len(objects), shard, ha.shards)
    return moved


def run_assigner(ha: HaSettings, namespace: str | None, stop: threading.Event) -> None:
    """Shard 0's duties, in daemon threads: label new objects (several shards), collect removed shards' objects."""
    labels = ShardLabels(namespace)
    me = leadership.identity(ha)
    if ha.shards > 1:
        threading.Thread(target=assign_new, args=(labels, ha.shards, stop), name="shard-assigner", daemon=True).start()

    def collect() -> None:
        while True:
            try:
                collect_removed(labels, ha, me, stop)
            except Exception as error:
                log.warning("Collecting the objects of removed shards failed: %s", error)
            if stop.wait(COLLECT_EVERY):
                return

    threading.Thread(target=collect, name="shard-collector", daemon=True).start()


async def hand_off(runtime: Runtime, body: kopf.Body, state: ObjectState) -> bool:
    """From the owner's drift timer: True when the object is (now) another shard's, so this replica leaves it.

    The hand-off waits until the object is idle here: a pass has finished in this process (kopf owes it no
    resume), none is running, none is owed (no come-back pending), and it is not being deleted (its owner
    finalises it). The label is written with the resourceVersion this replica last saw: a change it has not
    handled yet makes the write fail, and the hand-off waits for the next tick.
    """
    uid, ha = str(body.metadata.uid), runtime.settings.ha
    if uid in runtime.released:
        return True
    if ha.shards == 1 or runtime.labels is None or body.metadata.get("deletionTimestamp"):
        return False
    target = shard_of(str(body.metadata.namespace), str(body.metadata.name), ha.shards)
    lock = runtime.lock(uid)
    if target == ha.shard or state.next_drift is None or state.handling or state.due_by is not None or lock.locked():
        return False
    async with lock:
        try:
            await asyncio.to_thread(runtime.labels.label, {"metadata": dict(body.metadata)}, target)
        except Exception as error:  # a newer version, the API server away: the next tick tries again
            log.info("Hand-off of %s to shard %d deferred: %s", _key(body), target, error)
            return False
        runtime.released.add(uid)
    log.info("Handed %s off to shard %d", _key(body), target)
    return True


def _key(body: kopf.Body) -> str:
    return f"{body.metadata.namespace}/{body.metadata.name}"
