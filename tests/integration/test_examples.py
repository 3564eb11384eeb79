"""Every manifest in examples/ reconciles for real: applied (not dry-run) in its own namespace against the
operator and the emulator, until Ready, and then checked for what the example's comment promises.

Real control plane, real operator process, emulator; no mocks. What each example gets before it is
applied, and nothing else:
- the Cloud Run service name gets a per-run suffix (``spec.serviceName``), because the emulator's world is
  shared by the whole session and other modules are free to use names like ``hello``;
- time-limited-access: its ``expires`` is moved to tomorrow (the file's date may be in the past by the
  time the test runs);
- additive-accessors: a 2-second drift interval, so the out-of-band member is seen without waiting for
  the default ten minutes;
- adopt-existing: the unowned service it adopts is created first with the official run_v2 client, the
  way ``gcloud run deploy --iap`` would leave it;
- canary: the revision names get the same suffix (Cloud Run prefixes revision names with the service's), and
  v1 is deployed first from the same file (template.revision v1, no traffic), as its comment says; after the
  90/10 split is checked, the traffic is promoted to 100% on the latest revision.
After Ready each object is deleted, and its deletionPolicy is checked against what is left in Google.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gcpemu.admin import AdminClient
from integration.harness import REPO, OperatorProcess, apply, create_service, get, wait_for
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
ACCESSOR = "roles/iap.httpsResourceAccessor"
INVOKER = "roles/run.invoker"


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    return body


def members(policy: dict[str, Any] | None, role: str) -> set[str]:
    return {m for b in (policy or {}).get("bindings", []) if b["role"] == role for m in b["members"]}


def policies(emu: AdminClient, project: str, region: str, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Cloud Run service policy and the IAP policy of a service, as the emulator holds them."""
    state = emu.state()
    key = f"{state['projects'][project]}/{region}/{service}"
    return state["run_policies"].get(key, {}), state["iap_policies"].get(key, {})


def events(kubectl: Runner, namespace: str, name: str) -> str:
    return kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}").stdout


def test_every_example_is_covered() -> None:
    """The parametrized test below runs each file; a new example without a check here fails this test."""
    assert {path.stem for path in EXAMPLES} == set(CHECKS)


def check_hello(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """IAP on from the create; the agent invokes; exactly the group and the user pass IAP."""
    spec, status = obj["spec"], obj["status"]
    run_policy, iap_policy = policies(emu, spec["projectID"], spec["region"], status["serviceName"])
    assert service["iapEnabled"] is True
    assert members(run_policy, INVOKER) == {f"serviceAccount:{status['iap']['serviceAgent']}"}
    assert members(iap_policy, ACCESSOR) == {"group:devs@example.com", "user:alice@example.com"}


def check_multi_container(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """Both containers, the Secret Manager reference (valueSource, as in v2), labels and scaling."""
    containers = service["template"]["containers"]
    assert [c["name"] for c in containers] == ["app", "metrics"]
    env = {e["name"]: e for e in containers[0]["env"]}
    assert env["PAYMENT_API_KEY"]["valueSource"]["secretKeyRef"] == {"secret": "payment-api-key", "version": "3"}
    assert env["LOG_LEVEL"]["value"] == "info"
    assert service["labels"]["team"] == "storefront"
    assert service["template"]["serviceAccount"] == "shop-runtime@demo-project.iam.gserviceaccount.com"
    assert service["template"]["scaling"]["maxInstanceCount"] == 5
    assert service["template"]["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"


def check_additive(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """The declared members are granted and recorded in the ledger."""
    spec, status = obj["spec"], obj["status"]
    declared = {a["member"] for a in spec["iap"]["accessors"]}
    assert members(policies(emu, spec["projectID"], spec["region"], status["serviceName"])[1], ACCESSOR) == declared
    assert set(status["iap"]["addedMembers"]) == declared


def check_time_limited(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """The contractor's binding is conditional on the expiry; the group's is not; nextExpiry is reported."""
    spec, status = obj["spec"], obj["status"]
    expires = spec["iap"]["accessors"][1]["expires"]
    iap_policy = policies(emu, spec["projectID"], spec["region"], status["serviceName"])[1]
    conditional = [b for b in iap_policy["bindings"] if b["role"] == ACCESSOR and b.get("condition")]
    assert [b["members"] for b in conditional] == [["user:contractor@partner.example"]]
    assert conditional[0]["condition"]["expression"] == f'request.time < timestamp("{expires}")'
    assert iap_policy["version"] == 3
    assert status["iap"]["nextExpiry"] == expires


def check_adopted(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """The hand-made service now carries the ownership marks and the declared template. Labels become the
    spec's (docs/adoption.md): the hand-set ``team`` label, which the example does not declare, is gone."""
    assert service["labels"]["iaprun-owner"]
    assert "team" not in service["labels"]
    assert service["annotations"]["iaprun.dev/owner"].endswith(f"/{obj['metadata']['name']}")
    assert service["template"]["containers"][0]["image"] == obj["spec"]["template"]["containers"][0]["image"]


def check_cloud_sql(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """The Cloud SQL volume and the secret volume are on the revision, mounted where the app expects them."""
    volumes = {v["name"]: v for v in service["template"]["volumes"]}
    assert volumes["cloudsql"]["cloudSqlInstance"]["instances"] == ["demo-project:asia-northeast1:orders-db"]
    assert volumes["config"]["secret"]["secret"] == "orders-config"
    assert volumes["config"]["secret"]["items"] == [{"path": "config.yaml", "version": "latest"}]
    mounts = service["template"]["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/cloudsql", "/etc/orders"]


def check_direct_vpc(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """Direct VPC egress on the default network, private ranges only."""
    access = service["template"]["vpcAccess"]
    assert access["egress"] == "PRIVATE_RANGES_ONLY"
    assert access["networkInterfaces"] == [{"network": "default", "subnetwork": "default", "tags": ["inventory"]}]


def check_sidecar(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """The shipper starts after the app (dependsOn); the app's startup and liveness probes are as declared."""
    app, shipper = service["template"]["containers"]
    assert shipper["dependsOn"] == ["app"]
    assert app["startupProbe"]["httpGet"]["path"] == "/ready"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert service["template"]["volumes"] == [{"name": "logs", "emptyDir": {"medium": "MEMORY", "sizeLimit": "64Mi"}}]


def check_canary(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """90% on v1, 10% on the latest (v2) with its own tag URL; status.traffic says so."""
    name = obj["status"]["serviceName"]
    assert [(t.get("revision"), t["percent"], t.get("tag")) for t in service["traffic"]] == [
        (f"{name}-v1", 90, None),
        (None, 10, "canary"),
    ]
    traffic = obj["status"]["traffic"]
    assert [t["percent"] for t in traffic] == [90, 10]
    assert traffic[0]["revision"] == f"{name}-v1"
    assert traffic[1]["tag"] == "canary"
    assert traffic[1]["uri"].startswith("https://canary---")
    assert obj["status"]["latestReadyRevision"].endswith(f"/revisions/{name}-v2")


def check_gpu(emu: AdminClient, obj: dict[str, Any], service: dict[str, Any]) -> None:
    """One L4 per instance, CPU always allocated."""
    template = service["template"]
    assert template["nodeSelector"] == {"accelerator": "nvidia-l4"}
    resources = template["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert not resources.get("cpuIdle", False)


CHECKS: dict[str, Callable[[AdminClient, dict[str, Any], dict[str, Any]], None]] = {
    "hello": check_hello,
    "multi-container": check_multi_container,
    "additive-accessors": check_additive,
    "time-limited-access": check_time_limited,
    "adopt-existing": check_adopted,
    "cloud-sql": check_cloud_sql,
    "direct-vpc-egress": check_direct_vpc,
    "sidecar-probes": check_sidecar,
    "canary": check_canary,
    "gpu": check_gpu,
}


def settled(kubectl: Runner, namespace: str, name: str) -> dict[str, Any]:
    """The object once Ready for its current generation."""

    def ready() -> bool:
        obj = get(kubectl, namespace, name)
        conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
        ready = conditions.get("Ready", {})
        return ready.get("status") == "True" and ready.get("observedGeneration") == obj["metadata"]["generation"]

    wait_for(ready, timeout=90, what=f"{name} Ready for its generation")
    return get(kubectl, namespace, name)


def deploy_canary_v1(kubectl: Runner, namespace: str, body: dict[str, Any]) -> None:
    """The canary's first step: the same file with v1 as the revision and no traffic split, until Ready."""
    spec = body["spec"]
    for target in spec["traffic"]:
        if target.get("revision"):
            target["revision"] = f"{spec['serviceName']}-v1"
    first = copy.deepcopy(body)
    first["spec"].pop("traffic")
    first["spec"]["template"]["revision"] = f"{spec['serviceName']}-v1"
    apply(kubectl, namespace, first)
    settled(kubectl, namespace, body["metadata"]["name"])
    spec["template"]["revision"] = f"{spec['serviceName']}-v2"


def promote_canary(kubectl: Runner, namespace: str, body: dict[str, Any], emu: AdminClient) -> None:
    """All traffic to the latest revision: the service and status.traffic follow, the tag URL is gone."""
    body["spec"]["traffic"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
    apply(kubectl, namespace, body)
    obj = settled(kubectl, namespace, body["metadata"]["name"])
    spec = body["spec"]
    service = emu.service(spec["projectID"], spec["region"], spec["serviceName"])
    assert service is not None
    assert service["traffic"] == [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
    assert [(t["type"], t["percent"]) for t in obj["status"]["traffic"]] == [
        ("TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", 100)
    ]
    assert "tag" not in obj["status"]["traffic"][0]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_reconciles_until_ready(
    example: Path, operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str
) -> None:
    """The example becomes Ready, Google holds what it declares, and deleting it does what its
    deletionPolicy says."""
    original = load(example)
    body = copy.deepcopy(original)
    spec, name = body["spec"], body["metadata"]["name"]
    service_name = f"{spec.get('serviceName', name)}-{uuid.uuid4().hex[:6]}"
    spec["serviceName"] = service_name
    project, region = spec["projectID"], spec["region"]
    if example.stem == "time-limited-access":
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        timed = [a for a in spec["iap"]["accessors"] if "expires" in a]
        assert timed, "the example must keep an accessor with an expiry"
        for accessor in timed:
            accessor["expires"] = tomorrow
    if example.stem == "additive-accessors":
        body["metadata"].setdefault("annotations", {})["iaprun.dev/drift-interval"] = "2"
    if example.stem == "adopt-existing":
        assert spec["adoption"] == "IfUnowned"
        create_service(emulator_url, project, region, service_name, labels={"team": "finance"})
    if example.stem == "canary":
        deploy_canary_v1(kubectl, namespace, body)

    apply(kubectl, namespace, body)
    obj = settled(kubectl, namespace, name)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["url"].startswith("https://")
    service = emu.service(project, region, service_name)
    assert service is not None
    assert service["iapEnabled"] is spec["iap"].get("enabled", True)
    CHECKS[example.stem](emu, obj, service)

    if example.stem == "adopt-existing":
        assert "Adopting" in events(kubectl, namespace, name)
    if example.stem == "canary":
        promote_canary(kubectl, namespace, body, emu)
    if example.stem == "additive-accessors":
        foreign = "user:auditor@example.com"
        emu.add_binding(project, region, service_name, ACCESSOR, foreign, kind="iap")
        wait_for(
            lambda: get(kubectl, namespace, name)["status"]["iap"].get("foreignMembers") == [foreign],
            timeout=30,
            what="the out-of-band member reported as foreign",
        )
        assert foreign in members(policies(emu, project, region, service_name)[1], ACCESSOR)

    kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--timeout=60s")
    left = emu.service(project, region, service_name)
    if original["spec"].get("deletionPolicy", "Delete") == "Abandon":
        assert left is not None
        assert left["iapEnabled"] is True
        assert "iaprun-owner" not in (left.get("labels") or {})
        assert members(policies(emu, project, region, service_name)[1], ACCESSOR)
    else:
        assert left is None
