"""Diff on what is declared, for the whole Cloud Run v2 surface: every optional service-level field, user
annotations and the full template.

Proves: with every field set, what Google reads back (defaults filled in, quantities and durations
normalised, traffic targets typed and reordered, the default traffic block, server-set template fields) is no
write; a spec change writes exactly the changed field; an out-of-band change is drift; a field removed from the
spec is written empty once (and not at all when the service already shows the default); a removed annotation
goes while other tools' stay; ``status.applied`` records what was written as a merge patch. Pure functions.
"""

from __future__ import annotations

import copy
from typing import Any

from iaprun_operator.core.model import Spec, parse_spec
from iaprun_operator.core.names import Owner
from iaprun_operator.core.service import (
    ServiceUpdate,
    applied_status,
    desired_service,
    field_hashes,
    plan_update,
    template_hash,
)

OWNER = Owner("cluster", "team-a", "shop")
REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
FULL: dict[str, Any] = {
    "region": "asia-northeast1",
    "projectID": "demo-project",
    "description": "everything declared",
    "labels": {"team": "shop"},
    "annotations": {"team.example/owner": "shop"},
    "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "launchStage": "BETA",
    "binaryAuthorization": {"useDefault": True},
    "customAudiences": ["https://shop.example.com"],
    "defaultUriDisabled": False,
    "scaling": {"minInstanceCount": 1},
    "traffic": [
        {"revision": "shop-v1", "percent": 90},
        {"type": LATEST, "percent": 10, "tag": "canary"},
    ],
    "template": {
        "revision": "shop-v2",
        "labels": {"tier": "web"},
        "annotations": {"team.example/build": "42"},
        "serviceAccount": "shop@demo-project.iam.gserviceaccount.com",
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
        "timeout": "60s",
        "sessionAffinity": True,
        "encryptionKey": "projects/demo-project/locations/asia-northeast1/keyRings/r/cryptoKeys/k",
        "vpcAccess": {"networkInterfaces": [{"network": "default"}], "egress": "PRIVATE_RANGES_ONLY"},
        "scaling": {"minInstanceCount": 0, "maxInstanceCount": 5},
        "volumes": [
            {"name": "db", "cloudSqlInstance": {"instances": ["demo-project:asia-northeast1:orders"]}},
            {"name": "cfg", "secret": {"secret": "app-config", "items": [{"path": "c.yaml", "version": "latest"}]}},
            {"name": "tmp", "emptyDir": {"medium": "MEMORY", "sizeLimit": "1Gi"}},
        ],
        "containers": [
            {
                "name": "app",
                "image": "asia-northeast1-docker.pkg.dev/demo-project/shop/app:2",
                "ports": [{"containerPort": 8080}],
                "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}, "cpuIdle": False},
                "volumeMounts": [{"name": "db", "mountPath": "/cloudsql"}, {"name": "cfg", "mountPath": "/etc/app"}],
                "startupProbe": {"httpGet": {"path": "/ready"}},
                "livenessProbe": {"httpGet": {"path": "/healthz"}, "periodSeconds": 30},
            },
            {
                "name": "proxy",
                "image": "asia-northeast1-docker.pkg.dev/demo-project/shop/proxy:1",
                "dependsOn": ["app"],
            },
        ],
    },
}


def read_back(desired: dict[str, Any]) -> dict[str, Any]:
    """What Cloud Run returns after applying ``desired``: its defaults and normal forms, nothing the spec set."""
    observed = copy.deepcopy(desired)
    observed["launchStage"] = "GA"
    observed["scaling"]["scalingMode"] = "AUTOMATIC"
    observed["traffic"] = [
        {"type": LATEST, "percent": 10, "tag": "canary"},
        {"type": REVISION, "revision": "shop-v1", "percent": 90},
    ]
    observed.pop("defaultUriDisabled")  # false is omitted on read
    observed["annotations"]["run.googleapis.com/operation-id"] = "abc"
    template = observed["template"]
    template["maxInstanceRequestConcurrency"] = 80
    template["timeout"] = "60.000s"
    app = template["containers"][0]
    app["ports"][0]["name"] = "http1"
    app["resources"]["limits"] = {"cpu": "1", "memory": "1024Mi"}
    app["resources"].pop("cpuIdle")  # false omitted on read
    app["startupProbe"] = {"httpGet": {"path": "/ready", "port": 8080}, "timeoutSeconds": 1, "periodSeconds": 10}
    app["livenessProbe"]["failureThreshold"] = 3
    template["volumes"][2]["emptyDir"]["sizeLimit"] = "1024Mi"
    template["containers"][1]["resources"] = {"limits": {"cpu": "1", "memory": "512Mi"}, "cpuIdle": True}
    return observed


def plan(spec: Spec, observed: dict[str, Any], *, applied: Spec | None = None) -> ServiceUpdate:
    """The update for ``spec`` against ``observed``, the last written spec being ``applied`` (default: same)."""
    before = applied or spec
    status = applied_status(before, None) or {}
    return plan_update(
        desired_service(spec, OWNER, observed, status),
        observed,
        applied_hash=template_hash(before),
        desired_hash=template_hash(spec),
        applied_fields=field_hashes(before),
    )


def full(**changes: Any) -> Spec:
    raw = {**copy.deepcopy(FULL), **changes}
    return parse_spec({k: v for k, v in raw.items() if v is not None}, name="shop")


def test_every_field_set_and_read_back_by_google_writes_nothing() -> None:
    spec = full()
    observed = read_back(desired_service(spec, OWNER))
    assert not plan(spec, observed)


def test_the_create_body_carries_every_declared_field() -> None:
    body = desired_service(full(), OWNER)
    for key in ("binaryAuthorization", "customAudiences", "defaultUriDisabled", "scaling", "traffic", "template"):
        assert body[key] == FULL[key]
    assert body["annotations"]["team.example/owner"] == "shop"
    assert body["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


def test_a_changed_field_is_written_alone() -> None:
    spec = full()
    observed = read_back(desired_service(spec, OWNER))
    promoted = full(traffic=[{"type": LATEST, "percent": 100}])
    update = plan(promoted, observed, applied=spec)
    assert update.mask == ("traffic",)
    assert update.reasons == ("the spec's traffic changed",)


def test_a_value_dropped_inside_a_field_is_a_change_even_though_the_service_still_holds_the_rest() -> None:
    spec = full(scaling={"minInstanceCount": 1, "maxInstanceCount": 4})
    observed = read_back(desired_service(spec, OWNER))
    update = plan(full(scaling={"maxInstanceCount": 4}), observed, applied=spec)
    assert update.mask == ("scaling",)


def test_an_out_of_band_change_is_drift() -> None:
    spec = full()
    observed = read_back(desired_service(spec, OWNER))
    observed["scaling"]["minInstanceCount"] = 7
    observed["customAudiences"].append("https://evil.example")
    update = plan(spec, observed)
    assert update.mask == ("customAudiences", "scaling")
    assert "scaling was changed outside the operator" in update.reasons


def test_traffic_is_compared_as_google_normalises_it() -> None:
    spec = full()
    observed = read_back(desired_service(spec, OWNER))
    observed["traffic"][1]["percent"] = 80
    observed["traffic"].append({"type": LATEST, "percent": 10, "tag": "extra"})
    assert plan(spec, observed).mask == ("traffic",)


def test_a_removed_field_is_written_empty_once_then_left_to_google() -> None:
    spec = full()
    observed = read_back(desired_service(spec, OWNER))
    removed = full(traffic=None, customAudiences=None)
    update = plan(removed, observed, applied=spec)
    assert update.mask == ("customAudiences", "traffic")
    assert update.reasons == ("customAudiences was removed from the spec", "traffic was removed from the spec")
    body = desired_service(removed, OWNER, observed, applied_status(spec, None))
    assert "traffic" not in body
    assert "customAudiences" not in body
    after = {**observed, "traffic": [{"type": LATEST, "percent": 100}]}
    after.pop("customAudiences")
    assert not plan(removed, after)


def test_a_removed_field_the_service_already_shows_as_default_is_not_written() -> None:
    spec = full(traffic=[{"type": LATEST, "percent": 100}])
    observed = read_back(desired_service(full(), OWNER))
    observed["traffic"] = [{"type": LATEST, "percent": 100}]
    assert not plan(full(traffic=None), observed, applied=spec)


def test_the_default_traffic_block_of_an_undeclared_traffic_is_no_drift() -> None:
    spec = full(traffic=None)
    observed = read_back(desired_service(full(), OWNER))
    observed["traffic"] = [{"type": LATEST, "percent": 100}]
    assert not plan(spec, observed)


def test_a_removed_annotation_goes_and_other_tools_stay() -> None:
    spec = full()
    observed = read_back(desired_service(spec, OWNER))
    bare = full(annotations=None)
    update = plan(bare, observed, applied=spec)
    assert update.mask == ("annotations",)
    written = desired_service(bare, OWNER, observed, applied_status(spec, None))["annotations"]
    assert "team.example/owner" not in written
    assert written["run.googleapis.com/operation-id"] == "abc"


def test_status_applied_is_a_merge_patch_of_what_was_written() -> None:
    spec = full()
    first = applied_status(spec, None)
    assert first is not None
    assert set(first["fields"]) == {
        "binaryAuthorization",
        "customAudiences",
        "defaultUriDisabled",
        "scaling",
        "traffic",
    }
    assert first["annotations"] == ["team.example/owner"]
    later = applied_status(full(traffic=None, annotations=None), first)
    assert later is not None
    assert later["fields"]["traffic"] is None
    assert later["annotations"] is None
    bare = parse_spec({"region": "asia-northeast1", "template": {"containers": [{"image": "i"}]}}, name="a")
    assert applied_status(bare, None) is None


def test_status_reports_traffic_revisions_and_urls_as_google_does() -> None:
    """status.traffic from trafficStatuses (tag URL included), revisions, urls; a tag Google stops reporting goes."""
    from iaprun_operator.core.service import observed_status

    observed = {
        "uri": "https://shop-abc-an.a.run.app",
        "urls": ["https://shop-123.asia-northeast1.run.app", "https://shop-abc-an.a.run.app"],
        "latestCreatedRevision": "projects/p/locations/r/services/shop/revisions/shop-v2",
        "latestReadyRevision": "projects/p/locations/r/services/shop/revisions/shop-v2",
        "trafficStatuses": [
            {"type": REVISION, "revision": "shop-v1", "percent": 90},
            {"type": LATEST, "percent": 10, "tag": "canary", "uri": "https://canary---shop-abc-an.a.run.app"},
        ],
    }
    status = observed_status(observed)
    assert status["url"] == "https://shop-abc-an.a.run.app"
    assert status["urls"] == observed["urls"]
    assert status["latestReadyRevision"].endswith("/shop-v2")
    assert status["traffic"] == observed["trafficStatuses"]
    later = observed_status({**observed, "trafficStatuses": [{"type": LATEST, "percent": 100}]})
    assert later["traffic"] == [{"type": LATEST, "percent": 100}]
    assert observed_status({"uri": "https://x"})["traffic"] is None  # merge patch: removed
