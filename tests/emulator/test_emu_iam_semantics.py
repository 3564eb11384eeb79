"""IAM semantics shared by Cloud Run and IAP policies, checked over raw HTTP."""

from __future__ import annotations

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

RES = "/v2/projects/demo-project/locations/us-central1/services/app"
AGENT = "serviceAccount:service-123456789012@gcp-sa-iap.iam.gserviceaccount.com"
COND = {"expression": 'request.time < timestamp("2099-01-01T00:00:00Z")', "title": "t"}


def _setup(base: str, admin: AdminClient) -> None:
    admin.set_operation_delay(0)
    body = {"template": {"containers": [{"image": "gcr.io/demo/app"}]}}
    url = f"{base}/v2/projects/demo-project/locations/us-central1/services?serviceId=app"
    assert raw_request("POST", url, body)[0] == 200


def test_versions_and_withcond(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Conditional bindings need version 3; reads below v3 rewrite roles to `_withcond_`; a policy without
    conditions read at v3 says version 1; a v1 write with etag over a conditional policy is rejected."""
    _setup(gcp_base_url, gcp_admin)
    url = f"{gcp_base_url}{RES}"
    binding = {"role": "roles/run.invoker", "members": ["user:a@example.com"], "condition": COND}
    st, _, _ = raw_request("POST", url + ":setIamPolicy", {"policy": {"version": 1, "bindings": [binding]}})
    assert st == 400
    st, _, pol = raw_request("POST", url + ":setIamPolicy", {"policy": {"version": 3, "bindings": [binding]}})
    assert st == 200
    assert pol["version"] == 3
    _, _, v1 = raw_request("GET", url + ":getIamPolicy?options.requestedPolicyVersion=1")
    assert v1["bindings"][0]["role"].startswith("roles/run.invoker_withcond_")
    assert v1["version"] == 1
    st, _, _ = raw_request(
        "POST", url + ":setIamPolicy", {"policy": {"version": 1, "bindings": [], "etag": pol["etag"]}}
    )
    assert st == 400
    plain = {"role": "roles/run.invoker", "members": ["user:a@example.com"]}
    st, _, pol2 = raw_request("POST", url + ":setIamPolicy", {"policy": {"bindings": [plain], "etag": pol["etag"]}})
    assert st == 400  # still the v1-over-conditional rule: the caller sent the etag
    st, _, pol2 = raw_request("POST", url + ":setIamPolicy", {"policy": {"bindings": [plain]}})
    assert st == 200  # without an etag a v1 write may drop conditions, as documented
    _, _, v3 = raw_request("GET", url + ":getIamPolicy?options.requestedPolicyVersion=3")
    assert v3["version"] == 1
    assert v3["etag"] == pol2["etag"]
    st, _, _ = raw_request("GET", url + ":getIamPolicy?options.requestedPolicyVersion=2")
    assert st == 400


def test_agent_propagation_delay(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """With a propagation delay the freshly generated IAP agent is still 'does not exist' until the clock
    passes it."""
    _setup(gcp_base_url, gcp_admin)
    gcp_admin.configure(agent_propagation_delay=60)
    gen = f"{gcp_base_url}/v1beta1/projects/demo-project/services/iap.googleapis.com:generateServiceIdentity"
    assert raw_request("POST", gen)[0] == 200
    body = {"policy": {"bindings": [{"role": "roles/run.invoker", "members": [AGENT]}]}}
    st, _, err = raw_request("POST", f"{gcp_base_url}{RES}:setIamPolicy", body)
    assert st == 400
    assert "does not exist" in err["error"]["message"]
    gcp_admin.advance_clock(61)
    assert raw_request("POST", f"{gcp_base_url}{RES}:setIamPolicy", body)[0] == 200


def test_test_iam_permissions(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """testIamPermissions returns the subset the caller holds; wildcards are rejected."""
    _setup(gcp_base_url, gcp_admin)
    url = f"{gcp_base_url}{RES}:testIamPermissions"
    _, _, out = raw_request("POST", url, {"permissions": ["run.services.get", "run.services.setIamPolicy"]})
    assert out == {"permissions": ["run.services.get", "run.services.setIamPolicy"]}
    gcp_admin.set_permissions("user:v@example.com", allow=["run.services.get"])
    hdr = {"X-Emulator-Caller": "user:v@example.com"}
    _, _, out = raw_request("POST", url, {"permissions": ["run.services.get", "run.services.setIamPolicy"]}, hdr)
    assert out == {"permissions": ["run.services.get"]}
    assert raw_request("POST", url, {"permissions": ["run.*"]})[0] == 400
