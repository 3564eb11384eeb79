"""A pass writes its own status, under its object's lock, against the real kube-apiserver (``statuswrite``).

Proves:
- a pass's status is stored before ``run_pass`` returns, and a pass whose result the object already shows sends
  nothing (the resourceVersion stays);
- two passes of one object write in the order they ran: the second pass is not computed until the first one's
  write has landed, so the stored status is the second's (docs/reliability.md, "The status converges to the last
  pass");
- a write that fails leaves no cached status and turns the pass into "come back soon", so the next pass writes
  again from the stored body;
- the writer's answers: 404 for an object that is gone, a refusal for a status the CRD schema rejects.

The passes are refused for an invalid drift annotation (each names the value it read): no Google call.
No operator process runs in this module: the test is the only writer of its object.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf._core.engines import posting

from iaprun_operator.google.ratelimit import PassSlots
from iaprun_operator.passes import run_pass
from iaprun_operator.results import Requeue, Result
from iaprun_operator.runtime import Runtime, kube_session
from iaprun_operator.schedule import DRIFT_ANNOTATION, ObjectState
from iaprun_operator.settings import Settings
from iaprun_operator.statuswrite import StatusWriteError, StatusWriter
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
NO_INDEX: Any = {}
"""kopf's namespace index, empty: the passes are refused before they need a namespace's labels."""


def _apply(kubectl: Runner, namespace: str, drift: str = "1") -> kopf.Body:
    manifest = {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": "order", "namespace": namespace, "annotations": {DRIFT_ANNOTATION: drift}},
        "spec": {"region": "asia-northeast1", "template": {"containers": [{"image": "hello"}]}},
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return kopf.Body(_stored(kubectl, namespace))


def _stored(kubectl: Runner, namespace: str) -> Any:
    return json.loads(kubectl("get", "-n", namespace, "iaprunservices/order", "-o", "json").stdout)


def _ready_message(stored: Any) -> str:
    return str(next(c for c in stored["status"]["conditions"] if c["type"] == "Ready")["message"])


def _with_drift(body: kopf.Body, drift: str) -> kopf.Body:
    raw = json.loads(json.dumps(dict(body)))
    raw["metadata"]["annotations"][DRIFT_ANNOTATION] = drift
    return kopf.Body(raw)


@asynccontextmanager
async def _runtime(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, writer: StatusWriter) -> AsyncIterator[Runtime]:
    """A runtime whose status writer speaks to the test's API server over a session built as the operator's."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # kopf.event needs kopf's settings, and no Event queue then
    posting.settings_var.set(settings)
    info = kopf.login_with_kubeconfig(settings=settings)
    assert info is not None
    session = kube_session(info, 4)
    writer.use(session.aiohttp_session, info.server)
    runtime = Runtime(settings=Settings(), status_writer=writer)
    runtime.google, runtime.passes = object(), PassSlots(2)  # type: ignore[assignment]  # refused: no Google call
    try:
        yield runtime
    finally:
        await session.aiohttp_session.close()


def _run(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, writer: StatusWriter, steps: Callable[[Runtime], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with _runtime(kubeconfig, monkeypatch, writer) as runtime:
            await steps(runtime)

    asyncio.run(main())


def test_a_pass_stores_its_status_before_it_returns_and_a_steady_pass_writes_nothing(
    control_plane: ControlPlane, crd: None, namespace: str, kubectl: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _apply(kubectl, namespace)
    versions: list[str] = []

    async def steps(runtime: Runtime) -> None:
        state = ObjectState()
        await run_pass(runtime, body, NO_INDEX, state)
        stored = _stored(kubectl, namespace)
        assert "'1'" in _ready_message(stored)
        versions.append(stored["metadata"]["resourceVersion"])
        await run_pass(runtime, kopf.Body(stored), NO_INDEX, state)  # the same result again: nothing to write
        versions.append(_stored(kubectl, namespace)["metadata"]["resourceVersion"])

    _run(control_plane.kubeconfig, monkeypatch, StatusWriter(), steps)
    assert versions[0] == versions[1], "a steady pass wrote"


class _HeldWriter(StatusWriter):
    """Holds its first write until released: the first pass's write is in flight while the second pass waits."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def write(self, namespace: str, name: str, changes: Any) -> bool:
        if not self.sending.is_set():
            self.sending.set()
            await self.release.wait()
        return await super().write(namespace, name, changes)


def test_two_passes_of_one_object_write_in_the_order_they_ran(
    control_plane: ControlPlane, crd: None, namespace: str, kubectl: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _apply(kubectl, namespace)
    writer = _HeldWriter()

    async def steps(runtime: Runtime) -> None:
        state = ObjectState()
        first = asyncio.create_task(run_pass(runtime, body, NO_INDEX, state))
        await writer.sending.wait()  # the first pass computed; its write is in flight
        second = asyncio.create_task(run_pass(runtime, _with_drift(body, "2"), NO_INDEX, state))
        for _ in range(20):
            await asyncio.sleep(0)  # let the second pass run as far as it can
        assert not second.done()
        assert state.status is not None
        assert "'1'" in _ready_message({"status": state.status}), "the second pass ran while the first one wrote"
        writer.release.set()
        await asyncio.gather(first, second)

    _run(control_plane.kubeconfig, monkeypatch, writer, steps)
    assert "'2'" in _ready_message(_stored(kubectl, namespace))


def test_a_write_not_stored_leaves_no_cached_status_and_asks_for_another_pass(
    control_plane: ControlPlane, crd: None, namespace: str, kubectl: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _apply(kubectl, namespace)
    results: list[Result] = []
    states: list[ObjectState] = []

    async def steps(runtime: Runtime) -> None:
        runtime.status_writer.server = "http://127.0.0.1:9"  # nothing listens: every attempt is refused
        state = ObjectState()
        results.append(await run_pass(runtime, body, NO_INDEX, state))
        states.append(state)

    _run(control_plane.kubeconfig, monkeypatch, StatusWriter(retry_delays=(0.01,)), steps)
    (result,), (state,) = results, states
    assert result.requeue is Requeue.RETRY
    assert "could not write the status" in result.message
    assert state.status is None
    assert "status" not in _stored(kubectl, namespace)


def test_the_writer_reports_a_gone_object_and_refuses_nothing_silently(
    control_plane: ControlPlane, crd: None, namespace: str, kubectl: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apply(kubectl, namespace)
    answers: list[Any] = []

    async def steps(runtime: Runtime) -> None:
        writer = runtime.status_writer
        answers.append(await writer.write(namespace, "order", {"region": "asia-northeast1"}))
        answers.append(await writer.write(namespace, "gone", {"region": "asia-northeast1"}))
        with pytest.raises(StatusWriteError, match="refused"):
            await writer.write(namespace, "order", {"observedGeneration": "not a number"})

    _run(control_plane.kubeconfig, monkeypatch, StatusWriter(), steps)
    assert answers == [True, False]
    assert _stored(kubectl, namespace)["status"]["region"] == "asia-northeast1"
