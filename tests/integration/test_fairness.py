"""One namespace flooding the operator does not slow another one's change, end to end.

Namespace A holds ``IAPRUN_FAIRNESS_FLOOD`` objects (150 here; ``IAPRUN_FAIRNESS_FLOOD=500`` for the full
size of issue 13) on a 1-second drift, the drift floor lowered to 1 s for the test. Their passes need far more
Cloud Run reads than their region's quota gives (10 a second, ``IAPRUN_QUOTA_RUN_READS_PER_MINUTE=600``), so
at any moment more of them wait for a token than there are pass slots (64). Namespace B's object lives in
another region. A change to it must reach Google (the emulator logs its PATCH) within 2 s, three times in a
row. Before quota waits gave their pass slot up, the flood held every slot and B's pass queued behind it.

The flood's objects all name one service owned elsewhere: each pass is one ``services.get`` and a
ManagementConflict, so the flood is pure quota pressure and no create is needed to build it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench.driver import Kube
from gcpemu.admin import AdminClient
from integration.conftest import module_operator
from integration.harness import OperatorProcess, condition, create_marked_service, kubectl_json, manifest, wait_for
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT = "demo-project"
FLOOD_REGION, CALM_REGION = "us-east1", "us-west1"
FLOOD = int(os.environ.get("IAPRUN_FAIRNESS_FLOOD", "150"))
READS_PER_SECOND = 10
WORKERS = 64
DEADLINE = 2.0
GROUP, VERSION, PLURAL = "iaprun.dev", "v1alpha1", "iaprunservices"


operator = module_operator(
    IAPRUN_MIN_DRIFT_INTERVAL_SECONDS="1",
    IAPRUN_QUOTA_RUN_READS_PER_MINUTE=str(READS_PER_SECOND * 60),
    IAPRUN_WORKERS=str(WORKERS),
)


@pytest.fixture
def flood_namespace(control_plane: ControlPlane) -> Iterator[tuple[Kube, str]]:
    kube = Kube(control_plane.kubeconfig)
    name = kube.create_namespace("flood")
    try:
        yield kube, name
    finally:
        release(kube, name)
        kube.core.delete_namespace(name)
        kube.close()


def release(kube: Kube, namespace: str) -> None:
    """Drop the flood's finalizers, several at a time: no need to wait for FLOOD finalizer passes."""
    items = kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]

    def one(item: dict[str, Any]) -> None:
        patch = {"metadata": {"finalizers": None}}
        kube.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"], patch)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, items))


def flood_object(name: str, service: str) -> dict[str, Any]:
    body = manifest(name, region=FLOOD_REGION, projectID=PROJECT, serviceName=service)
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "1"}
    return body


def stalled_count(kube: Kube, namespace: str) -> int:
    items = kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    return sum(1 for item in items if condition(item, "Stalled").get("reason") == "ManagementConflict")


def patched_after(emu: AdminClient, service: str, since: int) -> bool:
    return any(r["method"] == "run.services.patch" and service in r["path"] for r in emu.requests(since=since))


def test_a_flooded_namespace_does_not_delay_another_namespaces_change(
    operator: OperatorProcess,
    kubectl: Runner,
    namespace: str,
    emu: AdminClient,
    emulator_url: str,
    flood_namespace: tuple[Kube, str],
) -> None:
    assert FLOOD > 2 * WORKERS, "the flood must outnumber the pass slots"
    calm = f"calm-{uuid.uuid4().hex[:6]}"
    body = manifest(calm, region=CALM_REGION, projectID=PROJECT)
    assert kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body)).returncode == 0

    def settled() -> bool:
        """The calm object is Ready at its current generation: each change below meets a settled object."""
        obj = kubectl_json(kubectl, "get", "-n", namespace, f"iaprunservice/{calm}")
        ready = condition(obj, "Ready")
        return ready.get("status") == "True" and ready.get("observedGeneration") == obj["metadata"]["generation"]

    wait_for(settled, timeout=60, what="the calm object Ready")

    t0 = time.monotonic()
    kube, flooded = flood_namespace
    held = f"held-{uuid.uuid4().hex[:6]}"
    create_marked_service(emulator_url, PROJECT, FLOOD_REGION, held, "another-cluster/x/y", policy=None)
    kube.create(flooded, [flood_object(f"f-{i:04d}", held) for i in range(FLOOD)], threads=8)
    wait_for(
        lambda: stalled_count(kube, flooded) == FLOOD,
        timeout=60 + 2 * FLOOD / READS_PER_SECOND,
        interval=1.0,
        what="every flood object handled once",
    )
    print(f"flood created and handled once in {time.monotonic() - t0:.1f} s")
    # The flood is quota-bound by construction: FLOOD objects each due every second against a bucket of
    # READS_PER_SECOND (the bucket's pacing is proven on a fake clock in tests/unit/test_ratelimit.py).

    latencies = []
    for attempt in range(3):
        since = emu.last_seq()
        image = f"us-docker.pkg.dev/cloudrun/container/hello:v{attempt}"
        change = json.dumps({"spec": {"template": {"containers": [{"image": image}]}}})
        started = time.monotonic()
        result = kubectl("patch", "-n", namespace, f"iaprunservice/{calm}", "--type=merge", "-p", change)
        assert result.returncode == 0, result.stderr
        wait_for(lambda since=since: patched_after(emu, calm, since), timeout=60, interval=0.05, what="the calm PATCH")
        latencies.append(time.monotonic() - started)
        wait_for(settled, timeout=60, what="the calm object Ready again")
    print(f"flood {FLOOD}: calm change reached Google after {', '.join(f'{s:.2f}' for s in latencies)} s")
    assert max(latencies) < DEADLINE, latencies
