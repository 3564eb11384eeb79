"""The orphan sweep: services this cluster's objects own, whose object is gone without its finalizer.

A create that timed out on the client may still be applied by Google after the object was deleted (its
finalizer looked, found nothing, and let the object go); a finalizer removed by hand skips the operator
altogether. Either leaves a service with the ownership marks and no object, that nothing else would ever
look at again. Every sweep lists the services of each place (project, region) the operator has worked in,
and for each one whose marks name an object of this cluster that the API server says is gone, does what the
object's deletion policy (stamped on the service) asked for. The decision rules are in ``core.orphans``.

An object deleted under managementPolicy ObserveOnly or Paused left its service marked on purpose: the
finalizer recorded it (``ledger``), and the sweep never finishes the service of a recorded owner. The record is
read again for each such service, after the API server said its owner is gone (the finalizer records before it
lets the object go, so that read cannot miss it); an entry goes once a listing shows its service gone or owned
by someone else (``core.orphans.released``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from iaprun_operator import metrics
from iaprun_operator.core.errors import GoogleError
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.orphans import OrphanAction, claim, released
from iaprun_operator.core.service import without_owner
from iaprun_operator.ledger import Ledger, LedgerError
from iaprun_operator.ports import GooglePorts

log = logging.getLogger(__name__)
Exists = Callable[[str, str], Awaitable[bool]]
Owns = Callable[[str, str], bool]
"""Is the object namespace/name this replica's (its shard's)?"""


@dataclass
class SweepReport:
    """What one sweep did, by service resource name."""

    deleted: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    """Services whose object was deleted under ObserveOnly or Paused (recorded in the ledger): never touched."""
    released: list[str] = field(default_factory=list)
    """Ledger entries removed: their service is gone, or its marks name another owner or none."""


async def sweep(
    places: Iterable[tuple[str, str]],
    google: GooglePorts,
    cluster_id: str,
    exists: Exists,
    ledger: Ledger,
    *,
    namespace: str | None = None,
    owns: Owns | None = None,
) -> SweepReport:
    """One pass over ``places``: one ``services.list`` each, then one write per orphan found.

    ``namespace``: an operator that watches one namespace claims only its objects' services (operators of
    other namespaces may share the cluster id and the places). ``owns``: a shard claims only the orphans whose
    owner's namespace/name hash to it (``core.shards``), so each orphan is finished by exactly one shard.
    """
    report = SweepReport()
    recorded = await _recorded(ledger)  # read before any listing: ``released`` may only use later listings
    for project, region in sorted(set(places)):
        try:
            services = await google.run.list(project, region)
        except GoogleError as error:
            log.warning("Orphan sweep could not list services in %s/%s: %s", project, region, error.message)
            report.failed.append(f"projects/{project}/locations/{region}")
            continue
        for service in services:
            found = claim(service, cluster_id)
            if found is None or (namespace is not None and found.owner.namespace != namespace):
                continue
            if owns is not None and not owns(found.owner.namespace, found.owner.name):
                continue
            ref = ServiceRef(project, region, str(service.get("name", "")).rsplit("/", 1)[-1])
            if await exists(found.owner.namespace, found.owner.name):
                continue
            if await ledger.holds(found.owner.label):
                report.left.append(ref.name)
            else:
                await _finish(ref, service, found.action, found.owner.readable, google, report)
        for key in released(recorded, project, region, services, cluster_id):
            if await ledger.forget(key, recorded[key]):
                report.released.append(key)
    return report


async def _recorded(ledger: Ledger) -> dict[str, str]:
    try:
        return await ledger.entries()
    except LedgerError as error:  # only the pruning of entries needs this read: skip it this time
        log.warning("Orphan sweep could not read the record of left services: %s", error)
        return {}


async def forever(
    places: Callable[[], Iterable[tuple[str, str]]],
    google: GooglePorts,
    cluster_id: str,
    exists: Exists,
    ledger: Ledger,
    *,
    interval: float,
    namespace: str | None,
    owns: Owns | None = None,
) -> None:
    """Sweep every ``interval`` (jittered) until cancelled; a failed sweep is logged and the next one tries again."""
    while True:
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))
        try:
            # ``exists`` and ``ledger`` are the API server's answers: no in-process hint can go stale or be lost.
            report = await sweep(places(), google, cluster_id, exists, ledger, namespace=namespace, owns=owns)
        except Exception:  # the sweep must outlive any one failure
            log.exception("Orphan sweep failed")
            continue
        if report.deleted or report.abandoned or report.reported or report.failed or report.released:
            log.info(
                "Orphan sweep: %d deleted, %d abandoned, %d reported, %d failed, %d left untouched as recorded, "
                "%d records released",
                len(report.deleted),
                len(report.abandoned),
                len(report.reported),
                len(report.failed),
                len(report.left),
                len(report.released),
            )


async def _finish(
    ref: ServiceRef,
    service: Mapping[str, Any],
    action: OrphanAction,
    owner: str,
    google: GooglePorts,
    report: SweepReport,
) -> None:
    etag = str(service.get("etag") or "")
    try:
        if action is OrphanAction.DELETE:
            await google.run.delete(ref, etag=etag)
            report.deleted.append(ref.name)
            metrics.CHANGES.labels("OrphanDeleted").inc()
            log.warning("Deleted orphaned service %s: its object %s is gone (deletionPolicy Delete)", ref.name, owner)
        elif action is OrphanAction.ABANDON:
            await google.run.update(ref, {**without_owner(service), "etag": etag}, ("labels", "annotations"))
            report.abandoned.append(ref.name)
            metrics.CHANGES.labels("OrphanAbandoned").inc()
            log.warning("Removed the ownership marks of orphaned service %s: its object %s is gone", ref.name, owner)
        else:
            report.reported.append(ref.name)
            log.warning(
                "Service %s is marked as owned by %s, which is gone; it carries no deletion policy, so it is left "
                "as is (delete it, or remove its iaprun-owner label, by hand)",
                ref.name,
                owner,
            )
    except GoogleError as error:
        report.failed.append(ref.name)
        log.warning("Orphan sweep could not finish %s (next sweep retries): %s", ref.name, error.message)
    metrics.ORPHANS.labels(action.value).inc()
