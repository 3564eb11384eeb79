"""Raw HTTP checks of every error envelope listed in gcp-api.md: status line, google.rpc status name,
message text and typed details (ErrorInfo, BadRequest)."""

from __future__ import annotations

from typing import Any

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

SVCS = "/v2/projects/demo-project/locations/us-central1/services"
BODY = {"template": {"containers": [{"image": "gcr.io/demo/app"}]}}


def _info(err: dict[str, Any]) -> dict[str, Any]:
    infos = [d for d in err.get("details", []) if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]
    assert infos, err
    return dict(infos[0])


def _violations(err: dict[str, Any]) -> list[dict[str, str]]:
    brs = [d for d in err.get("details", []) if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    assert brs, err
    return list(brs[0]["fieldViolations"])


def _setup(base: str, admin: AdminClient) -> None:
    admin.set_operation_delay(0)
    st, _, _ = raw_request("POST", f"{base}{SVCS}?serviceId=app", BODY)
    assert st == 200


def test_already_exists(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Creating an existing service: 409 ALREADY_EXISTS with ErrorInfo."""
    _setup(gcp_base_url, gcp_admin)
    st, _, body = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=app", BODY)
    err = body["error"]
    assert (st, err["code"], err["status"]) == (409, 409, "ALREADY_EXISTS")
    assert "already exists" in err["message"]
    assert _info(err)["domain"] == "run.googleapis.com"


def test_not_found(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """GET of a missing service: 404 NOT_FOUND envelope; an unknown region: the front end's HTML 404."""
    st, _, body = raw_request("GET", f"{gcp_base_url}{SVCS}/nope")
    assert st == 404
    assert body["error"]["status"] == "NOT_FOUND"
    assert _info(body["error"])["reason"] == "NOT_FOUND"
    st, hdrs, page = raw_request("GET", f"{gcp_base_url}/v2/projects/demo-project/locations/mars-east1/services")
    assert st == 404
    assert "text/html" in hdrs["Content-Type"]
    assert "404." in page


def test_stale_etag(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A stale etag on delete (query param) or patch (body) is 409 ABORTED; a stale IAM policy etag is 409
    ABORTED with IAM's concurrency message. The status for services is configurable."""
    _setup(gcp_base_url, gcp_admin)
    url = f"{gcp_base_url}{SVCS}/app"
    st, _, body = raw_request("DELETE", url + "?etag=%22stale%22")
    assert (st, body["error"]["status"]) == (409, "ABORTED")
    st, _, body = raw_request("PATCH", url, {**BODY, "etag": '"stale"'})
    assert (st, body["error"]["status"]) == (409, "ABORTED")
    gcp_admin.configure(stale_etag_status="FAILED_PRECONDITION")
    st, _, body = raw_request("DELETE", url + "?etag=%22stale%22")
    assert (st, body["error"]["status"]) == (400, "FAILED_PRECONDITION")
    st, _, body = raw_request("POST", url + ":setIamPolicy", {"policy": {"bindings": [], "etag": "BwAAAAAAAAE="}})
    assert (st, body["error"]["status"]) == (409, "ABORTED")
    assert body["error"]["message"] == (
        "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
    )


def test_bad_service_id(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A service ID with upper case / trailing hyphen / 50+ characters: 400 with Cloud Run's real text."""
    for bad in ("Hello", "trailing-", "a" * 50, "1abc"):
        st, _, body = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId={bad}", BODY)
        assert st == 400, bad
        assert body["error"]["message"].startswith("Violation in CreateServiceRequest.service_id: only lowercase")
        assert _violations(body["error"])[0]["field"] == "Violation in CreateServiceRequest.service_id"
    st, _, _ = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId={'a' * 49}", BODY)
    assert st == 200


def test_missing_template(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A create without template: 400 `required field not present`."""
    st, _, body = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=x", {"labels": {"a": "b"}})
    assert st == 400
    assert body["error"]["message"] == "Violation in CreateServiceRequest.service.template: required field not present."


def test_unknown_field_and_wrong_type(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Unknown JSON fields and wrong JSON types are rejected with ESF's 'Invalid JSON payload received.'"""
    body = {"template": {"containers": [{"image": "x"}], "foo": 1}}
    st, _, resp = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=x", body)
    err = resp["error"]
    assert (st, err["status"]) == (400, "INVALID_ARGUMENT")
    assert (
        err["message"]
        == "Invalid JSON payload received. Unknown name \"foo\" at 'service.template': Cannot find field."
    )
    assert _violations(err)[0]["field"] == "service.template"
    st, _, resp = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=x", {**BODY, "bogus": True})
    assert (
        resp["error"]["message"]
        == "Invalid JSON payload received. Unknown name \"bogus\" at 'service': Cannot find field."
    )
    st, _, resp = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=x", {**BODY, "iapEnabled": "yes"})
    assert st == 400
    assert resp["error"]["message"] == "Invalid value at 'service.iap_enabled' (TYPE_BOOL), \"yes\""
    st, _, resp = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=x", {**BODY, "ingress": "SIDEWAYS"})
    assert st == 400
    assert "service.ingress" in resp["error"]["message"]
    st, _, resp = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=x", b"{not json")
    assert st == 400
    assert resp["error"]["message"].startswith("Invalid JSON payload received.")


def test_output_only_fields_ignored_and_name_from_url(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Output-only fields in the body are ignored; the name comes from the URL, not the body."""
    gcp_admin.set_operation_delay(0)
    body = {**BODY, "name": "projects/x/locations/y/services/z", "uid": "mine", "generation": "42"}
    _st, _, op = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=named", body)
    svc = op["response"]
    assert svc["name"].endswith("/services/named")
    assert svc["uid"] != "mine"
    assert svc["generation"] == "1"


def test_quota_exhausted(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """With a write quota of 2/min the third write is 429 RESOURCE_EXHAUSTED with ErrorInfo
    RATE_LIMIT_EXCEEDED and the quota metadata; advancing the clock refills the bucket."""
    gcp_admin.set_operation_delay(0)
    gcp_admin.set_quota("run.googleapis.com", write=2, read=0)
    for i in range(2):
        assert raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=q{i}", BODY)[0] == 200
    st, hdrs, body = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=q2", BODY)
    err = body["error"]
    assert (st, err["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "Retry-After" not in hdrs
    info = _info(err)
    assert info["reason"] == "RATE_LIMIT_EXCEEDED"
    assert info["domain"] == "googleapis.com"
    meta = info["metadata"]
    assert meta["consumer"] == "projects/123456789012"
    assert meta["quota_limit_value"] == "2"
    assert meta["quota_location"] == "us-central1"
    assert meta["service"] == "run.googleapis.com"
    assert meta["quota_metric"] == "run.googleapis.com/write_regional"
    assert meta["quota_limit"] == "WritePerMinutePerProjectRegion"
    assert err["message"].startswith("Quota exceeded for quota metric 'Write requests'")
    # reads are a separate bucket (0 = unlimited)
    assert raw_request("GET", f"{gcp_base_url}{SVCS}/q0")[0] == 200
    # another region has its own bucket
    assert (
        raw_request("POST", f"{gcp_base_url}{SVCS.replace('us-central1', 'europe-west1')}?serviceId=q", BODY)[0] == 200
    )
    gcp_admin.advance_clock(31)
    assert raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=q3", BODY)[0] == 200
    gcp_admin.set_quota("run.googleapis.com", write=1, retry_after=7)
    raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=q4", BODY)
    st, hdrs, _ = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=q5", BODY)
    assert st == 429
    assert hdrs["Retry-After"] == "7"


def test_permission_denied(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """The permission model turns a caller without run.services.get into Google's 403 with ErrorInfo
    IAM_PERMISSION_DENIED; unknown projects are 403 too."""
    _setup(gcp_base_url, gcp_admin)
    gcp_admin.set_permissions("serviceAccount:op@demo-project.iam.gserviceaccount.com", allow=["run.services.list"])
    hdr = {"X-Emulator-Caller": "serviceAccount:op@demo-project.iam.gserviceaccount.com"}
    st, _, body = raw_request("GET", f"{gcp_base_url}{SVCS}/app", headers=hdr)
    err = body["error"]
    assert (st, err["status"]) == (403, "PERMISSION_DENIED")
    assert err["message"] == (
        "Permission 'run.services.get' denied on resource "
        "'projects/demo-project/locations/us-central1/services/app' (or resource may not exist)."
    )
    assert _info(err)["reason"] == "IAM_PERMISSION_DENIED"
    assert raw_request("GET", f"{gcp_base_url}{SVCS}", headers=hdr)[0] == 200
    gcp_admin.set_token("tok-1", "serviceAccount:op@demo-project.iam.gserviceaccount.com")
    assert raw_request("GET", f"{gcp_base_url}{SVCS}/app", headers={"Authorization": "Bearer tok-1"})[0] == 403
    st, _, body = raw_request("GET", f"{gcp_base_url}/v2/projects/ghost/locations/us-central1/services/app")
    assert st == 403
    assert "(or resource may not exist)" in body["error"]["message"]


def test_bad_member_and_limits(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Malformed members are 400; more than 1,500 principals is 400; a service account that does not exist
    is 400 `Service account X does not exist.`"""
    _setup(gcp_base_url, gcp_admin)
    url = f"{gcp_base_url}{SVCS}/app:setIamPolicy"
    for bad in ("alice@example.com", "user:not-an-email", "robot:x@y.com"):
        st, _, body = raw_request(
            "POST", url, {"policy": {"bindings": [{"role": "roles/run.invoker", "members": [bad]}]}}
        )
        assert (st, body["error"]["status"]) == (400, "INVALID_ARGUMENT"), bad
    many = [f"user:u{i}@example.com" for i in range(1501)]
    st, _, body = raw_request("POST", url, {"policy": {"bindings": [{"role": "roles/run.invoker", "members": many}]}})
    assert st == 400
    assert "1500" in body["error"]["message"]
    sa = "serviceAccount:does-not-exist@demo-project.iam.gserviceaccount.com"
    st, _, body = raw_request("POST", url, {"policy": {"bindings": [{"role": "roles/run.invoker", "members": [sa]}]}})
    assert st == 400
    assert (
        body["error"]["message"]
        == "Service account does-not-exist@demo-project.iam.gserviceaccount.com does not exist."
    )
    ok = [
        "allUsers",
        "domain:example.com",
        "group:devs@example.com",
        "deleted:user:bob@example.com?uid=123",
        "principal://iam.googleapis.com/locations/global/workforcePools/p/subject/s",
    ]
    st, _, body = raw_request("POST", url, {"policy": {"bindings": [{"role": "roles/run.invoker", "members": ok}]}})
    assert st == 200, body


def test_injected_errors(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Error injection by method pattern and count; the rule stops after `count` firings."""
    _setup(gcp_base_url, gcp_admin)
    gcp_admin.inject_error("run.services.get", http=503, count=2)
    codes = [raw_request("GET", f"{gcp_base_url}{SVCS}/app")[0] for _ in range(3)]
    assert codes == [503, 503, 200]
    assert gcp_admin.counts()["run.services.get"] == 3
    assert [r["status"] for r in gcp_admin.requests("run.services.get")] == [503, 503, 200]


def test_service_disabled(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """An API configured as disabled for a project answers 403 with ErrorInfo SERVICE_DISABLED."""
    gcp_admin.configure(disabled_apis={"demo-project": ["iap.googleapis.com"]})
    url = f"{gcp_base_url}/v1/projects/123456789012/iap_web/cloud_run-us-central1/services/x:getIamPolicy"
    st, _, body = raw_request("POST", url, {})
    info = _info(body["error"])
    assert st == 403
    assert info["reason"] == "SERVICE_DISABLED"
    assert info["metadata"]["consumer"] == "projects/123456789012"
    assert "has not been used in project 123456789012 before or it is disabled" in body["error"]["message"]


def test_crm_permission_model(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A caller denied a project gets CRM's 403 'The caller does not have permission' for projects.get."""
    gcp_admin.set_permissions("user:eve@example.com", deny_projects=["demo-project"])
    hdr = {"X-Emulator-Caller": "user:eve@example.com"}
    st, _, body = raw_request("GET", f"{gcp_base_url}/v3/projects/demo-project", headers=hdr)
    assert st == 403
    assert body["error"]["message"] == "The caller does not have permission"
    assert raw_request("GET", f"{gcp_base_url}/v3/projects/test-project", headers=hdr)[0] == 200


def test_unknown_query_parameter(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A query parameter the discovery method does not declare is rejected like ESF does (a misspelt
    `updatemask` must not silently mean 'no mask'); both camelCase and snake_case spellings are accepted."""
    _setup(gcp_base_url, gcp_admin)
    st, _, body = raw_request("PATCH", f"{gcp_base_url}{SVCS}/app?updatemask=iapEnabled", {"iapEnabled": True})
    assert st == 400
    assert body["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "updatemask": Cannot bind query parameter. '
        "Field 'updatemask' could not be found in request message."
    )
    for mask in ("updateMask=iapEnabled", "update_mask=iap_enabled"):
        st, _, _ = raw_request("PATCH", f"{gcp_base_url}{SVCS}/app?{mask}&alt=json", {"iapEnabled": True})
        assert st == 200
