"""The chart's hot standby and sharding values (``ha``), rendered.

Proves: by default one Recreate pod and no Lease rights; ``ha.enabled`` gives N pods per shard that roll without
a gap (a new pod starts as a standby), a PodDisruptionBudget allowing one disruption, the Lease Role in the release
namespace, and the Lease settings with the chart's defaults equal to the operator's; ``ha.shards`` renders one
Deployment (and PDB) per shard with disjoint selectors and its own IAPRUN_SHARD; unsafe Lease timings fail.
The operator acting on these settings is tests/integration/test_ha.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import pytest

from chart.conftest import HelmFailedError, Manifest, Release, find, only
from iaprun_operator.settings import HaSettings, from_env
from integration.harness import kubectl_json
from testworld.fixtures import Runner

Render = Callable[..., list[Manifest]]


def env_of(deployment: Manifest) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "<fieldRef>") for e in container["env"]}


def test_without_ha_one_recreated_pod_and_no_lease_rights(render: Render) -> None:
    manifests = render()
    deployment = only(manifests, "Deployment")
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]) == (1, {"type": "Recreate"})
    assert "IAPRUN_LEASE_NAMESPACE" not in env_of(deployment)
    assert not find(manifests, "Role", "rel-iap-run-operator-leases")
    assert not find(manifests, "PodDisruptionBudget")


def test_ha_runs_standbys_that_roll_without_a_gap(render: Render) -> None:
    manifests = render("--set", "ha.enabled=true")
    deployment = only(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert only(manifests, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    (role,) = find(manifests, "Role", "rel-iap-run-operator-leases")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    env = env_of(deployment)
    assert (env["IAPRUN_LEASE_NAMESPACE"], env["IAPRUN_LEASE_NAME"], env["IAPRUN_POD_NAME"]) == (
        "ops",
        "rel-iap-run-operator",
        "<fieldRef>",
    )
    read, defaults = from_env({**env, "IAPRUN_TENANCY_POLICY_FILE": ""}).ha, HaSettings()
    for f in fields(HaSettings):
        if f.name not in ("lease_namespace", "lease_name", "identity"):
            assert getattr(read, f.name) == getattr(defaults, f.name), f"chart default of {f.metadata['env']}"


def test_each_shard_is_its_own_deployment_with_a_disjoint_selector(render: Render) -> None:
    manifests = render("--set", "ha.enabled=true", "--set", "ha.shards=3")
    deployments = find(manifests, "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == [f"rel-iap-run-operator-shard-{k}" for k in range(3)]
    selectors = [d["spec"]["selector"]["matchLabels"]["iaprun.dev/shard"] for d in deployments]
    assert selectors == ["0", "1", "2"]
    for k, deployment in enumerate(deployments):
        assert deployment["spec"]["template"]["metadata"]["labels"]["iaprun.dev/shard"] == str(k)
        assert (env_of(deployment)["IAPRUN_SHARD"], env_of(deployment)["IAPRUN_SHARDS"]) == (str(k), "3")
    pdbs = find(manifests, "PodDisruptionBudget")
    assert [p["spec"]["selector"]["matchLabels"]["iaprun.dev/shard"] for p in pdbs] == ["0", "1", "2"]


def test_shards_without_ha_still_elect_through_leases(render: Render) -> None:
    """Several shards need the Leases (they fence hand-offs) even with one pod per shard."""
    manifests = render("--set", "ha.shards=2")
    assert all(env_of(d)["IAPRUN_LEASE_NAMESPACE"] == "ops" for d in find(manifests, "Deployment"))
    assert find(manifests, "Role", "rel-iap-run-operator-leases")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "ha.renewDeadlineSeconds=15"], "must be below ha.leaseDurationSeconds"),
        (["--set", "ha.retryPeriodSeconds=10"], "must be below ha.renewDeadlineSeconds"),
    ],
)
def test_unsafe_lease_timings_fail(render: Render, args: list[str], message: str) -> None:
    with pytest.raises(HelmFailedError) as failed:
        render(*args)
    assert message in failed.value.stderr


@pytest.mark.integration
def test_the_api_server_accepts_a_sharded_hot_standby_release(
    release: Release, kubectl: Runner, namespace: str
) -> None:
    """Installed into the real control plane under Pod Security `restricted`: a Deployment (with its standbys) and
    a PodDisruptionBudget per shard, and the Lease Role."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    installed = release.install("--set", "ha.enabled=true", "--set", "ha.shards=2")
    assert "PodSecurity" not in installed.stderr, installed.stderr
    for shard in range(2):
        deployment = kubectl_json(kubectl, "get", "-n", namespace, f"deployment/{release.fullname}-shard-{shard}")
        assert deployment["spec"]["replicas"] == 2
        pdb = kubectl_json(kubectl, "get", "-n", namespace, f"poddisruptionbudget/{release.fullname}-shard-{shard}")
        assert pdb["spec"]["maxUnavailable"] == 1
    role = kubectl_json(kubectl, "get", "-n", namespace, f"role/{release.fullname}-leases")
    assert role["rules"][0]["resources"] == ["leases"]
