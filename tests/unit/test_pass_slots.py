"""Quota waits hold no pass slot: one project's empty bucket cannot delay passes that have their tokens.

A namespace flooding one project with passes (hundreds of objects on a short drift) makes them all wait for
that project's tokens. If they waited holding their slots, every other namespace's pass would queue behind
them; the integration test ``test_fairness`` shows it end to end, these show the mechanism.
"""

from __future__ import annotations

import asyncio

from iaprun_operator.google.ratelimit import PassSlots, TokenBucket


def _empty_bucket(rate: float) -> TokenBucket:
    bucket = TokenBucket(rate_per_second=rate, capacity=1.0)
    bucket.tokens = 0.0
    return bucket


async def _pass(slots: PassSlots, bucket: TokenBucket, calls: int, done: list[str], name: str) -> None:
    async with slots.slot():
        for _ in range(calls):
            await bucket.acquire("test")
    done.append(name)


def test_a_pass_waiting_for_quota_lets_another_pass_through() -> None:
    async def scenario() -> list[str]:
        slots = PassSlots(2)
        starved = _empty_bucket(rate=2.0)  # one token every 0.5 s
        plenty = TokenBucket(rate_per_second=100.0, capacity=100.0)
        done: list[str] = []
        flood = [asyncio.create_task(_pass(slots, starved, 1, done, f"flood-{i}")) for i in range(10)]
        await asyncio.sleep(0.05)  # the flood has taken (and given up) every slot
        await asyncio.wait_for(_pass(slots, plenty, 3, done, "other"), timeout=0.3)
        for task in flood:
            task.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
        return done

    assert asyncio.run(scenario())[0] == "other"


def test_slots_still_bound_the_passes_at_work() -> None:
    """A pass with its tokens keeps its slot: at most ``size`` passes between two awaits of real work."""

    async def scenario() -> int:
        slots = PassSlots(3)
        at_work = peak = 0

        async def work() -> None:
            nonlocal at_work, peak
            async with slots.slot():
                at_work += 1
                peak = max(peak, at_work)
                await asyncio.sleep(0.01)
                at_work -= 1

        await asyncio.gather(*(work() for _ in range(20)))
        return peak

    assert asyncio.run(scenario()) == 3


def test_a_pass_cancelled_while_waiting_gives_no_slot_back_twice() -> None:
    async def scenario() -> bool:
        slots = PassSlots(1)
        waiting = asyncio.create_task(_pass(slots, _empty_bucket(rate=0.01), 1, [], "stuck"))
        await asyncio.sleep(0.02)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        async with slots.slot():
            return slots._semaphore.locked()  # exactly one slot: taken now

    assert asyncio.run(scenario()) is True
