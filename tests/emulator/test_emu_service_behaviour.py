"""How the emulated Cloud Run v2 service behaves beyond validation: the defaults Google fills in, traffic
splits with tagged URLs (each behind IAP like the main URL), traffic to a revision that does not exist, and a
revision whose startup probe fails while the previous ready revision keeps serving."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import run_v2

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

PARENT = "projects/demo-project/locations/us-central1"
IMG = "us-docker.pkg.dev/demo-project/apps/shop"
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
FAILED = run_v2.Condition.State.CONDITION_FAILED
IAP_RES = "/v1/projects/123456789012/iap_web/cloud_run-us-central1/services/shop"
AGENT = "serviceAccount:service-123456789012@gcp-sa-iap.iam.gserviceaccount.com"


def _create(run_client: Any, sid: str, template: dict[str, Any], **fields: Any) -> run_v2.Service:
    service = run_v2.Service({"template": template, **fields})
    return run_client.create_service(parent=PARENT, service=service, service_id=sid).result(timeout=30)


def _short(revision: str) -> str:
    return revision.rsplit("/", 1)[-1]


def _visit(base: str, uri: str, user: str | None = None) -> tuple[int, str]:
    """GET a service URL as ``user`` (None: anonymous); returns the status and the revision that answered."""
    headers = {"Accept": "application/json", **({"X-Emulator-User": user} if user else {})}
    st, hdrs, _ = raw_request("GET", f"{base}/_run/{uri.removeprefix('https://')}/", headers=headers)
    return st, hdrs.get("X-Emulator-Revision", "")


def test_defaults_google_fills_in(run_client: Any, gcp_admin: AdminClient) -> None:
    """Declared resources keep cpuIdle unset (Google: set it explicitly to keep the default); a declared probe
    reads back with timeout 1, period 10, threshold 3, path "/" and the container port; Direct VPC egress reads
    back PRIVATE_RANGES_ONLY; a sidecar gets neither a port nor a default startup probe."""
    gcp_admin.set_operation_delay(0)
    got = _create(
        run_client,
        "defaults",
        {
            "containers": [
                {
                    "name": "app",
                    "image": f"{IMG}:1",
                    "ports": [{"container_port": 3000}],
                    "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
                    "liveness_probe": {"http_get": {}},
                },
                {"name": "agent", "image": f"{IMG}-agent:1", "depends_on": ["app"]},
            ],
            "vpc_access": {"network_interfaces": [{"network": "default", "subnetwork": "default"}]},
        },
    )
    app, agent = got.template.containers
    assert not app.resources.cpu_idle
    assert dict(app.resources.limits) == {"cpu": "2", "memory": "1Gi"}
    assert app.ports[0].name == "http1"
    assert app.startup_probe.tcp_socket.port == 3000
    assert app.startup_probe.timeout_seconds == 240
    live = app.liveness_probe
    assert (live.timeout_seconds, live.period_seconds, live.failure_threshold) == (1, 10, 3)
    assert (live.http_get.path, live.http_get.port) == ("/", 3000)
    assert not agent.ports
    assert "startup_probe" not in agent
    assert agent.resources.cpu_idle  # no resources declared: the default, CPU only during requests
    assert got.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY
    assert [(t.type_, t.percent) for t in got.traffic] == [(LATEST, 100)]
    ready = _short(got.latest_ready_revision)
    assert [(t.type_, t.percent, t.revision) for t in got.traffic_statuses] == [(LATEST, 100, ready)]


def _protect(base: str, admin: AdminClient) -> None:
    """The IAP agent may invoke the service; alice is an IAP accessor, mallory is not."""
    admin.create_service_agent("demo-project")
    invoker = {"policy": {"bindings": [{"role": "roles/run.invoker", "members": [AGENT]}]}}
    assert raw_request("POST", f"{base}/v2/{PARENT}/services/shop:setIamPolicy", invoker)[0] == 200
    accessor = {
        "policy": {"bindings": [{"role": "roles/iap.httpsResourceAccessor", "members": ["user:alice@example.com"]}]}
    }
    assert raw_request("POST", f"{base}{IAP_RES}:setIamPolicy", accessor)[0] == 200


def test_canary_tag_url_is_protected_like_the_main_url(
    run_client: Any, gcp_admin: AdminClient, gcp_base_url: str
) -> None:
    """90/10 with a tag on the new revision: trafficStatuses carry the tag's ``tag---`` URI; that URL serves the
    tagged revision and answers anonymous 401 / non-accessor 403 / accessor 200 exactly like the main URL, which
    serves the 90% revision. Promoting (LATEST 100) removes the tag URL and moves the main URL."""
    gcp_admin.set_operation_delay(0)
    v1 = _create(run_client, "shop", {"containers": [{"image": f"{IMG}:1"}]}, iap_enabled=True)
    _protect(gcp_base_url, gcp_admin)
    rev1 = _short(v1.latest_ready_revision)
    v1.template.containers[0].image = f"{IMG}:2"
    del v1.traffic[:]
    v1.traffic.extend(
        [
            run_v2.TrafficTarget(type_=REVISION, revision=rev1, percent=90),
            run_v2.TrafficTarget(type_=LATEST, percent=10, tag="canary"),
        ]
    )
    canary = run_client.update_service(service=v1).result(timeout=30)
    rev2 = _short(canary.latest_ready_revision)
    assert rev2 != rev1
    tag_uri = canary.uri.replace("https://", "https://canary---")
    statuses = [(s.type_, s.revision, s.percent, s.tag, s.uri) for s in canary.traffic_statuses]
    assert statuses == [(REVISION, rev1, 90, "", ""), (LATEST, rev2, 10, "canary", tag_uri)]

    for uri, serving in ((tag_uri, rev2), (canary.uri, rev1)):
        assert _visit(gcp_base_url, uri) == (401, "")
        assert _visit(gcp_base_url, uri, "user:mallory@example.com") == (403, "")
        assert _visit(gcp_base_url, uri, "user:alice@example.com") == (200, serving)

    del canary.traffic[:]
    canary.traffic.append(run_v2.TrafficTarget(type_=LATEST, percent=100))
    promoted = run_client.update_service(service=canary).result(timeout=30)
    assert [s.uri for s in promoted.traffic_statuses] == [""]
    assert _visit(gcp_base_url, tag_uri, "user:alice@example.com")[0] == 404
    assert _visit(gcp_base_url, promoted.uri, "user:alice@example.com") == (200, rev2)


def test_traffic_to_a_revision_that_does_not_exist(run_client: Any, gcp_admin: AdminClient) -> None:
    """The write is accepted; the rollout fails with code 13 and Google's message; trafficStatuses keep the
    last serving split."""
    gcp_admin.set_operation_delay(0)
    got = _create(run_client, "ghost", {"containers": [{"image": f"{IMG}:1"}]})
    del got.traffic[:]
    got.traffic.append(run_v2.TrafficTarget(type_=REVISION, revision="ghost-00042-xyz", percent=100))
    with pytest.raises(gexc.InternalServerError) as exc:
        run_client.update_service(service=got).result(timeout=30)
    message = (
        "Revision 'ghost-00042-xyz' does not exist or is deleted. Update all traffic to route to currently "
        "available revisions."
    )
    assert exc.value.message == message
    after = run_client.get_service(name=got.name)
    assert after.terminal_condition.state == FAILED
    assert after.terminal_condition.message == message
    assert [(s.type_, s.percent, s.revision) for s in after.traffic_statuses] == [
        (LATEST, 100, _short(got.latest_ready_revision))
    ]


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (
            {"image": f"{IMG}:2", "startup_probe": {"http_get": {"path": "/fails-startup-probe"}}},
            "The user-provided container failed the configured startup probe checks. Logs for this revision might "
            "contain more information.",
        ),
        (
            {"image": f"{IMG}:fails-startup-probe"},
            "The user-provided container failed to start and listen on the port defined provided by the PORT=8080 "
            "environment variable within the allocated timeout.",
        ),
    ],
    ids=["configured probe", "default probe"],
)
def test_failing_startup_probe_keeps_the_previous_revision_serving(
    container: dict[str, Any], expected: str, run_client: Any, gcp_admin: AdminClient, gcp_base_url: str
) -> None:
    """A revision whose startup probe fails: the Operation fails (code 9), terminalCondition says so in Google's
    words with the logs link, latestCreatedRevision moves but latestReadyRevision, observedGeneration and the
    URL stay on the previous revision."""
    gcp_admin.set_operation_delay(0)
    v1 = _create(run_client, "probe", {"containers": [{"image": f"{IMG}:1"}]}, invoker_iam_disabled=True)
    v1.template = run_v2.RevisionTemplate({"containers": [container]})
    with pytest.raises(gexc.FailedPrecondition) as exc:
        run_client.update_service(service=v1).result(timeout=30)
    assert exc.value.message.startswith("Revision 'probe-00002-")
    assert f"is not ready and cannot serve traffic. {expected}" in exc.value.message
    assert "Logs URL: https://console.cloud.google.com/logs/viewer?project=demo-project" in exc.value.message
    after = run_client.get_service(name=v1.name)
    assert after.terminal_condition.state == FAILED
    assert after.terminal_condition.message == exc.value.message
    assert _short(after.latest_created_revision).startswith("probe-00002-")
    assert after.latest_ready_revision == v1.latest_ready_revision
    assert after.observed_generation == 1
    assert _visit(gcp_base_url, after.uri) == (200, _short(v1.latest_ready_revision))


def test_named_revision_reused_with_another_configuration(run_client: Any, gcp_admin: AdminClient) -> None:
    """``template.revision`` names the revision; traffic may pin it; reusing the name for a different template
    is 409 "Revision named ... with different configuration already exists."."""
    gcp_admin.set_operation_delay(0)
    got = _create(run_client, "named", {"revision": "named-blue", "containers": [{"image": f"{IMG}:1"}]})
    assert _short(got.latest_ready_revision) == "named-blue"
    got.template.revision = "named-green"
    got.template.containers[0].image = f"{IMG}:2"
    del got.traffic[:]
    got.traffic.extend(
        [
            run_v2.TrafficTarget(type_=REVISION, revision="named-blue", percent=100),
            run_v2.TrafficTarget(type_=REVISION, revision="named-green", percent=0, tag="green"),
        ]
    )
    green = run_client.update_service(service=got).result(timeout=30)
    assert [(s.revision, s.percent, s.tag) for s in green.traffic_statuses] == [
        ("named-blue", 100, ""),
        ("named-green", 0, "green"),
    ]
    green.template.containers[0].image = f"{IMG}:3"
    with pytest.raises(gexc.Conflict) as exc:
        run_client.update_service(service=green)
    assert exc.value.message.endswith(": Revision named 'named-green' with different configuration already exists.")
