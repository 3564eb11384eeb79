"""Prometheus metrics, served on their own port (kopf has no metrics endpoint).

Names follow Prometheus conventions: base units, ``_total`` counters, and no object names in labels
(cardinality stays bounded however many objects there are). What the chart's PrometheusRule and Grafana
dashboard read (charts/iap-run-operator/files/) is documented in docs/operations.md.

The object gauges (``iaprun_objects``, ``iaprun_objects_with_expiring_accessors``) are computed at scrape time
from a small map, uid -> (condition, reason, next accessor expiry), that the handlers update after each status
they publish and clear when an object is finalized: counts by condition and reason, never a per-object label.
"""

from __future__ import annotations

import platform
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from iaprun_operator import __version__
from iaprun_operator.core.model import parse_timestamp

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


class GoogleCallMetrics:
    """Counts what the Google adapters report (a ``google.calls.CallObserver``): they count nothing themselves."""

    def call(self, api: str, method: str, code: str, seconds: float) -> None:
        GOOGLE_REQUESTS.labels(api, method, code).inc()
        GOOGLE_SECONDS.labels(api, method).observe(seconds)

    def rate_limited(self, api: str) -> None:
        RATE_LIMITED.labels(api).inc()

    def quota_wait(self, api: str, seconds: float) -> None:
        RATE_LIMIT_WAIT.labels(api).inc(seconds)


GOOGLE_CALLS = GoogleCallMetrics()
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

BUILD_INFO = Gauge("iaprun_build_info", "Always 1: the operator's version and Python.", ["version", "python"])
BUILD_INFO.labels(__version__, platform.python_version()).set(1)

# Windows of iaprun_objects_with_expiring_accessors, in seconds, by label value.
EXPIRY_WINDOWS = {"1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}


@dataclass(frozen=True)
class ObjectState:
    """What the object gauges count of one object: its kstatus summary and its next accessor expiry."""

    condition: str  # Stalled, Reconciling, Ready (Ready=True) or NotReady (Ready=False, neither of the others)
    reason: str
    next_expiry: float | None  # epoch seconds


def object_state(status: Mapping[str, Any]) -> ObjectState | None:
    """The summary of a published status (None before it has a Ready condition)."""
    by_type = {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    ready = by_type.get("Ready")
    if ready is None:
        return None
    condition, source = ("Ready" if ready.get("status") == "True" else "NotReady"), ready
    for kind in ("Reconciling", "Stalled"):
        if (found := by_type.get(kind)) is not None and found.get("status") == "True":
            condition, source = kind, found
    expiry = (status.get("iap") or {}).get("nextExpiry")
    try:
        next_expiry = parse_timestamp(str(expiry)).timestamp() if expiry else None
    except ValueError:
        next_expiry = None
    return ObjectState(condition, str(source.get("reason") or ""), next_expiry)


class ObjectStates(Collector):
    """uid -> ObjectState, exported as counts: ``iaprun_objects{condition,reason}`` and expiring accessors."""

    def __init__(self, clock: Any = time.time) -> None:
        self._states: dict[str, ObjectState] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def observe(self, uid: str, status: Mapping[str, Any]) -> None:
        """Record the status just published for object ``uid``."""
        state = object_state(status)
        with self._lock:
            if state is None:
                self._states.pop(uid, None)
            else:
                self._states[uid] = state

    def forget(self, uid: str) -> None:
        """The object is gone (finalized): it counts no more."""
        with self._lock:
            self._states.pop(uid, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            states = list(self._states.values())
        objects = GaugeMetricFamily(
            "iaprun_objects",
            "IapRunService objects by summary condition (Stalled, Reconciling, Ready, NotReady) and its reason.",
            labels=["condition", "reason"],
        )
        for (condition, reason), count in sorted(Tally((s.condition, s.reason) for s in states).items()):
            objects.add_metric([condition, reason], count)
        yield objects
        expiring = GaugeMetricFamily(
            "iaprun_objects_with_expiring_accessors",
            "Objects with an accessor grant that expires within the window (1d, 7d, 30d; already expired included).",
            labels=["within"],
        )
        now = self._clock()
        for window, seconds in EXPIRY_WINDOWS.items():
            count = sum(1 for s in states if s.next_expiry is not None and s.next_expiry <= now + seconds)
            expiring.add_metric([window], count)
        yield expiring


OBJECTS = ObjectStates()
REGISTRY.register(OBJECTS)


def serve(port: int) -> None:
    if port:
        start_http_server(port)
