"""Client-side token buckets, per Google API, project and region.

Google's quotas are per minute per project (and region for Cloud Run); staying under them is cheaper
than collecting 429s and backing off. A bucket holds a tenth of a minute's quota (at least one call), starts
full, so a burst of that size goes at once, and refills continuously at the quota's rate. A 429 received
anyway pauses the bucket for the advised time.

Waiting for a token is not work: a reconcile pass gives up its pass slot (``PassSlots``) while it waits, so
passes starved of one project's quota (one namespace flooding it) cannot hold every slot and delay the passes
of other projects, whose tokens are there (docs/performance.md, "Fairness").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


class _Slot:
    """One pass's claim on a slot, which it may give up and take again (a quota wait in between)."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self.held = False

    async def take(self) -> None:
        await self._semaphore.acquire()
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self._semaphore.release()


_CURRENT: ContextVar[_Slot | None] = ContextVar("iaprun_pass_slot", default=None)


class PassSlots:
    """At most ``size`` reconcile passes at work at once (calls in flight, planning); quota waits excluded."""

    def __init__(self, size: int) -> None:
        self._semaphore = asyncio.Semaphore(size)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        held = _Slot(self._semaphore)
        await held.take()
        token = _CURRENT.set(held)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            held.give()


@asynccontextmanager
async def slot_given_up() -> AsyncIterator[None]:
    """The current pass (if any) holds no slot inside; it queues for one again on the way out."""
    held = _CURRENT.get()
    if held is None or not held.held:
        yield
        return
    held.give()
    try:
        yield
    finally:
        await held.take()


@dataclass
class TokenBucket:
    rate_per_second: float
    capacity: float
    tokens: float = field(init=False)
    updated: float = field(init=False)
    paused_until: float = 0.0
    clock: Callable[[], float] = time.monotonic
    on_wait: Callable[[str, float], None] | None = None
    """Told of every wait for a token (api, seconds): the operator's metrics."""

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
        if not self._lock.locked() and self.delay_for_one() == 0:
            return  # a token was free and nobody queues for one
        async with slot_given_up(), self._lock:  # first come, first served; the pass's slot is free meanwhile
            while (delay := self.delay_for_one()) > 0:
                if self.on_wait is not None:
                    self.on_wait(api, delay)
                await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)


class Limiter:
    """Buckets created on first use; ``per_minute`` maps a bucket kind to its quota."""

    def __init__(self, per_minute: dict[str, float], on_wait: Callable[[str, float], None] | None = None) -> None:
        self._per_minute = per_minute
        self._on_wait = on_wait
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}

    def bucket(self, kind: str, *scope: str) -> TokenBucket:
        key = (kind, *scope)
        bucket = self._buckets.get(key)
        if bucket is None:
            rate = self._per_minute[kind]
            # Burst: a tenth of a minute's quota, so a restart does not spend the whole minute at once.
            bucket = TokenBucket(rate_per_second=rate / 60.0, capacity=max(1.0, rate / 10.0), on_wait=self._on_wait)
            self._buckets[key] = bucket
        return bucket
