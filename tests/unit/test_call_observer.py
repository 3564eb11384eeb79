"""The Google adapters count nothing themselves: every call, 429 and quota wait is reported to the observer the
operator passes in (its metrics), with the API, the method and the HTTP code. Real client exceptions, no sleep
longer than one tiny quota wait."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as core_exceptions

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.google.calls import Calls
from iaprun_operator.google.ratelimit import TokenBucket


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.limited: list[str] = []
        self.waits: list[tuple[str, float]] = []

    def call(self, api: str, method: str, code: str, seconds: float) -> None:
        self.calls.append((api, method, code))

    def rate_limited(self, api: str) -> None:
        self.limited.append(api)

    def quota_wait(self, api: str, seconds: float) -> None:
        self.waits.append((api, seconds))


def refuse() -> None:
    raise core_exceptions.TooManyRequests("Quota exceeded")


async def test_calls_and_429s_are_reported_with_their_code() -> None:
    seen = Recorder()
    calls = Calls(threads=1, observer=seen)
    try:
        assert await calls.run("run", "services.get", None, lambda: "ok") == "ok"
        with pytest.raises(GoogleError) as failed:
            await calls.run("run", "services.patch", None, refuse)
    finally:
        calls.close()
    assert failed.value.kind is Kind.RATE_LIMITED
    assert seen.calls == [("run", "services.get", "200"), ("run", "services.patch", "429")]
    assert seen.limited == ["run"]


async def test_a_wait_for_quota_is_reported() -> None:
    seen = Recorder()
    bucket = TokenBucket(rate_per_second=1000.0, capacity=1.0, on_wait=seen.quota_wait)
    await bucket.acquire("iap")  # the one token of the burst
    await bucket.acquire("iap")  # waits about a millisecond for the next
    assert {api for api, _ in seen.waits} == {"iap"}
    assert all(seconds > 0 for _, seconds in seen.waits)
