"""The emulator answers prerequisites, organisation policy and conditions as Google does (gcp-api.md §3, §10).

- API enablement is per consumer project: Cloud Run and IAP are checked in the resource's project, Resource
  Manager and Service Usage in the caller's own project (or the quota project the request names), before any
  permission check, with the 403 SERVICE_DISABLED envelope.
- Domain-restricted sharing refuses the whole setIamPolicy naming an outside member with 400 FAILED_PRECONDITION
  and a PreconditionFailure per member; members already in the policy are not re-judged.
- Every condition expression is parsed with a real CEL implementation; one that does not parse is refused with
  400 INVALID_ARGUMENT naming the field, and the policy is unchanged.
- Cloud Run's v1 IAM paths (what ``gcloud run services add-iam-policy-binding`` calls) serve the same policy as v2.
"""

from __future__ import annotations

from typing import Any

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

RUN_V2 = "/v2/projects/demo-project/locations/us-central1/services"
RUN_V1 = "/v1/projects/demo-project/locations/us-central1/services"
IAP = "/v1/projects/123456789012/iap_web/cloud_run-us-central1/services/app"
BODY = {"template": {"containers": [{"image": "gcr.io/demo/app"}]}}
ACCESSOR = "roles/iap.httpsResourceAccessor"


def _service(base: str, admin: AdminClient) -> None:
    admin.set_operation_delay(0)
    status, _, _ = raw_request("POST", f"{base}{RUN_V2}?serviceId=app", BODY)
    assert status == 200


def _detail(error: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [d for d in error.get("details", []) if d["@type"] == f"type.googleapis.com/google.rpc.{kind}"]
    assert found, error
    return dict(found[0])


def _set_iap(base: str, bindings: list[dict[str, Any]], etag: str = "") -> tuple[int, Any]:
    policy: dict[str, Any] = {"version": 3, "bindings": bindings, **({"etag": etag} if etag else {})}
    status, _, body = raw_request("POST", f"{base}{IAP}:setIamPolicy", {"policy": policy})
    return status, body


def test_resource_manager_is_checked_in_the_callers_project_not_the_target(
    gcp_base_url: str, gcp_admin: AdminClient
) -> None:
    """CRM disabled in the caller's project: projects.get of another project answers SERVICE_DISABLED naming the
    caller's project as consumer; the same API disabled only in the target project changes nothing."""
    gcp_admin.set_caller_project("anonymous", "other-project")
    gcp_admin.set_api_enabled("demo-project", "cloudresourcemanager.googleapis.com", False)
    status, _, _ = raw_request("GET", f"{gcp_base_url}/v3/projects/demo-project")
    assert status == 200
    gcp_admin.set_api_enabled("other-project", "cloudresourcemanager.googleapis.com", False)
    status, _, body = raw_request("GET", f"{gcp_base_url}/v3/projects/demo-project")
    info = _detail(body["error"], "ErrorInfo")
    assert (status, body["error"]["status"], info["reason"]) == (403, "PERMISSION_DENIED", "SERVICE_DISABLED")
    assert info["metadata"]["consumer"] == "projects/222222222222"
    assert info["metadata"]["service"] == "cloudresourcemanager.googleapis.com"
    assert body["error"]["message"].startswith(
        "Cloud Resource Manager API has not been used in project 222222222222 before or it is disabled."
    )
    # A quota project named by the request is the consumer instead.
    status, _, _ = raw_request(
        "GET", f"{gcp_base_url}/v3/projects/demo-project", headers={"X-Goog-User-Project": "test-project"}
    )
    assert status == 200


def test_disabled_api_answers_before_the_permission_check(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A caller without permission on a project where Cloud Run is disabled is told about the API first."""
    gcp_admin.set_permissions("anonymous", deny_projects=["demo-project"])
    gcp_admin.set_api_enabled("demo-project", "run.googleapis.com", False)
    status, _, body = raw_request("GET", f"{gcp_base_url}{RUN_V2}/app")
    assert status == 403
    assert _detail(body["error"], "ErrorInfo")["reason"] == "SERVICE_DISABLED"
    gcp_admin.set_api_enabled("demo-project", "run.googleapis.com", True)
    status, _, body = raw_request("GET", f"{gcp_base_url}{RUN_V2}/app")
    assert status == 403
    assert "SERVICE_DISABLED" not in str(body)


def test_domain_restricted_sharing_refuses_the_whole_write_naming_each_outside_member(
    gcp_base_url: str, gcp_admin: AdminClient
) -> None:
    """An outside user in a setIamPolicy: 400 FAILED_PRECONDITION with one violation per outside member and the
    policy unchanged; service accounts and permitted domains pass; members already present are not re-judged."""
    _service(gcp_base_url, gcp_admin)
    ok, body = _set_iap(gcp_base_url, [{"role": ACCESSOR, "members": ["user:old@partner.test"]}])
    assert ok == 200
    gcp_admin.restrict_member_domains("demo-project", ["example.com"])
    status, refused = _set_iap(
        gcp_base_url,
        [
            {
                "role": ACCESSOR,
                "members": ["user:a@example.com", "user:m@outside.test", "group:g@outside.test"],
            }
        ],
        body["etag"],
    )
    error = refused["error"]
    assert (status, error["status"]) == (400, "FAILED_PRECONDITION")
    assert "do not belong to a permitted customer" in error["message"]
    violations = _detail(error, "PreconditionFailure")["violations"]
    assert {v["type"] for v in violations} == {"constraints/iam.allowedPolicyMemberDomains"}
    assert [v["subject"] for v in violations] == [
        "orgpolicy:projects/demo-project?configvalue=m@outside.test",
        "orgpolicy:projects/demo-project?configvalue=g@outside.test",
    ]
    status, _, current = raw_request("POST", f"{gcp_base_url}{IAP}:getIamPolicy", {})
    assert current["bindings"][0]["members"] == ["user:old@partner.test"]
    kept = ["user:old@partner.test", "user:a@example.com"]
    status, _ = _set_iap(gcp_base_url, [{"role": ACCESSOR, "members": kept}], body["etag"])
    assert status == 200


def test_conditions_are_parsed_as_cel_and_unparseable_ones_refused(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """IAP's access-level form with an expiry is accepted; a broken expression is a 400 naming the field."""
    _service(gcp_base_url, gcp_admin)
    good = {
        "title": "iaprun-access",
        "expression": '"accessPolicies/1/accessLevels/corp" in request.auth.access_levels && '
        'request.time < timestamp("2030-01-01T00:00:00Z")',
    }
    status, _ = _set_iap(gcp_base_url, [{"role": ACCESSOR, "members": ["user:a@example.com"], "condition": good}])
    assert status == 200
    broken = {"title": "t", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z"'}
    status, body = _set_iap(gcp_base_url, [{"role": ACCESSOR, "members": ["user:b@example.com"], "condition": broken}])
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    fields = [v["field"] for v in _detail(body["error"], "BadRequest")["fieldViolations"]]
    assert fields == ["policy.bindings[0].condition.expression"]


def test_run_v1_iam_paths_serve_the_v2_policy(gcp_base_url: str, gcp_admin: AdminClient, discovery_client: Any) -> None:
    """A binding added through the run v1 discovery client (gcloud's path) is the v2 policy, and back."""
    _service(gcp_base_url, gcp_admin)
    v1 = discovery_client("run", "v1").projects().locations().services()
    resource = "projects/demo-project/locations/us-central1/services/app"
    policy = v1.getIamPolicy(resource=resource).execute()
    policy["bindings"] = [{"role": "roles/run.invoker", "members": ["user:a@example.com"]}]
    v1.setIamPolicy(resource=resource, body={"policy": policy}).execute()
    status, _, v2 = raw_request("GET", f"{gcp_base_url}{RUN_V2}/app:getIamPolicy")
    assert status == 200
    assert v2["bindings"] == [{"role": "roles/run.invoker", "members": ["user:a@example.com"]}]
    assert v1.getIamPolicy(resource=resource).execute()["etag"] == v2["etag"]
    assert [r["method"] for r in gcp_admin.requests("run.v1.services.setIamPolicy")] == ["run.v1.services.setIamPolicy"]
