"""Hot standby: one Lease (coordination.k8s.io/v1) per shard, so exactly one replica of each shard is active.

client-go's leader election, in the operator's own terms. A replica is a standby until it holds its shard's
Lease; only then does it start kopf (no watch, no handler, no Google call before). The active replica renews
every ``retry_period``; when it has gone ``renew_deadline`` without a renewal it exits at once (``os._exit``,
like client-go's default ``OnStoppedLeading``), so a replica cut off from the API server stops acting before
any standby may take over. A standby takes the Lease only when the record it sees has not changed for
``lease_duration`` on its own clock (never compared with another machine's clock), or was released. A replica
stopped by SIGTERM releases the Lease once kopf has stopped, so its standby takes over in one retry period; a
replica that is killed is replaced after ``lease_duration``. Every write carries the resourceVersion it read:
two standbys racing for one Lease cannot both win.

The Kubernetes client ships a LeaderElection too; it is not used because it reads the wall clock, never
releases, and runs the leader's work in a thread it does not stop.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from iaprun_operator.settings import HaSettings

log = logging.getLogger(__name__)


def lease_name(ha: HaSettings, shard: int) -> str:
    return f"{ha.lease_name}-shard-{shard}"


def identity(ha: HaSettings) -> str:
    return ha.identity or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Record:
    """What a Lease says, as far as the election cares (a change in any of it is a sign of life)."""

    holder: str
    renewed: str


def may_take(seen: Record | None, seen_at: float, now: float, me: str, duration: float) -> bool:
    """client-go's rule: free, mine, released, or unchanged for a whole ``duration`` since this process saw it."""
    return seen is None or seen.holder in ("", me) or now >= seen_at + duration


class Lease:
    """One shard's Lease, acquired, renewed and released by this replica."""

    def __init__(
        self,
        api: client.CoordinationV1Api,
        *,
        namespace: str,
        name: str,
        me: str,
        duration: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api, self.namespace, self.name, self.me = api, namespace, name, me
        self._duration, self._clock = duration, clock
        self._seen: Record | None = None
        self._seen_at = 0.0
        self.holder = ""

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards. API errors count as "not held"."""
        now = self._clock()
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace, _request_timeout=5)
        except ApiException as error:
            if error.status != 404:
                log.warning("Lease %s/%s unreadable: %s %s", self.namespace, self.name, error.status, error.reason)
                return False
            return self._write(None, now)
        except Exception as error:  # connection refused, timeouts: not held
            log.warning("Lease %s/%s unreadable: %s", self.namespace, self.name, error)
            return False
        self._observe(lease, now)
        if not may_take(self._seen, self._seen_at, now, self.me, self._duration):
            return False
        return self._write(lease, now)

    def _observe(self, lease: Any, now: float) -> None:
        spec = lease.spec or client.V1LeaseSpec()
        record = Record(str(spec.holder_identity or ""), str(spec.renew_time or ""))
        self.holder = record.holder
        if record != self._seen:
            self._seen_at = now
        self._seen = record

    def _write(self, lease: Any | None, now: float) -> bool:
        stamp = dt.datetime.now(dt.UTC)
        spec = client.V1LeaseSpec(
            holder_identity=self.me, lease_duration_seconds=math.ceil(self._duration), renew_time=stamp
        )
        try:
            if lease is None:
                spec.acquire_time, spec.lease_transitions = stamp, 0
                meta = client.V1ObjectMeta(name=self.name, namespace=self.namespace)
                written = self._api.create_namespaced_lease(
                    self.namespace, client.V1Lease(metadata=meta, spec=spec), _request_timeout=5
                )
            else:
                old = lease.spec or client.V1LeaseSpec()
                taking = old.holder_identity != self.me
                spec.acquire_time = stamp if taking else old.acquire_time
                spec.lease_transitions = (old.lease_transitions or 0) + (1 if taking and old.holder_identity else 0)
                lease.spec = spec  # metadata keeps the resourceVersion read: a racing writer gets 409
                written = self._api.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=5)
        except Exception as error:  # 409 (someone else wrote first) and connection errors alike
            log.debug("Lease %s/%s not written: %s", self.namespace, self.name, error)
            return False
        self._observe(written, now)
        return True

    def release(self) -> None:
        """Give the Lease up (holder emptied) if this replica still holds it, so a standby takes it at once."""
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace, _request_timeout=5)
            if lease.spec is None or lease.spec.holder_identity != self.me:
                return
            lease.spec.holder_identity = ""
            lease.spec.lease_duration_seconds = 1
            self._api.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=5)
            log.info("Released Lease %s/%s", self.namespace, self.name)
        except Exception as error:  # the standby then waits out lease_duration instead
            log.warning("Could not release Lease %s/%s: %s", self.namespace, self.name, error)

    def acquire(self, retry: float, stop: threading.Event | None = None) -> bool:
        """Try every ``retry`` seconds until held (True) or ``stop`` is set (False)."""
        stop = stop or threading.Event()
        logged = False
        while not self.try_acquire_or_renew():
            if not logged:
                log.info("Standby for Lease %s/%s (held by %s)", self.namespace, self.name, self.holder or "nobody")
                logged = True
            if stop.wait(retry):
                return False
        log.info("Acquired Lease %s/%s as %s", self.namespace, self.name, self.me)
        return True


def exit_now() -> None:
    """What a replica does when it can no longer prove it holds its Lease: stop acting, at once."""
    log.critical("Lost the Lease (not renewed within the renew deadline): exiting so that no two replicas act")
    logging.shutdown()
    os._exit(3)


class Renewer(threading.Thread):
    """Renews the held Lease every ``retry`` seconds in its own thread (a busy event loop cannot delay it); calls
    ``on_lost`` when ``deadline`` seconds pass without a renewal."""

    def __init__(
        self,
        lease: Lease,
        *,
        retry: float,
        deadline: float,
        on_lost: Callable[[], None] = exit_now,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name=f"lease-{lease.name}", daemon=True)
        self.lease, self._retry, self._deadline, self._on_lost, self._clock = lease, retry, deadline, on_lost, clock
        self.stopped = threading.Event()

    def run(self) -> None:
        renewed = self._clock()
        while not self.stopped.wait(self._retry):
            if self.lease.try_acquire_or_renew():
                renewed = self._clock()
            elif self._clock() - renewed > self._deadline:
                self._on_lost()
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=self._retry + 6)


class _Alive(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"standby": true}')

    def log_message(self, *_: Any) -> None:
        return


@contextmanager
def standby_liveness(url: str | None) -> Iterator[None]:
    """Answer the liveness probe while this replica waits as a standby (kopf serves it once active)."""
    if not url:
        yield
        return
    where = urlsplit(url)
    server = ThreadingHTTPServer((where.hostname or "0.0.0.0", where.port or 8081), _Alive)
    thread = threading.Thread(target=server.serve_forever, name="standby-liveness", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def active(ha: HaSettings, liveness: str | None) -> Iterator[None]:
    """Enter once this replica holds its shard's Lease (at once without election); renew it while inside; release
    it on the way out (kopf has stopped by then), or exit the process when a renewal deadline passes."""
    if ha.lease_namespace is None:
        yield
        return
    from iaprun_operator.kube import api_client

    lease = Lease(
        client.CoordinationV1Api(api_client()),
        namespace=ha.lease_namespace,
        name=lease_name(ha, ha.shard),
        me=identity(ha),
        duration=ha.lease_duration,
    )
    with standby_liveness(liveness):
        lease.acquire(ha.retry_period)
    renewer = Renewer(lease, retry=ha.retry_period, deadline=ha.renew_deadline)
    renewer.start()
    try:
        yield
    finally:
        renewer.stop()
        lease.release()
