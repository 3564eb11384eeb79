"""The reconcile handler polls work in flight itself for a while, then hands the wait to kopf (``passes.follow``).

Proves, with the passes scripted (``run_pass`` replaced; the passes themselves are proved elsewhere):
- a pass that reports work in flight is followed by another pass from the handler, marked as a follow-up and
  seeing the status as last written, until one settles; the attempt count goes on from kopf's retry count;
- a wait longer than ``FOLLOW_WITHIN`` is handed back to kopf (the last result, still in progress);
- a failure is never retried here (kopf's backoff handles it), and an object handed off to another shard is not
  polled again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from iaprun_operator import passes as module
from iaprun_operator.results import Requeue, Result
from iaprun_operator.runtime import Runtime
from iaprun_operator.schedule import ObjectState
from iaprun_operator.settings import Settings

BODY = kopf.Body({"metadata": {"uid": "u1", "name": "svc", "namespace": "ns"}, "status": {"stale": True}})


def _result(requeue: Requeue | None) -> Result:
    return Result(requeue=requeue, message=f"{requeue}")


class _Passes:
    """Scripted passes: each returns the next result and records what it was given."""

    def __init__(self, *requeues: Requeue | None) -> None:
        self.script = [_result(r) for r in requeues]
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, runtime: Runtime, body: kopf.Body, index: Any, state: ObjectState, **kw: Any) -> Result:
        self.calls.append({"status": dict(body.status), **kw})
        state.status = {"written": len(self.calls)}
        return self.script.pop(0)


def _follow(monkeypatch: pytest.MonkeyPatch, passes: _Passes, first: Result, runtime: Runtime | None = None) -> Any:
    monkeypatch.setattr(module, "run_pass", passes)
    monkeypatch.setattr(module, "come_back_after", lambda result, attempt: 0.0 if result.requeue else None)
    state = ObjectState(status={"written": 0})
    index: Any = {}
    return asyncio.run(module.follow(runtime or Runtime(Settings()), BODY, index, state, first, 3))


def test_work_in_flight_is_polled_from_the_handler_until_it_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = _Passes(Requeue.PROGRESS, None)
    result, attempt = _follow(monkeypatch, passes, _result(Requeue.PROGRESS))
    assert result.requeue is None
    assert attempt == 5
    assert [c["follow_up"] for c in passes.calls] == [True, True]
    assert [c["status"] for c in passes.calls] == [{"written": 0}, {"written": 1}]  # as last written, not kopf's


def test_a_long_wait_is_handed_back_to_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "FOLLOW_WITHIN", -1.0)
    passes = _Passes()
    result, attempt = _follow(monkeypatch, passes, _result(Requeue.PROGRESS))
    assert (result.requeue, attempt, passes.calls) == (Requeue.PROGRESS, 3, [])


def test_a_failure_is_left_to_kopf_and_a_handed_off_object_is_not_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = _Passes()
    result, _ = _follow(monkeypatch, passes, _result(Requeue.RETRY))
    assert (result.requeue, passes.calls) == (Requeue.RETRY, [])
    runtime = Runtime(Settings())
    runtime.released.add("u1")
    result, _ = _follow(monkeypatch, passes, _result(Requeue.PROGRESS), runtime)
    assert (result.requeue, passes.calls) == (Requeue.PROGRESS, [])
