"""Two passes of one object, their status writes landing out of order, against the real kube-apiserver.

Replays the bench incident with kopf 1.45's own ``patch_obj`` (what kopf runs after a handler or a timer
returns) and the operator's ``status.newest_only``, step by step and without sleeps: the timer's rescue pass
(``Creating``) is computed first and its request built; the reconcile handler's pass (``Ready``) is computed
next and lands; the rescue's request is then resent unchanged, as kopf resends a request that timed out.
Proves: the resent write is refused by the API server (built against an older resourceVersion), kopf keeps
it for the next cycle, where the superseded pass writes nothing; the object stays Ready. The same resend as
a merge patch (the wiring before the fix) lands and leaves the object ``Creating``.

No operator process runs in this module: the test is the only writer of its object.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import auth
from kopf._cogs.clients.patching import patch_obj
from kopf._cogs.structs import credentials

from iaprun_operator.schedule import ObjectState
from iaprun_operator.status import newest_only
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)
RESOURCE = kopf.Resource(
    "iaprun.dev", "v1alpha1", "iaprunservices", namespaced=True, subresources=frozenset({"status"})
)


def _ready(status: str, reason: str) -> dict[str, Any]:
    condition = {"type": "Ready", "status": status, "reason": reason, "message": reason}
    return {"observedGeneration": 1, "conditions": [{**condition, "lastTransitionTime": "2026-12-02T00:00:00Z"}]}


CREATING, READY = _ready("False", "Creating"), _ready("True", "UpToDate")


def _apply(kubectl: Runner, namespace: str) -> None:
    manifest = {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": "order", "namespace": namespace},
        "spec": {"region": "asia-northeast1", "template": {"containers": [{"image": "hello"}]}},
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest))


def _stored(kubectl: Runner, namespace: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(kubectl("get", "-n", namespace, "iaprunservices/order", "-o", "json").stdout)
    return raw


async def _login(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    vault = credentials.Vault()
    await vault.populate({"kubeconfig": kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())})
    auth.vault_var.set(vault)


async def _patch(namespace: str, patch: kopf.Patch) -> kopf.Patch | None:
    """kopf's own patch step; returns what kopf keeps for the next cycle (a write the API server refused)."""
    settings = kopf.OperatorSettings()
    _, remaining = await patch_obj(
        settings=settings, resource=RESOURCE, namespace=namespace, name="order", patch=patch, logger=log
    )
    return remaining


def _replay(kubectl: Runner, namespace: str, monkeypatch: pytest.MonkeyPatch, control_plane: ControlPlane) -> None:
    _apply(kubectl, namespace)

    async def run() -> None:
        await _login(control_plane.kubeconfig, monkeypatch)
        state = ObjectState()
        seen_by_rescue = kopf.Body(_stored(kubectl, namespace))
        state.passes += 1  # the rescue's pass, under the object's lock
        rescue = newest_only(CREATING, lambda: state.passes == 1)
        # The request kopf builds for it while it is the newest pass, sent, timed out, resent below unchanged.
        built = kopf.Patch(body=seen_by_rescue, fns=[newest_only(CREATING, lambda: True)])
        state.passes += 1  # the handler's pass
        handler = newest_only(READY, lambda: state.passes == 2)
        assert await _patch(namespace, kopf.Patch(body=kopf.Body(_stored(kubectl, namespace)), fns=[handler])) is None
        assert _stored(kubectl, namespace)["status"] == READY
        kept = await _patch(namespace, built)
        assert kept is not None, "the resent write landed over the newer one"
        fresh = kopf.Body(_stored(kubectl, namespace))
        assert await _patch(namespace, kopf.Patch(body=fresh, fns=[rescue])) is None  # next cycle: nothing

    asyncio.run(run())


def test_an_older_pass_resent_after_the_newest_landed_is_refused_and_ready_stays(
    control_plane: ControlPlane, crd: None, namespace: str, kubectl: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    _replay(kubectl, namespace, monkeypatch, control_plane)
    stored = _stored(kubectl, namespace)
    assert stored["status"] == READY, stored["status"]


def test_the_same_resend_as_a_merge_patch_leaves_the_object_creating(
    control_plane: ControlPlane, crd: None, namespace: str, kubectl: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug: a merge patch carries no version, so whichever write lands last wins."""
    _apply(kubectl, namespace)

    async def run() -> None:
        await _login(control_plane.kubeconfig, monkeypatch)
        body = kopf.Body(_stored(kubectl, namespace))
        await _patch(namespace, kopf.Patch({"status": READY}, body=body))
        await _patch(namespace, kopf.Patch({"status": CREATING}, body=body))

    asyncio.run(run())
    assert _stored(kubectl, namespace)["status"]["conditions"][0]["reason"] == "Creating"
