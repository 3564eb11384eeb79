"""Conformance: IAP settings (update-mask semantics and Google's validation), Secret Manager access,
organisations in Resource Manager, and the sign-in step of the protected URL, through the unmodified
discovery clients where the operator uses them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

SVCS = "/v2/projects/demo-project/locations/us-central1/services"
RES = "/v2/projects/demo-project/locations/us-central1/services/app"
NAME = "projects/123456789012/iap_web/cloud_run-us-central1/services/app"
AGENT = "serviceAccount:service-123456789012@gcp-sa-iap.iam.gserviceaccount.com"


def _deploy(base: str, admin: AdminClient) -> str:
    admin.set_operation_delay(0)
    body = {"template": {"containers": [{"image": "gcr.io/demo/app"}]}, "iapEnabled": True}
    st, _, op = raw_request("POST", f"{base}{SVCS}?serviceId=app", body)
    assert st == 200
    return str(op["response"]["uri"]).removeprefix("https://")


def _update(iap: Any, body: dict[str, Any], mask: str) -> dict[str, Any]:
    result: dict[str, Any] = iap.v1().updateIapSettings(name=NAME, updateMask=mask, body=body).execute()
    return result


def test_update_mask_sets_clears_and_leaves_the_rest(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """A masked update writes the named paths (with or without the iapSettings. prefix), clears a named path
    absent from the body, and leaves every other field as it was; defaults are not returned."""
    _deploy(gcp_base_url, gcp_admin)
    iap = discovery_client("iap", "v1")
    assert iap.v1().getIapSettings(name=NAME).execute() == {"name": NAME}
    body = {
        "accessSettings": {"corsSettings": {"allowHttpOptions": True}, "oauthSettings": {"loginHint": "example.com"}},
        "applicationSettings": {"cookieDomain": "example.com"},
    }
    mask = "iapSettings.accessSettings.corsSettings,iapSettings.accessSettings.oauthSettings.loginHint"
    got = _update(iap, body, mask)
    assert got == {"name": NAME, "accessSettings": body["accessSettings"]}
    got = _update(iap, {"applicationSettings": {"cookieDomain": "example.com"}}, "application_settings.cookie_domain")
    assert got["applicationSettings"] == {"cookieDomain": "example.com"}
    got = _update(iap, {}, "iapSettings.accessSettings.oauthSettings.loginHint")
    assert got == {
        "name": NAME,
        "accessSettings": {"corsSettings": {"allowHttpOptions": True}},
        "applicationSettings": {"cookieDomain": "example.com"},
    }
    assert iap.v1().getIapSettings(name=NAME).execute() == got


@pytest.mark.parametrize(
    ("body", "mask", "words"),
    [
        ({}, "iapSettings.accessSettings.reauthSettings.method", "must always be set together"),
        ({}, "iapSettings.accessSettings.nope", "Invalid update mask path"),
        ({}, "iapSettings.accessSettings.oauthSettings.clientSecretSha256", "Invalid update mask path"),
        (
            {"accessSettings": {"identitySources": ["WORKFORCE_IDENTITY_FEDERATION"] * 2}},
            "iapSettings.accessSettings.identitySources",
            "Only one identity source",
        ),
        (
            {"accessSettings": {"oauthSettings": {"bogus": 1}}},
            "iapSettings.accessSettings.oauthSettings",
            "Unknown name",
        ),
    ],
)
def test_invalid_updates_answer_400(
    gcp_base_url: str,
    gcp_admin: AdminClient,
    discovery_client: Callable[[str, str], Any],
    body: dict[str, Any],
    mask: str,
    words: str,
) -> None:
    """Google's refusals: a path inside reauthSettings, an unknown or output-only path, two identity sources,
    an unknown field; nothing is stored."""
    _deploy(gcp_base_url, gcp_admin)
    iap = discovery_client("iap", "v1")
    with pytest.raises(HttpError) as ei:
        _update(iap, body, mask)
    assert ei.value.status_code == 400
    assert words in str(ei.value.reason)
    assert iap.v1().getIapSettings(name=NAME).execute() == {"name": NAME}


def test_the_client_secret_is_input_only_and_kept_as_its_digest(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """clientSecret is never returned; clientSecretSha256 is; clearing clientSecret clears the digest."""
    _deploy(gcp_base_url, gcp_admin)
    iap = discovery_client("iap", "v1")
    oauth = {"clientId": "c.apps.googleusercontent.com", "clientSecret": "hunter2"}
    mask = "iapSettings.accessSettings.oauthSettings.clientId,iapSettings.accessSettings.oauthSettings.clientSecret"
    got = _update(iap, {"accessSettings": {"oauthSettings": oauth}}, mask)
    assert got["accessSettings"]["oauthSettings"] == {
        "clientId": "c.apps.googleusercontent.com",
        "clientSecretSha256": hashlib.sha256(b"hunter2").hexdigest(),
    }
    got = _update(iap, {}, "iapSettings.accessSettings.oauthSettings.clientSecret")
    assert got["accessSettings"]["oauthSettings"] == {"clientId": "c.apps.googleusercontent.com"}


def test_secret_manager_access_by_version(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """accessSecretVersion: latest is the last version, names carry the project number, a missing secret or
    version is 404 with Google's words."""
    gcp_admin.configure(secrets={"projects/demo-project/secrets/oauth": ["one", "two"]})
    versions = discovery_client("secretmanager", "v1").projects().secrets().versions()
    latest = versions.access(name="projects/demo-project/secrets/oauth/versions/latest").execute()
    assert latest["name"] == "projects/123456789012/secrets/oauth/versions/2"
    assert latest["payload"]["data"] == "dHdv"  # base64 of "two"
    first = versions.access(name="projects/123456789012/secrets/oauth/versions/1").execute()
    assert first["payload"]["data"] == "b25l"
    with pytest.raises(HttpError) as ei:
        versions.access(name="projects/demo-project/secrets/oauth/versions/3").execute()
    assert ei.value.status_code == 404
    assert "Secret Version [projects/123456789012/secrets/oauth/versions/3] not found." in str(ei.value.reason)
    with pytest.raises(HttpError) as ei:
        versions.access(name="projects/demo-project/secrets/missing/versions/latest").execute()
    assert ei.value.status_code == 404


def test_projects_with_and_without_an_organisation(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """v3 projects.get carries the organisation as parent only when there is one; organizations.get gives the
    primary domain as displayName."""
    gcp_admin.configure(
        organizations={"42": ["corp.example", "corp-alias.example"]},
        project_organizations={"test-project": "42", "other-project": None},
    )
    crm = discovery_client("cloudresourcemanager", "v3")
    assert crm.projects().get(name="projects/test-project").execute()["parent"] == "organizations/42"
    assert "parent" not in crm.projects().get(name="projects/other-project").execute()
    assert crm.projects().get(name="projects/demo-project").execute()["parent"] == "organizations/000000000000"
    assert crm.organizations().get(name="organizations/42").execute()["displayName"] == "corp.example"
    with pytest.raises(HttpError) as ei:
        crm.organizations().get(name="organizations/7").execute()
    assert ei.value.status_code == 403


def _visit(base: str, host: str, user: str) -> tuple[int, str]:
    st, _, body = raw_request("GET", f"{base}/_run/{host}/", headers={"X-Emulator-User": user})
    return st, body if isinstance(body, str) else str(body)


def test_sign_in_with_the_google_managed_client_is_for_the_organisation_only(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """An outsider holding the accessor role is refused at sign-in (org_internal) until a custom OAuth client is
    configured; an insider gets in; in a project with no organisation nobody signs in with the managed client."""
    host = _deploy(gcp_base_url, gcp_admin)
    gcp_admin.create_service_agent("demo-project")
    invoker = {"policy": {"bindings": [{"role": "roles/run.invoker", "members": [AGENT]}]}}
    assert raw_request("POST", f"{gcp_base_url}{RES}:setIamPolicy", invoker)[0] == 200
    members = ["user:alice@example.com", "user:bob@partner.example"]
    policy = {"policy": {"bindings": [{"role": "roles/iap.httpsResourceAccessor", "members": members}]}}
    assert raw_request("POST", f"{gcp_base_url}/v1/{NAME}:setIamPolicy", policy)[0] == 200
    assert _visit(gcp_base_url, host, "user:alice@example.com")[0] == 200
    status, body = _visit(gcp_base_url, host, "user:bob@partner.example")
    assert status == 403
    assert "org_internal" in body
    iap = discovery_client("iap", "v1")
    _update(iap, {"accessSettings": {"oauthSettings": {"clientId": "c"}}}, "accessSettings.oauthSettings.clientId")
    assert _visit(gcp_base_url, host, "user:bob@partner.example")[0] == 200
    _update(iap, {}, "accessSettings.oauthSettings.clientId")
    gcp_admin.configure(project_organizations={"demo-project": None})
    assert _visit(gcp_base_url, host, "user:alice@example.com")[0] == 403
