"""Prometheus metrics, served on their own port (kopf has no metrics endpoint).

Names follow Prometheus conventions: base units, ``_total`` counters, and no object names in labels
(cardinality stays bounded however many objects there are).
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("iaprun_reconcile_total", "Reconcile passes, by result.", ["result"])
RECONCILE_SECONDS = Histogram(
    "iaprun_reconcile_duration_seconds",
    "Duration of one reconcile pass, by result.",
    ["result"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
GOOGLE_REQUESTS = Counter(
    "iaprun_google_requests_total",
    "Google API requests, by API, method and HTTP code.",
    ["api", "method", "code"],
)
GOOGLE_SECONDS = Histogram(
    "iaprun_google_request_duration_seconds", "Latency of Google API requests.", ["api", "method"]
)
RATE_LIMIT_WAIT = Counter(
    "iaprun_rate_limit_wait_seconds_total", "Seconds spent waiting for client-side quota, by API.", ["api"]
)
RATE_LIMITED = Counter("iaprun_google_rate_limited_total", "429 RESOURCE_EXHAUSTED answers received, by API.", ["api"])
PUBLIC_INVOKER_FOUND = Counter(
    "iaprun_public_invoker_bindings_found_total",
    "Public run.invoker bindings found on IAP-protected services (removed unless the object opts out).",
)
RESCUES = Counter(
    "iaprun_rescued_passes_total",
    "Reconcile passes an object's timer ran because kopf was late with a pass it owed the object.",
)
ORPHANS = Counter(
    "iaprun_orphan_services_total",
    "Services found owned by an object of this cluster that is gone, by what the sweep did (Delete, Abandon, Report).",
    ["action"],
)
CHANGES = Counter("iaprun_changes_total", "Writes the operator made to Google resources, by kind.", ["kind"])


class _ForeignMembers:
    """Members holding the accessor role that no object manages, summed over objects."""

    def __init__(self) -> None:
        self._by_object: dict[str, int] = {}
        self._lock = threading.Lock()
        self.gauge = Gauge(
            "iaprun_foreign_accessor_members",
            "Accessor-role members on managed services that no object declares.",
        )

    def set(self, uid: str, count: int) -> None:
        with self._lock:
            if count:
                self._by_object[uid] = count
            else:
                self._by_object.pop(uid, None)
            self.gauge.set(sum(self._by_object.values()))


FOREIGN_MEMBERS = _ForeignMembers()


def serve(port: int) -> None:
    if port:
        start_http_server(port)
