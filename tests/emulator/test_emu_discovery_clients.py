"""Conformance: googleapiclient discovery clients (static discovery, unmodified) for IAP v1, Service Usage
v1beta1 and Resource Manager v1/v3 against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

IAP_RES = "projects/123456789012/iap_web/cloud_run-us-central1/services/web"
AGENT = "serviceAccount:service-123456789012@gcp-sa-iap.iam.gserviceaccount.com"


def _create(base: str, admin: AdminClient, sid: str = "web") -> None:
    admin.set_operation_delay(0)
    st, _, _ = raw_request(
        "POST",
        f"{base}/v2/projects/demo-project/locations/us-central1/services?serviceId={sid}",
        {"template": {"containers": [{"image": "gcr.io/demo/web"}]}, "iapEnabled": True},
    )
    assert st == 200


def test_iap_conditional_binding_v3(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """IAP getIamPolicy/setIamPolicy through the discovery client: empty policy reads {"etag": "ACAB"}; a
    conditional binding needs version 3; reading at version 1 rewrites the role to `_withcond_`; a stale etag
    is 409 ABORTED."""
    _create(gcp_base_url, gcp_admin)
    iap = discovery_client("iap", "v1")
    empty = iap.v1().getIamPolicy(resource=IAP_RES, body={"options": {"requestedPolicyVersion": 3}}).execute()
    assert empty == {"etag": "ACAB"}
    binding = {
        "role": "roles/iap.httpsResourceAccessor",
        "members": ["user:alice@example.com"],
        "condition": {"expression": 'request.time < timestamp("2099-01-01T00:00:00Z")', "title": "until 2099"},
    }
    with pytest.raises(HttpError) as ei:
        iap.v1().setIamPolicy(resource=IAP_RES, body={"policy": {"bindings": [binding], "etag": "ACAB"}}).execute()
    assert ei.value.status_code == 400
    pol = (
        iap.v1()
        .setIamPolicy(resource=IAP_RES, body={"policy": {"version": 3, "bindings": [binding], "etag": "ACAB"}})
        .execute()
    )
    assert pol["version"] == 3
    assert pol["bindings"][0]["condition"]["title"] == "until 2099"
    v3 = iap.v1().getIamPolicy(resource=IAP_RES, body={"options": {"requestedPolicyVersion": 3}}).execute()
    assert v3 == pol
    v1 = iap.v1().getIamPolicy(resource=IAP_RES, body={}).execute()
    assert v1["version"] == 1
    assert "_withcond_" in v1["bindings"][0]["role"]
    assert "condition" not in v1["bindings"][0]
    with pytest.raises(HttpError) as ei:
        iap.v1().setIamPolicy(
            resource=IAP_RES, body={"policy": {"version": 3, "bindings": [], "etag": "ACAB"}}
        ).execute()
    assert ei.value.status_code == 409
    assert "concurrent policy changes" in ei.value.reason
    # project ID accepted and canonicalised to the number
    by_id = "projects/demo-project/iap_web/cloud_run-us-central1/services/web"
    assert iap.v1().getIamPolicy(resource=by_id, body={"options": {"requestedPolicyVersion": 3}}).execute() == pol
    perms = (
        iap.v1().testIamPermissions(resource=IAP_RES, body={"permissions": ["iap.webServices.getIamPolicy"]}).execute()
    )
    assert perms == {"permissions": ["iap.webServices.getIamPolicy"]}


def test_iap_settings_minimal(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """getIapSettings / updateIapSettings round-trip with the resource name canonicalised."""
    _create(gcp_base_url, gcp_admin)
    iap = discovery_client("iap", "v1")
    assert iap.v1().getIapSettings(name=IAP_RES).execute() == {"name": IAP_RES}
    body = {"accessSettings": {"allowedDomainsSettings": {"enable": True, "domains": ["example.com"]}}}
    out = iap.v1().updateIapSettings(name=IAP_RES, body=body, updateMask="accessSettings").execute()
    assert out["accessSettings"]["allowedDomainsSettings"]["domains"] == ["example.com"]


def test_generate_service_identity_makes_agent_bindable(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any], run_client: Any
) -> None:
    """The IAP agent cannot be bound until serviceusage v1beta1 generateServiceIdentity ran; the call answers
    a done Operation with a ServiceIdentity response carrying the agent's email."""
    _create(gcp_base_url, gcp_admin)
    res = "projects/demo-project/locations/us-central1/services/web"
    policy = {"bindings": [{"role": "roles/run.invoker", "members": [AGENT]}]}
    with pytest.raises(Exception, match="does not exist") as ei:
        run_client.set_iam_policy(request={"resource": res, "policy": policy})
    assert "Service account service-123456789012@gcp-sa-iap.iam.gserviceaccount.com does not exist." in str(ei.value)
    su = discovery_client("serviceusage", "v1beta1")
    op = su.services().generateServiceIdentity(parent="projects/demo-project/services/iap.googleapis.com").execute()
    assert op["done"] is True
    assert op["response"]["@type"] == "type.googleapis.com/google.api.serviceusage.v1beta1.ServiceIdentity"
    assert op["response"]["email"] == "service-123456789012@gcp-sa-iap.iam.gserviceaccount.com"
    req = gcp_admin.requests("serviceusage.services.generateServiceIdentity")[-1]
    assert req["status"] == 200
    pol = run_client.set_iam_policy(request={"resource": res, "policy": policy})
    assert list(pol.bindings[0].members) == [AGENT]


def test_resource_manager_projects_get(discovery_client: Callable[[str, str], Any], gcp_admin: AdminClient) -> None:
    """CRM v3 projects.get by ID or number returns name=projects/{number}; v1 returns projectNumber; an
    unknown project is 403 as Google answers for missing and forbidden projects alike."""
    crm3 = discovery_client("cloudresourcemanager", "v3")
    p = crm3.projects().get(name="projects/demo-project").execute()
    assert p["name"] == "projects/123456789012"
    assert p["projectId"] == "demo-project"
    assert p["state"] == "ACTIVE"
    assert crm3.projects().get(name="projects/123456789012").execute()["projectId"] == "demo-project"
    crm1 = discovery_client("cloudresourcemanager", "v1")
    p1 = crm1.projects().get(projectId="demo-project").execute()
    assert p1["projectNumber"] == "123456789012"
    assert p1["lifecycleState"] == "ACTIVE"
    with pytest.raises(HttpError) as ei:
        crm3.projects().get(name="projects/no-such-project").execute()
    assert ei.value.status_code == 403
    assert ei.value.reason == "The caller does not have permission"
    gcp_admin.configure(auto_register_projects=True)
    auto = crm3.projects().get(name="projects/brand-new").execute()
    assert auto["projectId"] == "brand-new"
    assert auto["name"].startswith("projects/")


def test_project_iam_policy(
    gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Callable[[str, str], Any]
) -> None:
    """CRM v3/v1 project getIamPolicy/setIamPolicy: etag rules, allUsers rejected on projects, and a project
    binding of run.invoker for the IAP agent (the seed-article variant) satisfies the protected URL's
    invoker check."""
    _create(gcp_base_url, gcp_admin)
    gcp_admin.create_service_agent("demo-project")
    crm3 = discovery_client("cloudresourcemanager", "v3")
    pol = crm3.projects().getIamPolicy(resource="projects/demo-project", body={}).execute()
    assert pol == {"etag": "ACAB"}
    with pytest.raises(HttpError) as ei:
        crm3.projects().setIamPolicy(
            resource="projects/demo-project",
            body={"policy": {"bindings": [{"role": "roles/viewer", "members": ["allUsers"]}]}},
        ).execute()
    assert ei.value.status_code == 400
    binding = {"role": "roles/run.invoker", "members": [AGENT]}
    new = (
        crm3.projects()
        .setIamPolicy(resource="projects/demo-project", body={"policy": {"bindings": [binding], "etag": "ACAB"}})
        .execute()
    )
    crm1 = discovery_client("cloudresourcemanager", "v1")
    assert crm1.projects().getIamPolicy(resource="demo-project", body={}).execute() == new
    gcp_admin.add_binding(
        "demo-project", "us-central1", "web", "roles/iap.httpsResourceAccessor", "user:alice@example.com", kind="iap"
    )
    st, _, body = raw_request(
        "GET",
        f"{gcp_base_url}/",
        headers={"Host": "web-123456789012.us-central1.run.app", "X-Emulator-User": "user:alice@example.com"},
    )
    assert st == 200, body
