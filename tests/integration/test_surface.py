"""The whole Cloud Run v2 surface round trip, one field group at a time (issue #14's acceptance).

For each group: declared in the object -> present in the emulator's service -> reflected in status; two drift
passes after Ready write nothing (every value Google fills in or normalises is no change); removing the group
from the spec removes it from the service, and again two drift passes write nothing. Real control plane,
operator process and emulator; writes are counted in the emulator's request log.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from integration.harness import WRITES, OperatorProcess, apply, calls, drift_pass, manifest
from integration.test_examples import settled
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT, REGION = "demo-project", "asia-northeast1"
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
Check = Callable[[dict[str, Any], dict[str, Any]], bool]
"""(service as the emulator holds it, the object's status) -> whether the group is there."""


@dataclass(frozen=True)
class Group:
    name: str
    spec: dict[str, Any]
    """Merged into the spec (``template`` merged into the template)."""
    present: Check
    absent: Check


def _app(service: dict[str, Any]) -> dict[str, Any]:
    app: dict[str, Any] = service["template"]["containers"][0]
    return app


def _applied(status: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = (status.get("applied") or {}).get("fields") or {}
    return fields


GROUPS = [
    Group(
        "networking",
        {
            "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            "template": {"vpcAccess": {"egress": "PRIVATE_RANGES_ONLY", "networkInterfaces": [{"network": "default"}]}},
        },
        lambda s, st: (
            s["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
            and s["template"]["vpcAccess"]["egress"] == "PRIVATE_RANGES_ONLY"
        ),
        lambda s, st: s["ingress"] == "INGRESS_TRAFFIC_ALL" and "vpcAccess" not in s["template"],
    ),
    Group(
        "volumes",
        {
            "template": {
                "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",  # Cloud Storage and NFS volumes need it
                "volumes": [
                    {"name": "db", "cloudSqlInstance": {"instances": [f"{PROJECT}:{REGION}:orders"]}},
                    {"name": "cfg", "secret": {"secret": "app-config", "items": [{"path": "c.yaml", "version": "1"}]}},
                    {"name": "tmp", "emptyDir": {"medium": "MEMORY", "sizeLimit": "1Gi"}},
                    {"name": "media", "gcs": {"bucket": "media-bucket", "readOnly": True}},
                    {"name": "share", "nfs": {"server": "10.0.0.2", "path": "/share"}},
                ],
                "containers": [
                    {
                        "image": "us-docker.pkg.dev/cloudrun/container/hello",
                        "volumeMounts": [
                            {"name": "db", "mountPath": "/cloudsql"},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }
                ],
            }
        },
        lambda s, st: (
            [v["name"] for v in s["template"].get("volumes", [])] == ["db", "cfg", "tmp", "media", "share"]
            and len(_app(s)["volumeMounts"]) == 2
        ),
        lambda s, st: not s["template"].get("volumes") and not _app(s).get("volumeMounts"),
    ),
    Group(
        "containers",
        {
            "template": {
                "containers": [
                    {
                        "name": "app",
                        "image": "us-docker.pkg.dev/cloudrun/container/hello",
                        "ports": [{"containerPort": 8080}],
                        "startupProbe": {"httpGet": {"path": "/ready"}, "periodSeconds": 2},
                        "livenessProbe": {"httpGet": {"path": "/healthz"}},
                        "resources": {"limits": {"cpu": "2000m", "memory": "1Gi"}, "cpuIdle": False},
                    },
                    {"name": "side", "image": "us-docker.pkg.dev/cloudrun/container/hello", "dependsOn": ["app"]},
                ],
            }
        },
        lambda s, st: (
            len(s["template"]["containers"]) == 2
            and s["template"]["containers"][1]["dependsOn"] == ["app"]
            and _app(s)["livenessProbe"]["httpGet"]["path"] == "/healthz"
        ),
        lambda s, st: len(s["template"]["containers"]) == 1 and "livenessProbe" not in _app(s),
    ),
    Group(
        "revision-settings",
        {
            "template": {
                "labels": {"tier": "web"},
                "annotations": {"team.example/build": "42"},
                "sessionAffinity": True,
                "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
                "timeout": "60s",
                "encryptionKey": f"projects/{PROJECT}/locations/{REGION}/keyRings/r/cryptoKeys/k",
                "scaling": {"minInstanceCount": 1, "maxInstanceCount": 4},
                "maxInstanceRequestConcurrency": 20,
            }
        },
        lambda s, st: (
            s["template"].get("sessionAffinity") is True
            and s["template"]["labels"] == {"tier": "web"}
            and s["template"]["timeout"] == "60s"
        ),
        lambda s, st: not s["template"].get("sessionAffinity") and not s["template"].get("labels"),
    ),
    Group(
        "service-settings",
        {
            "description": "declared",
            "annotations": {"team.example/owner": "shop"},
            "scaling": {"minInstanceCount": 1},
            "customAudiences": ["https://shop.example.com"],
            "defaultUriDisabled": False,
            "binaryAuthorization": {"useDefault": True},
        },
        lambda s, st: (
            s["annotations"].get("team.example/owner") == "shop"
            and s["scaling"].get("minInstanceCount") == 1
            and s["customAudiences"] == ["https://shop.example.com"]
            and s["binaryAuthorization"] == {"useDefault": True}
            and set(_applied(st)) == {"scaling", "customAudiences", "defaultUriDisabled", "binaryAuthorization"}
            and st["applied"]["annotations"] == ["team.example/owner"]
        ),
        lambda s, st: (
            "team.example/owner" not in s["annotations"]
            and not (s.get("scaling") or {}).get("minInstanceCount")
            and not s.get("customAudiences")
            and not s.get("binaryAuthorization")
            and not _applied(st)
        ),
    ),
    Group(
        "traffic",
        {"traffic": [{"type": LATEST, "percent": 100, "tag": "live"}]},
        lambda s, st: (
            s["traffic"] == [{"type": LATEST, "percent": 100, "tag": "live"}]
            and st["traffic"][0]["tag"] == "live"
            and st["traffic"][0]["uri"].startswith("https://live---")
        ),
        lambda s, st: s["traffic"] == [{"type": LATEST, "percent": 100}] and "tag" not in st["traffic"][0],
    ),
]


def with_group(body: dict[str, Any], group: Group) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for key, value in group.spec.items():
        if key == "template":
            out["spec"]["template"].update(copy.deepcopy(value))
        else:
            out["spec"][key] = copy.deepcopy(value)
    return out


def quiet(emu: AdminClient, svc: str) -> None:
    """Two drift passes after Ready write nothing to the service or its IAM."""
    since = emu.last_seq()
    drift_pass(emu, svc, since)
    drift_pass(emu, svc, emu.last_seq())
    written = [
        (r["method"], (r.get("query") or {}).get("updateMask")) for r in calls(emu, svc, since=since, methods=WRITES)
    ]
    assert written == []


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_field_group_round_trip(
    group: Group, operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """Declared -> in the service -> in status; steady; removed -> gone; steady again."""
    base = manifest(svc)
    base["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, with_group(base, group))
    obj = settled(kubectl, namespace, svc)
    service = emu.service(PROJECT, REGION, svc)
    assert service is not None
    assert group.present(service, obj["status"]), service
    first_revision = obj["status"]["latestReadyRevision"]
    quiet(emu, svc)

    apply(kubectl, namespace, base)
    obj = settled(kubectl, namespace, svc)
    service = emu.service(PROJECT, REGION, svc)
    assert service is not None
    assert group.absent(service, obj["status"]), service
    if "template" in group.spec:
        assert obj["status"]["latestReadyRevision"] != first_revision
    quiet(emu, svc)
