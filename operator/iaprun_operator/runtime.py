"""What the kopf handlers share (``Runtime``), and kopf's own settings and API-server session for this operator.

Apart from ``handlers`` so that module is only the list of events and what each runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from iaprun_operator.core.shards import selector
from iaprun_operator.diffbase import DigestDiffBaseStorage
from iaprun_operator.google.bundle import Google
from iaprun_operator.google.ratelimit import PassSlots
from iaprun_operator.handoff import ShardLabels
from iaprun_operator.kube import GROUP, PLURAL
from iaprun_operator.ledger import Ledger
from iaprun_operator.settings import HaSettings, Settings
from iaprun_operator.statuswrite import StatusWriter

PREFIX = "iaprun.dev"


@dataclass(frozen=True)
class NamespaceInfo:
    uid: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


@dataclass
class Runtime:
    """What handlers share: settings, the Google adapters, and the cluster's identity (all set at start-up)."""

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
    ledger: Ledger | None = None
    """The record of services left untouched at deletion (ObserveOnly, Paused): written by the finalizer, read by
    the orphan sweep (a ConfigMap in the operator's namespace, set at start-up)."""
    diffbase: DigestDiffBaseStorage = field(default_factory=lambda: DigestDiffBaseStorage(prefix=PREFIX))
    labels: ShardLabels | None = None
    """Writes shard labels (several shards only): the owner's hand-offs (``handoff``)."""
    released: set[str] = field(default_factory=set)
    """Uids of objects this replica handed off to another shard: it never acts on them again."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set at clean-up: the shard assigner's threads end."""
    status_writer: StatusWriter = field(default_factory=StatusWriter)
    """Writes each pass's status over kopf's session (set at each login)."""

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def __repr__(self) -> str:
        """Short: kopf names each timer after its handler, whose ``partial`` holds this object. The generated
        repr printed every lock and status cached, so stopping 1,000 timers at exit cost O(n²) CPU."""
        ha = self.settings.ha
        return f"Runtime(shard={ha.shard}/{ha.shards}, objects={len(self.locks)})"


async def login(shared: Runtime, **kwargs: Any) -> kopf.AiohttpSession | None:
    """In-cluster ServiceAccount first, then KUBECONFIG (a custom registry has no default login), over a session
    with a bounded connection pool."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if info is None:
        return None
    session = kube_session(info, shared.settings.kube_connections)
    shared.status_writer.use(session.aiohttp_session, info.server)  # the status writes share kopf's session and pool
    return session


def kube_session(info: kopf.ConnectionInfo, connections: int) -> kopf.AiohttpSession:
    """kopf's session to the API server as kopf builds it from ``info``, but with at most ``connections`` open.

    kopf's own has no limit: at start-up over 1,000 objects about one TLS connection per request in flight was
    opened (each with its buffers), a third of the peak memory. A cap of 24 cost no throughput
    (docs/performance.md). kopf closes the session when it logs in again (e.g. a rotated token).
    """
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )


def configure(
    settings: kopf.OperatorSettings, workers: int, diffbase: DigestDiffBaseStorage, ha: HaSettings | None = None
) -> None:
    """kopf's own settings for this operator (persistence, posting, watching, networking, queueing)."""
    ha = ha or HaSettings()
    if ha.lease_namespace is not None:
        # The API server sends this replica its shard's objects only (core.shards). A lone replica without
        # election watches everything: no label can hide an object from it.
        settings.watching.label_selectors[GROUP, PLURAL] = selector(ha.shard, ha.shards)
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
    settings.queueing.worker_limit = 3 * workers
    settings.queueing.idle_timeout = 1.0
    settings.execution.max_workers = workers
