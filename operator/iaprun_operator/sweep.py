"""The orphan sweep: services this cluster's objects own, whose object is gone without its finalizer.

A create that timed out on the client may still be applied by Google after the object was deleted (its
finalizer looked, found nothing, and let the object go); a finalizer removed by hand skips the operator
altogether. Either leaves a service with the ownership marks and no object, that nothing else would ever
look at again. Every sweep lists the services of each place (project, region) the operator has worked in,
and for each one whose marks name an object of this cluster that the API server says is gone, does what the
object's deletion policy (stamped on the service) asked for. The decision rules are in ``core.orphans``.
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
from iaprun_operator.core.orphans import OrphanAction, claim
from iaprun_operator.core.service import without_owner
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


async def sweep(
    places: Iterable[tuple[str, str]],
    google: GooglePorts,
    cluster_id: str,
    exists: Exists,
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
            if await exists(found.owner.namespace, found.owner.name):
                continue
            ref = ServiceRef(project, region, str(service.get("name", "")).rsplit("/", 1)[-1])
            await _finish(ref, service, found.action, found.owner.readable, google, report)
    return report


async def forever(
    places: Callable[[], Iterable[tuple[str, str]]],
    google: GooglePorts,
    cluster_id: str,
    exists: Exists,
    *,
    interval: float,
    namespace: str | None,
    owns: Owns | None = None,
) -> None:
    """Sweep every ``interval`` (jittered) until cancelled; a failed sweep is logged and the next one tries again."""
    while True:
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))
        try:
            # ``exists`` is the API server's answer for every owner: no in-process hint can go stale.
            report = await sweep(places(), google, cluster_id, exists, namespace=namespace, owns=owns)
        except Exception:  # the sweep must outlive any one failure
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
