"""``core.export``: an existing service and its policies written back as the IapRunService that declares them.

Proves: conditions turn back into ``expires`` (any title) and, in the access-level form, ``accessLevels`` (the
seam for the access-level helper); a grant under a condition no spec can say makes the manifest Additive (never
revoked) with a note; a public invoker binding makes it Report; Cloud Run's filled-in defaults are left out and
everything else kept, with Cloud Run v2 names and enum values; the exported spec, planned against the very
service it came from, plans no change but the adoption's marks; the IAP settings are exported by their IAP v1
names without defaults, a custom client's secret is left undeclared (with a note), and the settings step given
the exported spec writes nothing.
"""

from __future__ import annotations

from typing import Any

from iaprun_operator.core.export import accessor_of, export
from iaprun_operator.core.iapsettings import plan_settings
from iaprun_operator.core.model import parse_spec
from iaprun_operator.core.names import Owner
from iaprun_operator.core.service import desired_service, plan_update, template_hash

ACCESSOR, INVOKER = "roles/iap.httpsResourceAccessor", "roles/run.invoker"
UNTIL = 'request.time < timestamp("2030-01-01T00:00:00Z")'
LEVEL = '"accessPolicies/123/accessLevels/corp" in request.auth.access_levels'
DEFAULTED_CONTAINER = {
    "image": "hello",
    "env": [{"name": "DB", "valueSource": {"secretKeyRef": {"secret": "db", "version": "latest"}}}],
    "ports": [{"name": "http1", "containerPort": 8080}],
    "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"}, "cpuIdle": True},
    "startupProbe": {"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1, "tcpSocket": {"port": 8080}},
}
SERVICE: dict[str, Any] = {
    "name": "projects/123/locations/asia-northeast1/services/web",
    "description": "made by hand",
    "labels": {"team": "a", "goog-managed": "x"},
    "annotations": {"run.googleapis.com/operation-id": "x"},
    "ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "launchStage": "GA",
    "iapEnabled": True,
    "template": {
        "containers": [DEFAULTED_CONTAINER],
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
        "scaling": {"maxInstanceCount": 100, "minInstanceCount": 1},
        "maxInstanceRequestConcurrency": 80,
        "timeout": "300s",
        "serviceAccount": "123-compute@developer.gserviceaccount.com",
    },
    "terminalCondition": {"state": "CONDITION_SUCCEEDED"},
}


def test_conditions_turn_back_into_expires_and_access_levels() -> None:
    assert accessor_of("user:A@example.com", None) == {"member": "user:a@example.com"}
    assert accessor_of("user:a@example.com", {"title": "anything", "expression": UNTIL}) == {
        "member": "user:a@example.com",
        "expires": "2030-01-01T00:00:00Z",
    }
    assert accessor_of("user:a@example.com", {"expression": f"{LEVEL} && {UNTIL}"}) == {
        "member": "user:a@example.com",
        "expires": "2030-01-01T00:00:00Z",
        "accessLevels": ["accessPolicies/123/accessLevels/corp"],
    }
    assert accessor_of("user:a@example.com", {"expression": 'request.path.startsWith("/admin")'}) is None
    other = '"accessPolicies/123/accessLevels/home" in request.auth.access_levels'
    assert accessor_of("user:a@example.com", {"expression": f"({LEVEL} || {other})"}) == {
        "member": "user:a@example.com",
        "accessLevels": ["accessPolicies/123/accessLevels/corp", "accessPolicies/123/accessLevels/home"],
    }, "the operator's own form for several levels (any one of them)"
    assert accessor_of("user:a@example.com", {"expression": f"{LEVEL} && {other}"}) is None, (
        "both levels at once is narrower than accessLevels (any one): not declarable"
    )


def test_the_manifest_declares_the_service_with_v2_names_and_without_cloud_runs_defaults() -> None:
    policy = {"bindings": [{"role": ACCESSOR, "members": ["user:a@example.com"]}]}
    spec = export(SERVICE, {}, policy, project="demo-project").manifest["spec"]
    assert spec["projectID"] == "demo-project"
    assert (spec["adoption"], spec["managementPolicy"], spec["deletionPolicy"]) == (
        "IfUnowned",
        "ObserveOnly",
        "Abandon",
    )
    assert spec["labels"] == {"team": "a"}
    assert spec["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert "launchStage" not in spec
    assert spec["template"] == {
        "containers": [{"image": "hello", "env": DEFAULTED_CONTAINER["env"]}],
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
        "scaling": {"minInstanceCount": 1},
    }
    assert spec["iap"] == {"enabled": True, "accessors": [{"member": "user:a@example.com"}]}


def test_an_undeclarable_grant_makes_it_additive_and_a_public_invoker_makes_it_report() -> None:
    odd = {"title": "admin", "expression": 'request.path.startsWith("/admin")'}
    iap_policy = {"bindings": [{"role": ACCESSOR, "members": ["user:b@example.com"], "condition": odd}]}
    run_policy = {"bindings": [{"role": INVOKER, "members": ["allUsers"]}]}
    out = export(SERVICE, run_policy, iap_policy, project="demo-project")
    iap = out.manifest["spec"]["iap"]
    assert iap["accessorsPolicy"] == "Additive"
    assert iap["publicInvokerBindings"] == "Report"
    assert iap["accessors"] == []
    assert any("user:b@example.com" in note for note in out.notes)
    assert any("allUsers" in note for note in out.notes)


def test_the_exported_spec_plans_no_change_against_its_own_service() -> None:
    """The round trip in the pure core: only the adoption's marks differ (labels and annotations)."""
    service = {**SERVICE, "ingress": "INGRESS_TRAFFIC_ALL", "template": {"containers": [{"image": "hello"}]}}
    spec = parse_spec(export(service, {}, {}, project="demo-project").manifest["spec"], name="web")
    desired = desired_service(spec, Owner("c", "ns", "web"), service)
    update = plan_update(desired, service, applied_hash=None, desired_hash=template_hash(spec))
    assert update.mask == ("labels", "annotations")


LIVE_SETTINGS: dict[str, Any] = {
    "name": "projects/123/iap_web/cloud_run-asia-northeast1/services/web",
    "accessSettings": {
        "oauthSettings": {
            "clientId": "123-custom.apps.googleusercontent.com",
            "clientSecretSha256": "ab" * 32,
            "loginHint": "example.com",
            "programmaticClients": ["cli.apps.googleusercontent.com"],
        },
        "corsSettings": {"allowHttpOptions": False},
        "allowedDomainsSettings": {"enable": False, "domains": []},
        "reauthSettings": {"method": "LOGIN", "maxAge": "3600s", "policyType": "MINIMUM"},
    },
    "applicationSettings": {"cookieDomain": "example.com", "attributePropagationSettings": {}},
}


def test_iap_settings_are_exported_by_their_iap_v1_names_defaults_left_out_the_secret_left_in_place() -> None:
    """Only fields set to something else than their default; a custom client's secret (IAP keeps only its hash)
    is not declared, so the object does not own it, and a note says how to hand it to the operator."""
    out = export(SERVICE, {}, {}, project="demo-project", iap_settings=LIVE_SETTINGS)
    assert out.manifest["spec"]["iap"]["settings"] == {
        "accessSettings": {
            "oauthSettings": {
                "clientId": "123-custom.apps.googleusercontent.com",
                "loginHint": "example.com",
                "programmaticClients": ["cli.apps.googleusercontent.com"],
            },
            "reauthSettings": {"method": "LOGIN", "maxAge": "3600s", "policyType": "MINIMUM"},
        },
        "applicationSettings": {"cookieDomain": "example.com"},
    }
    (note,) = [n for n in out.notes if "OAuth client" in n]
    assert "clientSecretSource: {secretKeyRef:" in note
    assert "settings" not in export(SERVICE, {}, {}, project="p", iap_settings={"name": "x"}).manifest["spec"]["iap"]


def test_exported_settings_plan_no_change_against_the_settings_they_came_from() -> None:
    """The round trip in the pure core: the settings step, given the exported spec, writes nothing."""
    spec = parse_spec(
        export(SERVICE, {}, {}, project="demo-project", iap_settings=LIVE_SETTINGS).manifest["spec"], name="web"
    )
    decided = plan_settings(LIVE_SETTINGS, spec.iap.settings, [], {})
    assert decided.changes == ()
    assert not decided.write
