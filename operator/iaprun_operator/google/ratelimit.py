"""Client-side token buckets, per Google API, project and region.

Google's quotas are per minute per project (and region for Cloud Run); staying under them is cheaper
than collecting 429s and backing off. A bucket holds a tenth of a minute's quota (at least one call), starts
full, so a burst of that size goes at once, and refills continuously at the quota's rate. A 429 received
anyway pauses the bucket for the advised time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from iaprun_operator import metrics


@dataclass
class TokenBucket:
    rate_per_second: float
    capacity: float
    tokens: float = field(init=False)
    updated: float = field(init=False)
    paused_until: float = 0.0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self.updated = self.clock()
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_second)
        self.updated = now

    def delay_for_one(self) -> float:
        """Seconds until a token is free (0 when one is free now); takes the token when free."""
        now = self.clock()
        self._refill(now)
        if now < self.paused_until:
            return self.paused_until - now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate_per_second

    async def acquire(self, api: str) -> None:
        async with self._lock:  # first come, first served
            while (delay := self.delay_for_one()) > 0:
                metrics.RATE_LIMIT_WAIT.labels(api).inc(delay)
                await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)


class Limiter:
    """Buckets created on first use; ``per_minute`` maps a bucket kind to its quota."""

    def __init__(self, per_minute: dict[str, float]) -> None:
        self._per_minute = per_minute
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}

    def bucket(self, kind: str, *scope: str) -> TokenBucket:
        key = (kind, *scope)
        bucket = self._buckets.get(key)
        if bucket is None:
            rate = self._per_minute[kind]
            # Burst: a tenth of a minute's quota, so a restart does not spend the whole minute at once.
            bucket = TokenBucket(rate_per_second=rate / 60.0, capacity=max(1.0, rate / 10.0))
            self._buckets[key] = bucket
        return bucket
