"""The protected URL: the emulator answers a service's run.app URL the way IAP and Cloud Run's invoker
check would, so tests can prove a service is really protected, not just configured."""

from __future__ import annotations

import datetime as dt

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

SVCS = "/v2/projects/demo-project/locations/us-central1/services"
RES = "/v2/projects/demo-project/locations/us-central1/services/app"
IAP = "/v1/projects/123456789012/iap_web/cloud_run-us-central1/services/app"
AGENT = "serviceAccount:service-123456789012@gcp-sa-iap.iam.gserviceaccount.com"
ACCESSOR = "roles/iap.httpsResourceAccessor"


def _deploy(base: str, admin: AdminClient, iap: bool = True) -> str:
    admin.set_operation_delay(0)
    body = {"template": {"containers": [{"image": "gcr.io/demo/app"}]}, "iapEnabled": iap}
    st, _, op = raw_request("POST", f"{base}{SVCS}?serviceId=app", body)
    assert st == 200
    return str(op["response"]["uri"]).removeprefix("https://")


def _get(base: str, host: str, user: str | None = None, accept: str = "application/json") -> tuple[int, str]:
    headers = {"Accept": accept}
    if user:
        headers["X-Emulator-User"] = user
    st, _hdrs, body = raw_request("GET", f"{base}/_run/{host}/hello?x=1", headers=headers)
    return st, body if isinstance(body, str) else str(body)


def _grant_agent(base: str, admin: AdminClient) -> None:
    admin.create_service_agent("demo-project")
    pol = {"policy": {"bindings": [{"role": "roles/run.invoker", "members": [AGENT]}]}}
    assert raw_request("POST", f"{base}{RES}:setIamPolicy", pol)[0] == 200


def _grant_accessor(base: str, until: str | None = None, member: str = "user:alice@example.com") -> None:
    binding: dict[str, object] = {"role": ACCESSOR, "members": [member]}
    version = 1
    if until:
        binding["condition"] = {"expression": f'request.time < timestamp("{until}")', "title": "temporary"}
        version = 3
    st, _, body = raw_request(
        "POST", f"{base}{IAP}:setIamPolicy", {"policy": {"version": version, "bindings": [binding]}}
    )
    assert st == 200, body


def test_iap_protected_url_decisions(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """anonymous -> sign-in (302 for browsers, 401 otherwise); non-accessor -> 403; accessor -> the app;
    accessor after the condition's expiry (clock advanced) -> 403; IAP agent without run.invoker -> 403."""
    host = _deploy(gcp_base_url, gcp_admin)
    _grant_agent(gcp_base_url, gcp_admin)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _grant_accessor(gcp_base_url, until=until)

    st, headers, _ = raw_request("GET", f"{gcp_base_url}/_run/{host}/", headers={"Accept": "text/html"})
    assert st == 302
    assert headers["Location"].startswith("https://accounts.google.com/")
    assert _get(gcp_base_url, host)[0] == 401

    st, body = _get(gcp_base_url, host, "user:mallory@example.com")
    assert st == 403
    assert "don't have access" in body

    st, body = _get(gcp_base_url, host, "user:alice@example.com")
    assert st == 200
    assert body.startswith("Hello from app revision app-00001-")

    gcp_admin.advance_clock(2 * 3600)
    assert _get(gcp_base_url, host, "user:alice@example.com")[0] == 403
    gcp_admin.set_clock(dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert _get(gcp_base_url, host, "user:alice@example.com")[0] == 200

    gcp_admin.remove_binding("demo-project", "us-central1", "app", "roles/run.invoker", AGENT)
    st, body = _get(gcp_base_url, host, "user:alice@example.com")
    assert st == 403
    assert "does not have permission" in body


def test_host_header_groups_domains(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """The URL is also reachable through its Host header (both URL forms); group: members resolve through
    the configured groups and domain: members by the user's email domain."""
    host = _deploy(gcp_base_url, gcp_admin)
    _grant_agent(gcp_base_url, gcp_admin)
    gcp_admin.configure(groups={"group:devs@example.com": ["user:bob@example.com"]})
    _grant_accessor(gcp_base_url, member="group:devs@example.com")
    st, _, body = raw_request(
        "GET", f"{gcp_base_url}/", headers={"Host": host, "X-Emulator-User": "user:bob@example.com"}
    )
    assert st == 200
    assert "Hello from app" in body
    deterministic = "app-123456789012.us-central1.run.app"
    st, _, _ = raw_request(
        "GET", f"{gcp_base_url}/", headers={"Host": deterministic, "X-Emulator-User": "user:carol@example.com"}
    )
    assert st == 403
    gcp_admin.add_binding("demo-project", "us-central1", "app", ACCESSOR, "domain:example.com", kind="iap")
    st, _, _ = raw_request(
        "GET", f"{gcp_base_url}/", headers={"Host": deterministic, "X-Emulator-User": "user:carol@example.com"}
    )
    assert st == 200


def test_without_iap_only_invokers(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """With IAP off only run.invoker holders get through (allUsers lets anyone in); anonymous -> 403; a
    service that never became ready answers 503."""
    host = _deploy(gcp_base_url, gcp_admin, iap=False)
    assert _get(gcp_base_url, host)[0] == 403
    gcp_admin.add_binding("demo-project", "us-central1", "app", "roles/run.invoker", "user:dave@example.com")
    assert _get(gcp_base_url, host, "user:dave@example.com")[0] == 200
    assert _get(gcp_base_url, host, "user:erin@example.com")[0] == 403
    gcp_admin.add_binding("demo-project", "us-central1", "app", "roles/run.invoker", "allUsers")
    assert _get(gcp_base_url, host)[0] == 200
    gcp_admin.set_operation_delay(30)
    st, _, _op = raw_request(
        "POST", f"{gcp_base_url}{SVCS}?serviceId=slow", {"template": {"containers": [{"image": "gcr.io/demo/app"}]}}
    )
    assert st == 200
    st, _, _ = raw_request("GET", f"{gcp_base_url}/", headers={"Host": "slow-123456789012.us-central1.run.app"})
    assert st == 503


def test_console_edit_turns_iap_off(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """An out-of-band edit (mutate_service) changes what the URL enforces and bumps generation/etag,
    without counting as an API call."""
    host = _deploy(gcp_base_url, gcp_admin)
    before = gcp_admin.counts()
    out = gcp_admin.mutate_service("demo-project", "us-central1", "app", {"iapEnabled": False})
    assert out["service"]["generation"] == "2"
    assert _get(gcp_base_url, host)[0] == 403  # now the invoker check alone decides
    after = {k: v for k, v in gcp_admin.counts().items() if k != "app.request"}
    assert after == before


def test_access_is_inherited(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """IAP access granted at region level (iap_web/cloud_run-{region}) or on the project's IAM policy covers
    the service, as IAP documents for project-level principals."""
    host = _deploy(gcp_base_url, gcp_admin)
    _grant_agent(gcp_base_url, gcp_admin)
    assert _get(gcp_base_url, host, "user:frank@example.com")[0] == 403
    region = "/v1/projects/123456789012/iap_web/cloud_run-us-central1"
    pol = {"policy": {"bindings": [{"role": ACCESSOR, "members": ["user:frank@example.com"]}]}}
    assert raw_request("POST", f"{gcp_base_url}{region}:setIamPolicy", pol)[0] == 200
    assert _get(gcp_base_url, host, "user:frank@example.com")[0] == 200
    gcp_admin.add_binding("demo-project", "", "", ACCESSOR, "user:gina@example.com", kind="project")
    assert _get(gcp_base_url, host, "user:gina@example.com")[0] == 200
