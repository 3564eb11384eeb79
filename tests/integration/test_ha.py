"""Hot standby and sharding, end to end: Leases on the real API server, operator replicas as processes.

Proves:
- the Lease rule on a real API server: one holder at a time, a released Lease is taken at once, a holder that
  stops renewing is replaced only after the lease duration;
- two replicas of one shard: only the Lease holder acts; SIGKILLed, the standby takes over and serves what
  changed meanwhile, each service created exactly once;
- two shards: the API server sends each replica only its shard's objects (each shard's replica here has its
  own default project, so the project an object's service landed in names the replica that served it), every
  object is labelled with the shard rendezvous hashing gives it, and each is served by that shard alone.

Nothing is mocked: kube-apiserver, the emulator, ``python -m iaprun_operator`` with short Lease timings.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from gcpemu.admin import AdminClient
from iaprun_operator.core.shards import LABEL, shard_of
from iaprun_operator.leadership import Lease
from integration.conftest import TENANCY
from integration.harness import apply, condition, kubectl_json, manifest, wait_for
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner
from testworld.operator_process import ShardReplicas

pytestmark = pytest.mark.integration
REGION = "us-east1"  # no other module works here
POLICY = {"IAPRUN_TENANCY_POLICY": json.dumps(TENANCY), "IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS": "0"}


def ready(kubectl: Runner, namespace: str, names: list[str], *, generation: dict[str, int] | None = None) -> bool:
    found = {o["metadata"]["name"]: o for o in kubectl_json(kubectl, "get", "-n", namespace, "iaprunservices")["items"]}
    for name in names:
        obj = found.get(name)
        if obj is None or condition(obj, "Ready").get("status") != "True":
            return False
        if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
            return False
    return True


def creates(emu: AdminClient, since: int, service: str) -> int:
    return sum(
        1
        for r in emu.requests(since=since)
        if r["method"] == "run.services.create" and r["query"].get("serviceId") == service and r["status"] == 200
    )


@pytest.fixture
def start_shard(
    control_plane: ControlPlane, emulator_url: str, crd: None, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ShardReplicas]]:
    """``start_shard(shard, shards, replicas, **env)``: replicas of one shard, Leases in the test's namespace, up
    (one of them active); all stopped afterwards."""
    started: list[ShardReplicas] = []

    def start(shard: int = 0, shards: int = 1, replicas: int = 1, **env: str) -> ShardReplicas:
        group = ShardReplicas(
            kubeconfig=str(control_plane.kubeconfig),
            google_endpoint=emulator_url,
            log_dir=tmp_path_factory.mktemp(f"shard{shard}"),
            lease_namespace=namespace,
            replicas=replicas,
            shard=shard,
            shards=shards,
            env={**POLICY, **env},
        )
        started.append(group)
        return group.start()

    yield start
    for group in started:
        group.stop()


def test_a_lease_has_one_holder_and_changes_hands_only_when_released_or_expired(
    kube_admin: Any, namespace: str
) -> None:
    api = client.CoordinationV1Api(kube_admin)
    a, b = (Lease(api, namespace=namespace, name="shard-x", me=me, duration=2.0) for me in ("a", "b"))
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # held, and b has just seen it change
    assert a.try_acquire_or_renew()  # the holder renews
    a.release()
    assert b.try_acquire_or_renew()  # released: taken at once
    started = time.monotonic()
    assert not a.try_acquire_or_renew()
    wait_for(a.try_acquire_or_renew, timeout=10, interval=0.2, what="a taking over the Lease b stopped renewing")
    assert time.monotonic() - started >= 2.0  # not before b's record was unchanged for the whole duration


def test_the_standby_takes_over_when_the_active_replica_is_killed(
    start_shard: Callable[..., ShardReplicas], kubectl: Runner, namespace: str, emu: AdminClient
) -> None:
    pair = start_shard(replicas=2)
    first = pair.active()
    since = emu.last_seq()
    tag = uuid.uuid4().hex[:6]
    before, after = f"ha-a-{tag}", f"ha-b-{tag}"
    apply(kubectl, namespace, manifest(before, region=REGION, projectID="demo-project"))
    wait_for(lambda: ready(kubectl, namespace, [before]), timeout=60, what="the first object Ready")

    killed = pair.kill_active()
    assert killed == first
    apply(kubectl, namespace, manifest(after, region=REGION, projectID="demo-project"))
    changed = manifest(before, region=REGION, projectID="demo-project", image="us-docker.pkg.dev/cloudrun/container/v2")
    apply(kubectl, namespace, changed)
    wait_for(lambda: ready(kubectl, namespace, [before, after]), timeout=90, what="both objects Ready after failover")

    assert pair.active() != killed
    assert (creates(emu, since, before), creates(emu, since, after)) == (1, 1)


def test_each_shard_receives_and_serves_only_its_own_objects(
    start_shard: Callable[..., ShardReplicas], kubectl: Runner, namespace: str
) -> None:
    projects = ["test-project", "other-project"]  # each shard's own default: where a service lands names its server
    for shard, project in enumerate(projects):
        start_shard(shard, 2, IAPRUN_DEFAULT_PROJECT=project)
    candidates = (f"sharded-{i}" for i in range(1000))
    names = [n for n in candidates if shard_of(namespace, n, 2) == 0][:3]
    names += [n for n in (f"sharded-{i}" for i in range(1000)) if shard_of(namespace, n, 2) == 1][:3]
    for name in names:
        apply(kubectl, namespace, manifest(name, region=REGION))  # no projectID: the serving replica's default
    wait_for(lambda: ready(kubectl, namespace, names), timeout=120, what="every sharded object Ready")

    served = {}
    for obj in kubectl_json(kubectl, "get", "-n", namespace, "iaprunservices")["items"]:
        name = obj["metadata"]["name"]
        shard = shard_of(namespace, name, 2)
        assert obj["metadata"]["labels"][LABEL] == str(shard)
        served[name] = (shard, obj["status"]["projectID"])
    assert all(project == projects[shard] for shard, project in served.values()), served


def test_a_new_shard_takes_over_only_the_objects_it_wins(
    start_shard: Callable[..., ShardReplicas], kubectl: Runner, namespace: str, emu: AdminClient
) -> None:
    """Two shards grow to three: the objects shard 2 wins are handed off by their owners and then served by
    shard 2 alone (with shards 0 and 1 stopped, only they follow a change); the others keep their shard; no
    service is created twice."""
    pool = [f"grow-{i}" for i in range(200)]
    moving = [n for n in pool if shard_of(namespace, n, 3) == 2][:2]
    staying = [n for n in pool if shard_of(namespace, n, 3) != 2][:3]
    since = emu.last_seq()
    old = [start_shard(k, 2) for k in range(2)]
    for name in moving + staying:
        apply(kubectl, namespace, manifest(name, region=REGION, projectID="demo-project"))
    wait_for(lambda: ready(kubectl, namespace, moving + staying), timeout=120, what="the objects Ready on 2 shards")
    for group in old:
        group.stop()  # a helm upgrade: the old pods stop (and release their Leases)

    new = [start_shard(k, 3) for k in range(3)]

    def labels() -> dict[str, str]:
        items = kubectl_json(kubectl, "get", "-n", namespace, "iaprunservices")["items"]
        return {o["metadata"]["name"]: o["metadata"].get("labels", {}).get(LABEL, "") for o in items}

    wait_for(lambda: all(labels()[n] == "2" for n in moving), timeout=120, what="the hand-off to shard 2")
    assert {n: labels()[n] for n in staying} == {n: str(shard_of(namespace, n, 2)) for n in staying}
    for group in new[:2]:
        group.stop()
    image = "us-docker.pkg.dev/cloudrun/container/v3"
    for name in moving + staying:
        apply(kubectl, namespace, manifest(name, region=REGION, projectID="demo-project", image=image))
    wait_for(lambda: ready(kubectl, namespace, moving), timeout=120, what="shard 2 serving the objects it won")
    assert not any(ready(kubectl, namespace, [n]) for n in staying), "a stopped shard's object was served"
    assert all(creates(emu, since, n) == 1 for n in moving + staying)
