"""Only the newest pass's status may land: the rule of ``status.newest_only`` (docs/reliability.md).

Proves, on kopf 1.45's own ``Patch`` (the JSON patch it builds from a transformation at patch time):
- a pass superseded by a newer pass of the same object writes nothing, whenever kopf gets to its patch;
- the newest pass writes its result over the body kopf holds at patch time, and nothing when that body
  already shows it (steady state: no ops, so no request);
- ``handlers.run_pass`` hands kopf its status that way: of two passes whose patches kopf applies in the
  opposite order, only the second's lands (passes refused for a drift annotation: no Google call);
- the bench incident's interleaving, replayed step by step: a rescue pass (``Creating``) and the handler's
  pass (``Ready``) both pending, the handler's write landing first and the rescue's retried after it. The
  store here applies a JSON patch only on the resourceVersion it was computed against and otherwise keeps
  it for the next cycle, which is what kopf's ``patch_obj`` and kube-apiserver do together
  (tests/integration/test_status_order.py runs the same against the real API server). The old wiring (a
  merge patch of the pass's status) ends ``Creating`` on the same interleaving.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import jsonpatch
import kopf
from kopf._core.engines import posting

from iaprun_operator.google.ratelimit import PassSlots
from iaprun_operator.handlers import run_pass
from iaprun_operator.runtime import Runtime
from iaprun_operator.schedule import DRIFT_ANNOTATION, ObjectState
from iaprun_operator.settings import Settings
from iaprun_operator.status import merged, newest_only

CREATING = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False", "reason": "Creating"}]}
READY = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "UpToDate"}]}


def _body(status: dict[str, Any], version: int) -> dict[str, Any]:
    return {"metadata": {"name": "svc", "resourceVersion": str(version)}, "status": copy.deepcopy(status)}


def _pass(state: ObjectState, result: dict[str, Any]) -> kopf.PatchFn:
    """What ``handlers.run_pass`` adds to kopf's patch: numbered under the object's lock."""
    state.passes += 1
    number = state.passes
    return newest_only(result, lambda: state.passes == number)


def test_a_superseded_pass_writes_nothing() -> None:
    state = ObjectState()
    older = _pass(state, CREATING)
    _pass(state, READY)
    assert kopf.Patch(fns=[older]).as_json_patch(_body({}, 1)) == []


def test_the_newest_pass_writes_over_the_body_kopf_holds_and_nothing_when_it_shows_it() -> None:
    state = ObjectState()
    newest = _pass(state, {**READY, "plan": None})
    fresher = _body({**CREATING, "plan": {"changes": 1}, "region": "asia-northeast1"}, 7)
    written = jsonpatch.apply_patch(fresher, kopf.Patch(fns=[newest]).as_json_patch(fresher))
    assert written["status"] == {**READY, "region": "asia-northeast1"}  # None removes; other fields stay
    assert kopf.Patch(fns=[newest]).as_json_patch(written) == []  # steady: no op, no request


class _Server:
    """One object; a JSON patch lands only on the resourceVersion kopf built it against (kopf's ``test`` op)."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.body = _body(status, 1)

    def prepare(self, write: kopf.PatchFn) -> tuple[int, list[Any]]:
        """The request kopf sends (and resends unchanged when it times out): ops and the version they need."""
        return int(self.body["metadata"]["resourceVersion"]), kopf.Patch(fns=[write]).as_json_patch(self.body)

    def land(self, request: tuple[int, list[Any]]) -> bool:
        version, ops = request
        if version != int(self.body["metadata"]["resourceVersion"]):
            return False  # 422: kopf keeps the transformation for the next cycle
        if ops:
            self.body = jsonpatch.apply_patch(self.body, ops)
            self.body["metadata"]["resourceVersion"] = str(version + 1)
        return True


def test_an_older_pass_landing_after_the_newest_leaves_the_newest_result() -> None:
    server, state = _Server({}), ObjectState()
    rescue = _pass(state, CREATING)
    in_flight = server.prepare(rescue)  # the rescue's PATCH times out and is retried...
    handler = _pass(state, READY)
    assert server.land(server.prepare(handler))  # ...while the handler's pass lands first
    assert not server.land(in_flight)  # the retry is refused: built against an older version
    assert server.land(server.prepare(rescue))  # kopf's next cycle: superseded, writes nothing
    assert server.body["status"] == READY


def test_every_landing_order_of_two_pending_passes_ends_with_the_newest() -> None:
    for rescue_first in (True, False):
        server, state = _Server({}), ObjectState()
        rescue = _pass(state, CREATING)
        early = server.prepare(rescue)
        handler = _pass(state, READY)
        pending = [(rescue, early), (handler, server.prepare(handler))]
        for write, request in pending if rescue_first else reversed(pending):
            if not server.land(request):
                server.land(server.prepare(write))
        assert server.body["status"] == READY, f"rescue first: {rescue_first}"


def test_the_old_merge_patches_end_with_whichever_lands_last() -> None:
    """The bug this rule fixes: a merge patch carries no version, so kopf's retry of an older one wins."""
    stored: dict[str, Any] = {}
    for status in (READY, CREATING):  # the handler's write, then the rescue's retried write
        stored = merged(stored, status)
    assert stored == CREATING


def _object(drift: str) -> dict[str, Any]:
    return {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": "svc", "namespace": "ns", "uid": "u1", "generation": 1, "resourceVersion": "1",
                     "annotations": {DRIFT_ANNOTATION: drift}},
        "spec": {"region": "asia-northeast1"},
    }  # fmt: skip


def test_run_pass_hands_kopf_only_the_newest_pass_status() -> None:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # kopf.event needs kopf's settings, and no Event queue then
    posting.settings_var.set(settings)
    runtime, state = Runtime(settings=Settings()), ObjectState()
    runtime.google, runtime.passes = object(), PassSlots(1)  # type: ignore[assignment]  # refused: no Google call

    async def two_passes() -> list[kopf.Patch]:
        patches = [kopf.Patch(), kopf.Patch()]
        for drift, patch in zip(("1", "2"), patches, strict=True):  # each stalls, naming the value it read
            await run_pass(runtime, kopf.Body(_object(drift)), patch, {}, state)
        return patches

    first, second = asyncio.run(two_passes())
    stored = _object("2")
    for patch in (second, first):  # kopf lands the newer pass's patch first, the older one's after it
        stored = jsonpatch.apply_patch(stored, patch.as_json_patch(stored))
    ready = next(c for c in stored["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "'2'" in ready["message"], ready["message"]
