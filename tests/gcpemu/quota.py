"""Quotas as token buckets per API, project, region and kind (read/write), refilled per minute.

Exhaustion answers what Google's front end answers: 429 RESOURCE_EXHAUSTED with an ErrorInfo
``RATE_LIMIT_EXCEEDED`` carrying the quota metadata, a Help link, and optionally a Retry-After header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gcpemu.clock import Clock
from gcpemu.config import EmulatorConfig
from gcpemu.errors import HELP, ApiError

_NAMES = {
    "run.googleapis.com": "Cloud Run Admin API",
    "iap.googleapis.com": "Cloud Identity-Aware Proxy API",
    "serviceusage.googleapis.com": "Service Usage API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
}


@dataclass
class Bucket:
    capacity: float
    tokens: float
    stamp: float


@dataclass
class Quotas:
    clock: Clock
    buckets: dict[tuple[str, str, str, str], Bucket] = field(default_factory=dict)
    exceeded: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.buckets.clear()
        self.exceeded.clear()

    def take(self, cfg: EmulatorConfig, api: str, project_number: str, region: str, kind: str) -> ApiError | None:
        if not cfg.quotas_enabled:
            return None
        lim = cfg.quota_limits.get(api)
        per_min = getattr(lim, kind, 0) if lim is not None else 0
        if not per_min:
            return None
        key = (api, project_number, region, kind)
        now = self.clock.monotonic()
        b = self.buckets.get(key)
        if b is None or b.capacity != per_min:
            b = Bucket(per_min, float(per_min), now)
            self.buckets[key] = b
        b.tokens = min(b.capacity, b.tokens + (now - b.stamp) * per_min / 60.0)
        b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return None
        self.exceeded[api] = self.exceeded.get(api, 0) + 1
        return _exhausted(cfg, api, project_number, region, kind, per_min)

    def dump(self) -> list[dict[str, Any]]:
        return [
            {"api": k[0], "project": k[1], "region": k[2], "kind": k[3], "capacity": b.capacity, "tokens": b.tokens}
            for k, b in self.buckets.items()
        ]


def _exhausted(cfg: EmulatorConfig, api: str, number: str, region: str, kind: str, per_min: int) -> ApiError:
    word = "Write" if kind == "write" else "Read"
    regional = region != "global"
    metric_name = f"{word} requests"
    limit_name = f"{word} requests per minute" + (" per region" if regional else "")
    metric = f"{api}/{kind}_regional" if regional else f"{api}/{kind}_requests"
    limit = f"{word}PerMinutePerProject" + ("Region" if regional else "")
    meta = {
        "consumer": f"projects/{number}",
        "quota_limit": limit,
        "quota_limit_value": str(per_min),
        "quota_location": region,
        "quota_metric": metric,
        "service": api,
        "quota_unit": "1/min/{project}" + ("/{region}" if regional else ""),
    }
    headers = {"Retry-After": str(cfg.quota_retry_after)} if cfg.quota_retry_after else {}
    return ApiError(
        "RESOURCE_EXHAUSTED",
        f"Quota exceeded for quota metric '{metric_name}' and limit '{limit_name}' of service '{api}' for "
        f"consumer 'project_number:{number}'.",
        reason="RATE_LIMIT_EXCEEDED",
        domain="googleapis.com",
        metadata=meta,
        details=[
            {
                "@type": HELP,
                "links": [
                    {
                        "description": "Request a higher quota limit.",
                        "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                    }
                ],
            }
        ],
        headers=headers,
    )


def service_title(api: str) -> str:
    return _NAMES.get(api, api)
