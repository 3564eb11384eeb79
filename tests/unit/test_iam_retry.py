"""The IAM read-modify-write: on ABORTED (a concurrent change) the whole cycle is repeated, read first, after
an exponential, jittered backoff, as Google's error message asks; other errors are not retried; after the
last attempt ABORTED reaches the caller. The pause is injected, so no test waits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.steps.common import IAM_ATTEMPTS, IAM_BACKOFF, read_modify_write


@dataclass(frozen=True)
class Decided:
    policy: dict[str, Any] | None


class Store:
    """A policy with an etag; ``write`` answers ``failures`` (in order) before it succeeds."""

    def __init__(self, *failures: Kind) -> None:
        self.failures = list(failures)
        self.reads = 0
        self.writes: list[dict[str, Any]] = []
        self.pauses: list[float] = []

    async def read(self) -> dict[str, Any]:
        self.reads += 1
        return {"etag": f"e{self.reads}", "bindings": []}

    @staticmethod
    def plan(policy: dict[str, Any]) -> Decided:
        return Decided({**policy, "bindings": [{"role": "roles/run.invoker", "members": ["user:a@example.com"]}]})

    async def write(self, policy: dict[str, Any]) -> None:
        self.writes.append(policy)
        if self.failures:
            kind = self.failures.pop(0)
            raise GoogleError(kind, "There were concurrent policy changes.", api="run", method="setIamPolicy")

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)

    async def run(self) -> Any:
        return await read_modify_write(self.read, self.plan, self.write, pause=self.pause)


async def test_aborted_repeats_the_whole_cycle_with_the_fresh_etag_after_a_growing_pause() -> None:
    store = Store(Kind.CONFLICT, Kind.CONFLICT)
    await store.run()
    assert [w["etag"] for w in store.writes] == ["e1", "e2", "e3"]
    assert store.reads == 3
    assert len(store.pauses) == 2
    first, second = store.pauses
    assert IAM_BACKOFF / 2 <= first <= IAM_BACKOFF
    assert IAM_BACKOFF <= second <= 2 * IAM_BACKOFF


async def test_aborted_on_every_attempt_reaches_the_caller() -> None:
    store = Store(*[Kind.CONFLICT] * IAM_ATTEMPTS)
    with pytest.raises(GoogleError) as raised:
        await store.run()
    assert raised.value.kind is Kind.CONFLICT
    assert len(store.writes) == IAM_ATTEMPTS
    assert len(store.pauses) == IAM_ATTEMPTS - 1  # no pause after the last attempt


@pytest.mark.parametrize("kind", [Kind.PERMISSION, Kind.INVALID, Kind.TRANSIENT, Kind.RATE_LIMITED])
async def test_other_errors_are_not_retried_here(kind: Kind) -> None:
    store = Store(kind)
    with pytest.raises(GoogleError):
        await store.run()
    assert (len(store.writes), store.pauses) == (1, [])


async def test_nothing_to_write_reads_once_and_writes_nothing() -> None:
    store = Store()
    decided = await read_modify_write(store.read, lambda p: Decided(None), store.write, pause=store.pause)
    assert decided.policy is None
    assert (store.reads, store.writes, store.pauses) == (1, [], [])
