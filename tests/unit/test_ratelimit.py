"""The client-side token bucket, on a clock the test moves: it starts full (a burst of a tenth of a minute's
quota), refills continuously at the quota's rate, never holds more than its burst, and a 429's pause holds
every call back until it ends. No test sleeps."""

from __future__ import annotations

import pytest

from iaprun_operator.google.ratelimit import Limiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bucket(per_minute: float, burst: float) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate_per_second=per_minute / 60.0, capacity=burst, clock=clock), clock


def test_a_full_bucket_lets_its_burst_through_then_paces_at_the_rate() -> None:
    tokens, clock = bucket(60.0, 6.0)  # one call a second, burst of six
    assert [tokens.delay_for_one() for _ in range(6)] == [0.0] * 6
    assert tokens.delay_for_one() == pytest.approx(1.0)
    clock.now += 0.5
    assert tokens.delay_for_one() == pytest.approx(0.5)
    clock.now += 0.5
    assert tokens.delay_for_one() == 0.0  # the token that refilled is taken
    assert tokens.delay_for_one() == pytest.approx(1.0)


def test_a_long_idle_refills_only_up_to_the_burst() -> None:
    tokens, clock = bucket(60.0, 3.0)
    for _ in range(3):
        tokens.delay_for_one()
    clock.now += 3600
    assert [tokens.delay_for_one() for _ in range(3)] == [0.0] * 3
    assert tokens.delay_for_one() > 0


def test_waiting_does_not_spend_a_token() -> None:
    """A call told to wait takes nothing: asking again after the wait finds the token it was promised."""
    tokens, clock = bucket(60.0, 1.0)
    tokens.delay_for_one()
    wait = tokens.delay_for_one()
    assert tokens.delay_for_one() == pytest.approx(wait)
    clock.now += wait
    assert tokens.delay_for_one() == 0.0


def test_a_pause_after_a_429_holds_every_call_until_it_ends_and_never_shortens() -> None:
    tokens, clock = bucket(600.0, 10.0)
    tokens.pause(30.0)
    assert tokens.delay_for_one() == pytest.approx(30.0)
    tokens.pause(5.0)  # a shorter advice later does not cut the first one short
    clock.now += 29.0
    assert tokens.delay_for_one() == pytest.approx(1.0)
    clock.now += 1.0
    assert tokens.delay_for_one() == 0.0


@pytest.mark.parametrize(("per_minute", "burst"), [(60.0, 6.0), (1000.0, 100.0), (5.0, 1.0)])
def test_the_limiter_sizes_the_burst_to_a_tenth_of_a_minute_at_least_one(per_minute: float, burst: float) -> None:
    made = Limiter({"run_write": per_minute}).bucket("run_write", "p", "r")
    assert made.capacity == burst
    assert made.rate_per_second == pytest.approx(per_minute / 60.0)


def test_the_limiter_keeps_one_bucket_per_kind_and_scope() -> None:
    limiter = Limiter({"run_write": 60.0, "iap": 600.0})
    assert limiter.bucket("run_write", "p", "r") is limiter.bucket("run_write", "p", "r")
    assert limiter.bucket("run_write", "p", "r") is not limiter.bucket("run_write", "p", "other-region")
    assert limiter.bucket("iap", "p") is not limiter.bucket("run_write", "p")
