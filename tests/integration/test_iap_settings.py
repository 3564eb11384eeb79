"""IAP settings, OAuth clients and who can sign in, end to end (issue #15).

Real control plane, real operator process, the emulator (IAP settings with Google's update-mask semantics,
Secret Manager, organisations and the protected URL's sign-in step); no mocks. Each test states what it proves.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from integration.conftest import TENANCY, module_operator
from integration.harness import OperatorProcess, apply, condition, get, manifest, wait_for
from integration.test_access import visit
from testworld.fixtures import Runner
from testworld.operator_process import open_rule

pytestmark = pytest.mark.integration
REGION = "asia-northeast1"
PROJECT = "demo-project"
CLIENT = "123-custom.apps.googleusercontent.com"
SECRETS = "projects/demo-project/secrets/iap-*"
POLICY = {
    "rules": [
        open_rule("tests", {"iaprun.test/owned": "true"}, oauthClientSecrets=[SECRETS]),
        *TENANCY["rules"][1:],
    ]
}


# The suite's operator with test namespaces allowed to name OAuth client secrets ``iap-*`` of demo-project.
operator = module_operator(IAPRUN_TENANCY_POLICY=json.dumps(POLICY))


@pytest.fixture
def world(emu: AdminClient) -> Iterator[AdminClient]:
    """The emulator with the organisation and secret knobs these tests change restored afterwards."""
    keys = ("secrets", "project_organizations", "organizations")
    before = {key: emu.config()[key] for key in keys}
    yield emu
    emu.configure(**before)


def wait_condition(kubectl: Runner, namespace: str, name: str, kind: str, status: str = "True") -> dict[str, Any]:
    kubectl("wait", "-n", namespace, f"iaprunservice/{name}", f"--for=condition={kind}={status}", "--timeout=60s")
    return get(kubectl, namespace, name)


def stored(emu: AdminClient, project: str, svc: str) -> dict[str, Any]:
    number = emu.state()["projects"][project]
    settings: dict[str, Any] = emu.state()["iap_settings"].get(f"{number}/{REGION}/{svc}", {})
    return settings


def out_of_band(emulator_url: str, emu: AdminClient, svc: str, mask: str, body: dict[str, Any]) -> None:
    """An admin changes the settings in the console (gcloud iap settings set): a real updateIapSettings."""
    number = emu.state()["projects"][PROJECT]
    url = f"{emulator_url}/v1/projects/{number}/iap_web/cloud_run-{REGION}/services/{svc}:iapSettings?updateMask={mask}"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", "X-Emulator-Tag": "out-of-band"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def events(kubectl: Runner, namespace: str, name: str) -> str:
    result = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")
    return str(result.stdout)


def with_drift(body: dict[str, Any], seconds: int = 2) -> dict[str, Any]:
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": str(seconds)}
    return body


SETTINGS = {
    "accessSettings": {
        "corsSettings": {"allowHttpOptions": True},
        "oauthSettings": {"loginHint": "example.com", "programmaticClients": ["cli-1.apps.googleusercontent.com"]},
        "reauthSettings": {"method": "LOGIN", "maxAge": "3600s", "policyType": "MINIMUM"},
    },
    "applicationSettings": {"cookieDomain": "example.com"},
}


def test_settings_round_trip_drift_reverted_and_no_steady_writes(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str, svc: str
) -> None:
    """The declared settings reach IAP; an out-of-band change of a declared field is reverted (with an Event),
    a field set out of band that the object never declared is left alone, steady passes write nothing, and a
    field removed from the spec is cleared."""
    body = with_drift(manifest(svc, iap={"settings": json.loads(json.dumps(SETTINGS))}))
    apply(kubectl, namespace, body)
    obj = wait_condition(kubectl, namespace, svc, "Ready")
    assert condition(obj, "IapSettingsSynced")["status"] == "True"
    assert stored(emu, PROJECT, svc) == SETTINGS
    assert sorted(obj["status"]["iapSettings"]["managedFields"]) == [
        "accessSettings.corsSettings.allowHttpOptions",
        "accessSettings.oauthSettings.loginHint",
        "accessSettings.oauthSettings.programmaticClients",
        "accessSettings.reauthSettings",
        "applicationSettings.cookieDomain",
    ]

    out_of_band(
        emulator_url,
        emu,
        svc,
        "iapSettings.accessSettings.oauthSettings.loginHint,iapSettings.accessSettings.gcipSettings.loginPageUri",
        {"accessSettings": {"oauthSettings": {"loginHint": "evil.example"}, "gcipSettings": {"loginPageUri": "x"}}},
    )
    wait_for(
        lambda: stored(emu, PROJECT, svc)["accessSettings"]["oauthSettings"]["loginHint"] == "example.com",
        timeout=30,
        what="the out-of-band loginHint reverted",
    )
    assert stored(emu, PROJECT, svc)["accessSettings"]["gcipSettings"] == {"loginPageUri": "x"}
    wait_for(lambda: "IapSettingsUpdated" in events(kubectl, namespace, svc), timeout=30, what="the Event")

    since = emu.last_seq()
    wait_for(lambda: len(emu.requests("iap.getIapSettings", since=since)) >= 2, timeout=30, what="two drift passes")
    assert emu.requests("iap.updateIapSettings", since=since, include_tagged=False) == []

    del body["spec"]["iap"]["settings"]["applicationSettings"]
    apply(kubectl, namespace, body)
    wait_for(lambda: "applicationSettings" not in stored(emu, PROJECT, svc), timeout=30, what="cookieDomain cleared")
    assert stored(emu, PROJECT, svc)["accessSettings"]["corsSettings"] == {"allowHttpOptions": True}


def test_custom_oauth_client_secret_from_secret_manager_lets_outsiders_in(
    operator: OperatorProcess, kubectl: Runner, namespace: str, world: AdminClient, emulator_url: str, svc: str
) -> None:
    """A custom OAuth client: the secret is read from Secret Manager (never in the object), IAP holds its
    digest, a rotated secret version reaches IAP, status.access names the client as the audience, and a user
    outside the organisation can sign in."""
    world.configure(secrets={"projects/demo-project/secrets/iap-oauth": ["first-secret"]})
    oauth = {"clientId": CLIENT, "clientSecretSource": {"secretKeyRef": {"secret": "iap-oauth"}}}
    accessors = [{"member": "user:bob@partner.example"}]
    body = with_drift(
        manifest(svc, iap={"accessors": accessors, "settings": {"accessSettings": {"oauthSettings": oauth}}})
    )
    apply(kubectl, namespace, body)
    obj = wait_condition(kubectl, namespace, svc, "Ready")
    settings = stored(world, PROJECT, svc)["accessSettings"]["oauthSettings"]
    assert settings == {"clientId": CLIENT, "clientSecretSha256": hashlib.sha256(b"first-secret").hexdigest()}
    assert "first-secret" not in json.dumps(obj)
    access = obj["status"]["access"]
    assert access["audience"] == CLIENT
    assert access["googleManagedClient"] is False
    assert access["urls"][0] == obj["status"]["url"]
    assert condition(obj, "AccessorsCanSignIn")["reason"] == "CustomOAuthClient"
    assert visit(emulator_url, obj["status"]["url"], "user:bob@partner.example") == 200

    world.configure(secrets={"projects/demo-project/secrets/iap-oauth": ["first-secret", "rotated-secret"]})
    wait_for(
        lambda: (
            stored(world, PROJECT, svc)["accessSettings"]["oauthSettings"]["clientSecretSha256"]
            == hashlib.sha256(b"rotated-secret").hexdigest()
        ),
        timeout=30,
        what="the rotated secret in IAP",
    )


def test_outside_accessors_without_a_custom_client_are_reported_and_refused_at_sign_in(
    operator: OperatorProcess, kubectl: Runner, namespace: str, world: AdminClient, emulator_url: str, svc: str
) -> None:
    """With the Google-managed client, an accessor outside the organisation's domain is granted (AccessorsSynced)
    but reported (AccessorsCanSignIn=False, a Warning Event naming them), and Google refuses them at sign-in;
    status.access says the managed client is in use and the audience is the service URL."""
    accessors = [{"member": "user:alice@example.com"}, {"member": "user:bob@partner.example"}]
    apply(kubectl, namespace, manifest(svc, iap={"accessors": accessors}))
    obj = wait_condition(kubectl, namespace, svc, "Ready")
    assert condition(obj, "AccessorsSynced")["status"] == "True"
    sign_in = condition(obj, "AccessorsCanSignIn")
    assert sign_in["reason"] == "OutsideOrganization"
    assert "user:bob@partner.example" in sign_in["message"]
    assert "user:alice@example.com" not in sign_in["message"]
    assert condition(obj, "Ready")["status"] == "True"
    wait_for(lambda: "AccessorsCannotSignIn" in events(kubectl, namespace, svc), timeout=30, what="the Warning")
    access = obj["status"]["access"]
    assert access["urls"][0] == obj["status"]["url"]
    assert access["audience"] == obj["status"]["url"]
    assert access["googleManagedClient"] is True
    assert access["programmaticClients"] == []
    url = obj["status"]["url"]
    assert visit(emulator_url, url, "user:alice@example.com") == 200
    assert visit(emulator_url, url, "user:bob@partner.example") == 403
    wide = kubectl("get", "-n", namespace, f"iaprunservice/{svc}", "-o", "wide").stdout
    assert "AUDIENCE" in wide
    assert url in wide


def test_in_a_project_without_organisation_nobody_signs_in_with_the_managed_client(
    operator: OperatorProcess, kubectl: Runner, namespace: str, world: AdminClient, emulator_url: str, svc: str
) -> None:
    """A project with no organisation: every person accessor is reported (NoOrganization) and refused."""
    world.configure(project_organizations={"other-project": None})
    body = manifest(svc, projectID="other-project", iap={"accessors": [{"member": "user:alice@example.com"}]})
    apply(kubectl, namespace, body)
    obj = wait_condition(kubectl, namespace, svc, "Ready")
    assert condition(obj, "AccessorsCanSignIn")["reason"] == "NoOrganization"
    assert visit(emulator_url, obj["status"]["url"], "user:alice@example.com") == 403


def test_tenancy_refuses_an_oauth_secret_outside_the_rule_and_reads_nothing(
    operator: OperatorProcess, kubectl: Runner, namespace: str, world: AdminClient, svc: str
) -> None:
    """A secret the namespace's rule does not list is refused before any Google call: the operator never reads it."""
    world.configure(secrets={"projects/other-project/secrets/iap-oauth": ["not-yours"]})
    oauth = {
        "clientId": CLIENT,
        "clientSecretSource": {"secretKeyRef": {"secret": "projects/other-project/secrets/iap-oauth"}},
    }
    since = world.last_seq()
    apply(kubectl, namespace, manifest(svc, iap={"settings": {"accessSettings": {"oauthSettings": oauth}}}))
    obj = wait_condition(kubectl, namespace, svc, "Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled["reason"] == "PolicyDenied"
    assert "projects/other-project/secrets/iap-oauth" in stalled["message"]
    # Other tests' objects in this module's world may read their own (allowed) secrets meanwhile: what is proved
    # is that nothing read this one.
    reads = world.requests("secretmanager.*", since=since)
    assert [r for r in reads if "projects/other-project/secrets/iap-oauth" in r["path"]] == []


def test_a_client_secret_in_clear_is_refused_at_admission(kubectl: Runner, namespace: str, crd: None, svc: str) -> None:
    """``clientSecret`` is not part of the API: the API server refuses it (strict field validation)."""
    body = manifest(
        svc, iap={"settings": {"accessSettings": {"oauthSettings": {"clientId": CLIENT, "clientSecret": "x"}}}}
    )
    result = kubectl("apply", "--validate=strict", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "clientSecret" in result.stderr
