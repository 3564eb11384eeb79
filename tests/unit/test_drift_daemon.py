"""Each object's drift daemon: what one tick does (``handlers.look``), and that the daemon loops on its own sleep.

Proves, with the passes scripted (``run_pass`` replaced; the passes themselves are proved elsewhere):
- a tick with nothing due runs no pass (the common tick: a few comparisons, no kopf machinery);
- a tick at the object's drift time runs a routine pass and schedules the next one;
- a tick past the rescue deadline runs a pass that is not routine (kopf owes the object one);
- the daemon looks every tick until kopf stops it, and returns at once when the object was handed off to another
  shard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf
import pytest

from iaprun_operator import handlers
from iaprun_operator.results import Result
from iaprun_operator.runtime import Runtime
from iaprun_operator.schedule import ObjectState
from iaprun_operator.settings import Settings

BODY = kopf.Body({"metadata": {"uid": "u1", "name": "svc", "namespace": "ns", "annotations": {}}, "status": {}})
LOG = logging.getLogger("test")
INDEX: Any = {}


class _Passes:
    def __init__(self) -> None:
        self.routine: list[bool] = []

    async def __call__(self, runtime: Runtime, body: kopf.Body, index: Any, state: ObjectState, **kw: Any) -> Result:
        self.routine.append(kw["routine"])
        return Result()


def _look(monkeypatch: pytest.MonkeyPatch, state: ObjectState, runtime: Runtime | None = None) -> _Passes:
    passes = _Passes()
    monkeypatch.setattr(handlers, "run_pass", passes)
    assert not asyncio.run(handlers.look(runtime or Runtime(Settings()), BODY, state, LOG, INDEX))
    return passes


def test_a_tick_with_nothing_due_runs_no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    state = ObjectState(next_drift=time.monotonic() + 600)
    assert _look(monkeypatch, state).routine == []


def test_a_tick_at_the_drift_time_runs_a_routine_pass_and_schedules_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    state = ObjectState(next_drift=time.monotonic() - 1)
    assert _look(monkeypatch, state).routine == [True]
    assert state.next_drift is not None
    assert state.next_drift > time.monotonic() + 60


def test_a_tick_past_the_rescue_deadline_runs_a_pass_kopf_owes(monkeypatch: pytest.MonkeyPatch) -> None:
    state = ObjectState(next_drift=time.monotonic() + 600, due_by=time.monotonic() - 1)
    assert _look(monkeypatch, state).routine == [False]


class _Stopped:
    """kopf's stop flag as a daemon sees it: unset for ``ticks`` looks, then set."""

    def __init__(self, ticks: int) -> None:
        self.left, self.checks = ticks, 0

    def __bool__(self) -> bool:
        self.checks += 1
        return self.checks > self.left


def _daemon(runtime: Runtime, stopped: _Stopped, memo: Any) -> None:
    daemon = handlers.drift_daemon(BODY, memo, LOG, stopped, runtime, namespaces=INDEX)  # type: ignore[arg-type]
    asyncio.run(daemon)


def test_the_daemon_ticks_until_stopped_and_leaves_a_handed_off_object_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = _Passes()
    monkeypatch.setattr(handlers, "run_pass", passes)
    runtime, memo = Runtime(Settings(timer_tick=0.0)), kopf.Memo()
    memo["object"] = ObjectState(next_drift=time.monotonic() - 1)  # every look finds a drift pass due
    _daemon(runtime, _Stopped(ticks=3), memo)
    assert len(passes.routine) == 1  # the first look ran it; the next ones found the next drift far away
    stopped = _Stopped(ticks=3)
    _daemon(runtime, stopped, memo)
    assert stopped.checks == 4  # three looks, then stopped
    runtime.released.add("u1")
    stopped = _Stopped(ticks=3)
    _daemon(runtime, stopped, memo)
    assert stopped.checks == 1  # handed off: the first look returns
