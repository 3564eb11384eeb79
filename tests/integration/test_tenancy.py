"""The tenancy policy end to end: every delegated power, adoption and the operator's own account.

Real control plane, real operator process (policy: conftest.TENANCY), emulator; no mocks. Proves that an
object asking for anything its namespace's rule does not allow is Stalled/PolicyDenied with the agreed
message before the operator makes any Google call about its service (so with zero writes), that what the
rule allows reaches Ready, that adoption takes an unowned service only where the rule names it or when the
same object abandoned it, and that the operator's own account is refused even by a rule allowing any account.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from integration.harness import (
    OPERATOR_ACCOUNT,
    OperatorProcess,
    apply,
    condition,
    create_service,
    get,
    manifest,
    wait_for,
)
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT, REGION = "test-project", "asia-northeast1"
RUNTIME = "run@test-project.iam.gserviceaccount.com"
LITERAL = {"name": "MODE", "value": "production"}
WRITE = re.compile(r"\.(create|patch|update|delete|setIamPolicy|updateSettings|generateServiceIdentity)$")


def stalled(kubectl: Runner, namespace: str, name: str) -> dict[str, Any]:
    """The Stalled condition, once the operator has written one for the object's current generation."""

    def written() -> dict[str, Any]:
        obj = get(kubectl, namespace, name)
        found = dict(condition(obj, "Stalled"))
        return found if found.get("observedGeneration") == obj["metadata"]["generation"] else {}

    result: dict[str, Any] = wait_for(written, timeout=60, what=f"{namespace}/{name} Stalled")
    return result


def calls_about(emu: AdminClient, since: int, service: str) -> list[dict[str, Any]]:
    """Every logged call since ``since`` that names ``service`` (path, query or body)."""
    return [r for r in emu.requests(since=since) if service in json.dumps([r["path"], r.get("query"), r.get("body")])]


def writes_about(emu: AdminClient, since: int, service: str) -> list[str]:
    return [r["method"] for r in calls_about(emu, since, service) if WRITE.search(r["method"])]


def with_spec(body: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {**body, "spec": {**body["spec"], **spec}}


def with_template(body: dict[str, Any], **template: Any) -> dict[str, Any]:
    return with_spec(body, template={**body["spec"]["template"], **template})


def tenant_cases(svc: str) -> dict[str, tuple[str, dict[str, Any], str]]:
    """name -> (namespace kind, manifest, the exact Stalled message). Each asks for one thing tenant-a (or the
    stricter tenant-b) does not allow and is otherwise within the rule."""
    a = with_spec(manifest(svc), projectID=PROJECT)
    b = with_template(a, serviceAccount=RUNTIME)
    other = "projects/other-project/secrets/db-password"
    env = [{"name": "DB", "valueSource": {"secretKeyRef": {"secret": other}}}]
    r = 'rule "tenant-a" '
    return {
        "project": ("a", with_spec(a, projectID="other-project"), r + 'does not allow project "other-project"'),
        "region": ("a", with_spec(a, region="us-central1"), r + 'does not allow region "us-central1"'),
        "service-name": ("a", with_spec(a, serviceName=f"x{svc}"), r + f'does not allow service name "x{svc}"'),
        "runtime-account": (
            "a",
            with_template(a, serviceAccount="admin@other-project.iam.gserviceaccount.com"),
            r + 'does not allow runtime service account "admin@other-project.iam.gserviceaccount.com"',
        ),
        "default-account": (
            "b",
            a,
            'rule "tenant-b" does not allow the project\'s default compute service account '
            "(set spec.template.serviceAccount)",
        ),
        "secret-project": (
            "a",
            with_template(a, containers=[{"image": a["spec"]["template"]["containers"][0]["image"], "env": env}]),
            r + 'does not allow secrets from project "other-project"',
        ),
        "image": (
            "a",
            with_template(a, containers=[{"image": "docker.io/library/nginx"}]),
            r + 'does not allow image "docker.io/library/nginx"',
        ),
        "accessor-kind": (
            "a",
            with_spec(a, iap={"accessors": [{"member": "domain:example.com"}]}),
            r + 'does not allow accessor "domain:example.com" (member kind "domain")',
        ),
        "accessor-domain": (
            "a",
            with_spec(a, iap={"accessors": [{"member": "user:eve@evil.example.org"}]}),
            r + 'does not allow accessor "user:eve@evil.example.org" (domain outside the allowed domains)',
        ),
        "iap-off": ("a", with_spec(a, iap={"enabled": False}), r + "does not allow turning IAP off"),
        "report": (
            "a",
            with_spec(a, iap={"publicInvokerBindings": "Report"}),
            r + "does not allow keeping public invoker bindings (publicInvokerBindings: Report)",
        ),
        "public-access": (
            "a",
            with_spec(a, invokerIamDisabled=True),
            r + "does not allow public access (invokerIamDisabled: true)",
        ),
        "literal-env": (
            "b",
            with_template(
                b,
                containers=[
                    {
                        "image": b["spec"]["template"]["containers"][0]["image"],
                        "name": "app",
                        "env": [{"name": "API_KEY", "value": "hunter2"}],
                    }
                ],
            ),
            'rule "tenant-b" allows only Secret Manager references in env (container "app" sets "API_KEY" literally)',
        ),
    }


def test_every_delegated_power_outside_the_rule_stalls_before_any_google_call(
    operator: OperatorProcess,
    kubectl: Runner,
    tenant_namespace: str,
    strict_namespace: str,
    emu: AdminClient,
    svc: str,
) -> None:
    """One object per delegated power, each asking for one thing its rule refuses: each is Stalled/PolicyDenied
    with the agreed message, and the emulator's log names none of their services (no read, no write)."""
    namespaces = {"a": tenant_namespace, "b": strict_namespace}
    since = emu.last_seq()
    cases = tenant_cases(svc)
    for index, (kind, body, _) in enumerate(cases.values()):
        name = f"{svc}-{index}"  # also the service's name, unless the case names one
        apply(
            kubectl,
            namespaces[kind],
            {**body, "metadata": {"name": name}, "spec": {"serviceName": name, **body["spec"]}},
        )
    seen = {}
    for index, (case, (kind, _, _)) in enumerate(cases.items()):
        found = stalled(kubectl, namespaces[kind], f"{svc}-{index}")
        seen[case] = (found.get("reason"), found.get("message"))
    assert seen == {case: ("PolicyDenied", message) for case, (_, _, message) in cases.items()}
    assert calls_about(emu, since, svc) == []


def test_what_the_rule_allows_reaches_ready(
    operator: OperatorProcess, kubectl: Runner, tenant_namespace: str, emu: AdminClient, svc: str
) -> None:
    """The same tenant, inside its rule (project, region, name, image, default account, accessor domain, a literal
    env value where the rule says envValues: Any)."""
    body = with_spec(manifest(svc), projectID=PROJECT, iap={"accessors": [{"member": "group:devs@example.com"}]})
    body = with_template(body, containers=[{**body["spec"]["template"]["containers"][0], "env": [LITERAL]}])
    apply(kubectl, tenant_namespace, body)
    kubectl("wait", "-n", tenant_namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")
    assert emu.service(PROJECT, REGION, svc) is not None


def test_public_access_only_where_a_rule_allows_it(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """invokerIamDisabled: true is refused in a test namespace (its open rule does not allow public access) and
    reconciled once the namespace carries the label that the tests-public rule selects."""
    since = emu.last_seq()
    apply(kubectl, namespace, with_spec(manifest(svc), invokerIamDisabled=True))
    found = stalled(kubectl, namespace, svc)
    assert found["message"] == 'rule "tests" does not allow public access (invokerIamDisabled: true)'
    assert calls_about(emu, since, svc) == []
    kubectl("label", "namespace", namespace, "iaprun.test/public-access=true")
    kubectl("annotate", "-n", namespace, f"iaprunservice/{svc}", "iaprun.test/nudge=1")  # a new event to re-judge
    kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")


def test_the_operators_own_account_is_refused_even_where_any_account_is_allowed(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """The open test rule allows serviceAccounts ["*"]; the operator's own account is still refused."""
    local, domain = OPERATOR_ACCOUNT.split("@")
    spelled = f"{local.upper()}@{domain}"  # IAM compares emails without case; the CRD wants a lower-case domain
    since = emu.last_seq()
    apply(kubectl, namespace, with_template(manifest(svc), serviceAccount=spelled))
    found = stalled(kubectl, namespace, svc)
    assert (found["reason"], found["message"]) == (
        "PolicyDenied",
        f'runtime service account "{spelled}" is the operator\'s own account and is never allowed',
    )
    assert calls_about(emu, since, svc) == []


def unowned(emulator_url: str, name: str) -> str:
    create_service(emulator_url, PROJECT, REGION, name, labels={"team": "finance"})
    return name


def test_adoption_only_of_the_names_the_rule_lists(
    operator: OperatorProcess, kubectl: Runner, tenant_namespace: str, emu: AdminClient, emulator_url: str
) -> None:
    """tenant-a may adopt svc-adoptable-*: such a service is taken over; any other unowned service is left
    untouched (PolicyDenied, zero writes), even though the tenant may create a service of that name."""
    suffix = uuid.uuid4().hex[:8]
    allowed, refused = unowned(emulator_url, f"svc-adoptable-{suffix}"), unowned(emulator_url, f"svc-plain-{suffix}")
    since = emu.last_seq()
    for name in (allowed, refused):
        apply(kubectl, tenant_namespace, with_spec(manifest(name), projectID=PROJECT, adoption="IfUnowned"))
    found = stalled(kubectl, tenant_namespace, refused)
    assert (found["reason"], found["message"]) == (
        "PolicyDenied",
        f'rule "tenant-a" does not allow adopting service "{refused}"',
    )
    kubectl("wait", "-n", tenant_namespace, f"iaprunservice/{allowed}", "--for=condition=Ready", "--timeout=60s")
    assert writes_about(emu, since, refused) == []
    assert (emu.service(PROJECT, REGION, refused) or {}).get("labels", {}).get("team") == "finance"
    assert "iaprun-owner" in (emu.service(PROJECT, REGION, allowed) or {}).get("labels", {})


def test_the_owner_that_abandoned_a_service_may_take_it_back_and_nobody_else(
    operator: OperatorProcess, kubectl: Runner, tenant_namespace: str, emu: AdminClient, svc: str
) -> None:
    """Abandon leaves iaprun.dev/abandoned-by; the same object (namespace and name) re-adopts without an adoption
    rule, another object of the same namespace is refused with zero writes."""
    body = with_spec(manifest(svc), projectID=PROJECT, deletionPolicy="Abandon", adoption="IfUnowned")
    apply(kubectl, tenant_namespace, body)
    kubectl("wait", "-n", tenant_namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")
    label = (emu.service(PROJECT, REGION, svc) or {})["labels"]["iaprun-owner"]
    kubectl("delete", "-n", tenant_namespace, f"iaprunservice/{svc}", "--timeout=60s")
    abandoned = emu.service(PROJECT, REGION, svc) or {}
    assert "iaprun-owner" not in abandoned.get("labels", {})
    assert abandoned["annotations"]["iaprun.dev/abandoned-by"] == label

    since = emu.last_seq()
    thief = f"{svc}-other"
    apply(kubectl, tenant_namespace, with_spec(body, serviceName=svc) | {"metadata": {"name": thief}})
    found = stalled(kubectl, tenant_namespace, thief)
    assert found["message"] == f'rule "tenant-a" does not allow adopting service "{svc}"'
    assert writes_about(emu, since, svc) == []
    kubectl("delete", "-n", tenant_namespace, f"iaprunservice/{thief}", "--timeout=60s")

    apply(kubectl, tenant_namespace, body)
    kubectl("wait", "-n", tenant_namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")
    taken = emu.service(PROJECT, REGION, svc) or {}
    assert taken["labels"]["iaprun-owner"] == label
    assert "iaprun.dev/abandoned-by" not in taken.get("annotations", {})


def test_start_up_says_what_is_enforced(operator: OperatorProcess) -> None:
    """One line per rule, naming it; the operator's own account is announced as never allowed."""
    messages = [
        json.loads(line).get("message", "")
        for line in operator.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    for rule in ("tests", "tests-public", "tenant-a", "tenant-b"):
        assert sum(m.startswith(f'tenancy rule "{rule}" selects') for m in messages) == 1, rule
    assert any(OPERATOR_ACCOUNT in m and "never a runtime identity" in m for m in messages)
