"""Access control end to end: the IAP agent's invoker grant, accessors, expiry, modes, public exposure,
tenancy — judged at the emulator's protected URL (the way a person meets the service), not only by
reading policies back.

Real control plane, real operator process, emulator; no mocks. Each test states what it proves.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pytest

from gcpemu.admin import AdminClient
from integration.harness import OperatorProcess, apply, condition, get, manifest, wait_for, wait_ready
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
REGION = "asia-northeast1"
ACCESSOR = "roles/iap.httpsResourceAccessor"
INVOKER = "roles/run.invoker"


def visit(emulator_url: str, service_url: str, user: str | None) -> int:
    """GET the service's URL through the emulator as ``user`` (None: anonymous); the HTTP status."""
    host = urlparse(service_url).netloc
    request = urllib.request.Request(f"{emulator_url}/_run/{host}/", headers={"Accept": "application/json"})
    if user:
        request.add_header("X-Emulator-User", user)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def members(policy: dict[str, Any] | None, role: str) -> set[str]:
    return {m for b in (policy or {}).get("bindings", []) if b["role"] == role for m in b["members"]}


def policies(emu: AdminClient, project: str, svc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    state = emu.state()
    key = f"{state['projects'][project]}/{REGION}/{svc}"
    return state["run_policies"].get(key, {}), state["iap_policies"].get(key, {})


def test_fresh_project_agent_invoker_on_service_and_accessors_at_the_url(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str, svc: str
) -> None:
    """In a project where IAP was never used: the agent is created, holds run.invoker on this service only
    (not on the project), the accessor gets in, a non-accessor and an anonymous caller stay out."""
    project = "test-project"
    apply(
        kubectl, namespace, manifest(svc, projectID=project, iap={"accessors": [{"member": "user:alice@example.com"}]})
    )
    obj = wait_ready(kubectl, namespace, svc)
    agent = f"serviceAccount:{obj['status']['iap']['serviceAgent']}"
    assert re.fullmatch(r"serviceAccount:service-\d+@gcp-sa-iap\.iam\.gserviceaccount\.com", agent)
    assert emu.requests("serviceusage.services.generateServiceIdentity")
    run_policy, iap_policy = policies(emu, project, svc)
    assert members(run_policy, INVOKER) == {agent}
    project_policy = emu.state()["project_policies"].get(f"projects/{emu.state()['projects'][project]}", {})
    assert agent not in members(project_policy, INVOKER)
    assert members(iap_policy, ACCESSOR) == {"user:alice@example.com"}
    url = obj["status"]["url"]
    assert visit(emulator_url, url, "user:alice@example.com") == 200
    assert visit(emulator_url, url, "user:mallory@example.com") == 403
    assert visit(emulator_url, url, None) in (302, 401)


def test_removing_and_adding_accessors_changes_who_gets_in(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emulator_url: str, svc: str
) -> None:
    """Remove an accessor from the spec: they lose access at the URL; add one: they gain it."""
    body = manifest(svc, iap={"accessors": [{"member": "user:alice@example.com"}]})
    apply(kubectl, namespace, body)
    url = wait_ready(kubectl, namespace, svc)["status"]["url"]
    assert visit(emulator_url, url, "user:alice@example.com") == 200
    body["spec"]["iap"]["accessors"] = [{"member": "user:bob@example.com"}]
    apply(kubectl, namespace, body)
    wait_for(lambda: visit(emulator_url, url, "user:bob@example.com") == 200, timeout=30, what="bob let in")
    assert visit(emulator_url, url, "user:alice@example.com") == 403


def test_expiring_access_ends_at_expiry_and_the_binding_is_removed(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str, svc: str
) -> None:
    """An accessor with ``expires``: in before; out once the emulator's clock passes expiry (the IAM
    condition, no real wait); and the operator removes the binding when the expiry passes, with an Event."""
    expires = (datetime.now(UTC) + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    apply(
        kubectl, namespace, manifest(svc, iap={"accessors": [{"member": "user:temp@example.com", "expires": expires}]})
    )
    obj = wait_ready(kubectl, namespace, svc)
    url = obj["status"]["url"]
    assert obj["status"]["iap"]["nextExpiry"] == expires
    assert visit(emulator_url, url, "user:temp@example.com") == 200
    try:
        emu.advance_clock(3600)
        assert visit(emulator_url, url, "user:temp@example.com") == 403
    finally:
        emu.call("POST", "clock", {"reset": True})
    wait_for(
        lambda: not members(policies(emu, "demo-project", svc)[1], ACCESSOR),
        timeout=30,
        what="the expired binding removed",
    )
    events = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={svc}").stdout
    assert "AccessExpired" in events


def test_additive_keeps_foreign_members_authoritative_removes_them(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """Additive: a member granted out of band is kept and listed in foreignMembers; switching to
    Authoritative removes it and says so in an Event."""
    body = manifest(svc, iap={"accessors": [{"member": "user:alice@example.com"}], "accessorsPolicy": "Additive"})
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    emu.add_binding("demo-project", REGION, svc, ACCESSOR, "user:carol@example.com", kind="iap")
    wait_for(
        lambda: get(kubectl, namespace, svc)["status"]["iap"].get("foreignMembers") == ["user:carol@example.com"],
        timeout=30,
        what="carol reported as foreign",
    )
    assert members(policies(emu, "demo-project", svc)[1], ACCESSOR) == {
        "user:alice@example.com",
        "user:carol@example.com",
    }
    body["spec"]["iap"]["accessorsPolicy"] = "Authoritative"
    apply(kubectl, namespace, body)
    wait_for(
        lambda: members(policies(emu, "demo-project", svc)[1], ACCESSOR) == {"user:alice@example.com"},
        timeout=30,
        what="carol removed",
    )
    events = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={svc}").stdout
    assert "user:carol@example.com" in events


def test_concurrent_policy_change_is_not_lost(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """A concurrent writer makes setIamPolicy fail with ABORTED: the operator re-reads and re-applies, so
    both its change and the other writer's member survive (additive mode)."""
    body = manifest(svc, iap={"accessors": [{"member": "user:alice@example.com"}], "accessorsPolicy": "Additive"})
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    emu.add_binding("demo-project", REGION, svc, ACCESSOR, "user:other-writer@example.com", kind="iap")
    since = emu.last_seq()
    emu.inject_error(
        "iap.setIamPolicy",
        http=409,
        status="ABORTED",
        count=1,
        message="There were concurrent policy changes. Please retry the whole read-modify-write with "
        "exponential backoff.",
    )
    body["spec"]["iap"]["accessors"].append({"member": "user:bob@example.com"})
    apply(kubectl, namespace, body)
    wanted = {"user:alice@example.com", "user:bob@example.com", "user:other-writer@example.com"}
    wait_for(
        lambda: members(policies(emu, "demo-project", svc)[1], ACCESSOR) == wanted,
        timeout=30,
        what="all three members present",
    )
    sets = [r["status"] for r in emu.requests("iap.setIamPolicy", since=since)]
    assert sets[:2] == [409, 200]


def test_public_invoker_binding_is_removed_with_a_warning(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """allUsers granted run.invoker out of band on an IAP-protected service: removed within one drift
    pass, with a Warning Event."""
    body = manifest(svc)
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    emu.add_binding("demo-project", REGION, svc, INVOKER, "allUsers", kind="run")
    wait_for(
        lambda: "allUsers" not in members(policies(emu, "demo-project", svc)[0], INVOKER),
        timeout=30,
        what="allUsers removed",
    )
    events = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={svc}").stdout
    assert "PublicInvokerBinding" in events
    assert "Warning" in events


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"projectID": "other-project"}, "project"),
        ({"projectID": "test-project", "iap": {"accessors": [{"member": "user:x@evil.example.org"}]}}, "domains"),
    ],
)
def test_tenancy_denial_stalls_before_any_google_call(
    operator: OperatorProcess,
    kubectl: Runner,
    tenant_namespace: str,
    emu: AdminClient,
    svc: str,
    spec: dict[str, Any],
    words: str,
) -> None:
    """A tenant namespace may use only test-project and example.com accessors: anything else is
    Stalled/PolicyDenied and the emulator sees no call for it."""
    since = emu.last_seq()
    apply(kubectl, tenant_namespace, manifest(svc, **spec))
    stalled = wait_for(lambda: condition(get(kubectl, tenant_namespace, svc), "Stalled"), timeout=30, what="Stalled")
    assert stalled["reason"] == "PolicyDenied"
    assert words in stalled["message"]
    assert [r for r in emu.requests(since=since) if svc in r["path"] or svc in str(r.get("query"))] == []
