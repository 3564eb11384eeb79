"""The chart's tenancy values, rendered without a cluster: one source for the operator's policy file and the
admission policy's params, globs that match as Python's fnmatchcase does, and contradictory values refused.

- The params keys (regular expressions the API server's CEL `matches()` evaluates) are checked against
  ``fnmatchcase`` for a table of globs and candidate values; the regexes only use syntax Python's ``re`` and
  RE2 read alike (quoted characters, ``.*``, ``.``, ``(?s:)``, anchors), so ``re`` stands in for RE2 here and
  tests/chart/test_admission_policy.py runs the same regexes on the real API server.
- The hardened multi-tenant example passes ``helm lint --strict`` and renders the admission objects.

Nothing is mocked: helm is the real binary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

import pytest

from chart.conftest import CHART, HelmFailedError, Manifest, find, grants, only

Render = Callable[..., list[Manifest]]
EXAMPLE = CHART / "examples" / "values-multi-tenant.yaml"
NOTHING = r"^[^\x00-\x{10FFFF}]$"


def _params(manifests: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = only(manifests, "ConfigMap")["data"]
    return data


def _rules(*rules: dict[str, Any], **extra: str) -> list[str]:
    args = ["--set-json", f"tenancy.rules={json.dumps(list(rules))}"]
    for key, value in extra.items():
        args += ["--set", f"{key}={value}"]
    return args


def _matches(regex: str, value: str) -> bool:
    """RE2's `\\x{10FFFF}` is not Python's spelling: the empty list's regex is known to match nothing."""
    return regex != NOTHING and re.search(regex, value) is not None


GLOB_CASES: list[tuple[list[str], list[str]]] = [
    (["team-a", "team-a-*"], ["team-a", "team-a-x", "team-ab", "xteam-a", "team-a-", "Team-a", "team-a\nx"]),
    (["a-*"], ["a-web", "xa-web", "a-", "a", "A-web", "b-a-web"]),
    (["a?c"], ["abc", "a.c", "ac", "abbc", "a\nc"]),
    (["*@team-a-prod.iam.gserviceaccount.com"], ["web@team-a-prod.iam.gserviceaccount.com", "web@team-a-prodXiam"]),
    (["registry.example/x.y/*"], ["registry.example/x.y/app:1", "registryXexample/x.y/app", "registry.example/x.y"]),
    (["a+b(c)|d^$\\e"], ["a+b(c)|d^$\\e", "ab(c)", "d"]),
    (["*"], ["", "anything", "with\nnewline"]),
    ([], ["", "x"]),
]


@pytest.mark.parametrize(("globs", "values"), GLOB_CASES, ids=[str(g) for g, _ in GLOB_CASES])
def test_glob_regexes_match_exactly_what_fnmatchcase_matches(
    render: Render, globs: list[str], values: list[str]
) -> None:
    """Each glob list becomes one anchored regex that accepts a value exactly when fnmatchcase accepts it with one
    of the globs (anchoring, quoting of regex metacharacters, `?`, case, newlines, the empty list)."""
    params = _params(render(*_rules({"name": "r", "namespaces": ["x"], "projects": globs})))
    for value in values:
        assert _matches(params["rule.0.projects"], value) == any(fnmatchcase(value, g) for g in globs), value


def test_domains_match_the_domain_and_its_subdomains_case_insensitively(render: Render) -> None:
    """accessorDomains, as the operator reads them: a listed domain (literally, not a glob) and its subdomains,
    lower-cased by the chart (the policy lower-cases the member's domain); `*` is any domain; the empty list
    allows none."""
    params = _params(
        render(*_rules({"name": "r", "namespaces": ["x"], "accessorDomains": ["Example.com", "x?y.test"]}))
    )
    regex = params["rule.0.accessorDomains"]
    for domain, allowed in [
        ("example.com", True),
        ("eng.example.com", True),
        ("badexample.com", False),
        ("example.com.evil", False),
        ("exampleXcom", False),
        ("x?y.test", True),
        ("xay.test", False),
    ]:
        assert _matches(regex, domain) == allowed, domain
    anything = _params(render(*_rules({"name": "r", "namespaces": ["x"], "accessorDomains": ["example.com", "*"]})))
    assert _matches(anything["rule.0.accessorDomains"], "evil.test")
    assert _params(render(*_rules({"name": "r", "namespaces": ["x"]})))["rule.0.accessorDomains"] == NOTHING


def test_service_accounts_compare_case_insensitively(render: Render) -> None:
    """Emails are case-insensitive: the chart lower-cases serviceAccounts globs (the policy lower-cases the
    runtime account before matching)."""
    rule = {"name": "r", "namespaces": ["x"], "serviceAccounts": ["Web-*@Team-A.iam.gserviceaccount.com"]}
    regex = _params(render(*_rules(rule)))["rule.0.serviceAccounts"]
    assert _matches(regex, "web-1@team-a.iam.gserviceaccount.com")


def test_policy_file_and_params_come_from_the_same_values(render: Render) -> None:
    """The operator's policy.json is the values as given; the params beside it in the same ConfigMap flatten the
    same rules (order, names, selectors, flags, the member-kind default)."""
    rules = [
        {"name": "a", "namespaces": ["team-a"], "projects": ["p-a"], "envValues": "SecretsOnly"},
        {
            "name": "b",
            "namespaceSelector": {"matchLabels": {"team": "b", "example.com/tier": ""}},
            "accessorMemberKinds": ["domain"],
            "allowPublicAccess": True,
        },
    ]
    manifests = render(*_rules(*rules, **{"tenancy.operatorServiceAccount": "op@ops-project.iam.gserviceaccount.com"}))
    data = _params(manifests)
    assert json.loads(data["policy.json"]) == {"singleTenant": False, "rules": rules}
    assert data["rules"] == "0,1"
    assert (data["rule.0.name"], data["rule.1.name"]) == ("a", "b")
    assert data["rule.0.namespaces"] == "^(?s:team-a)$"
    assert data["rule.0.labels"] == ""
    assert data["rule.1.namespaces"] == "^(?s:.*)$"
    assert data["rule.1.labels"] == "example.com/tier=,team=b"
    assert data["rule.0.accessorMemberKinds"] == "^(?s:user|group|serviceAccount)$"
    assert data["rule.1.accessorMemberKinds"] == "^(?s:domain)$"
    assert (data["rule.0.envSecretsOnly"], data["rule.1.envSecretsOnly"]) == ("true", "false")
    assert (data["rule.0.allowPublicAccess"], data["rule.1.allowPublicAccess"]) == ("false", "true")
    assert data["rule.1.projects"] == NOTHING
    assert data["operatorServiceAccount"] == "op@ops-project.iam.gserviceaccount.com"


def test_single_tenant_is_one_rule_that_still_refuses_public_access(render: Render) -> None:
    """singleTenant: the params hold one implicit rule allowing everything but public access."""
    data = _params(render("--set", "tenancy.singleTenant=true"))
    assert json.loads(data["policy.json"]) == {"singleTenant": True, "rules": []}
    assert data["rules"] == "0"
    assert data["rule.0.name"] == "singleTenant"
    assert data["rule.0.allowPublicAccess"] == "false"
    assert data["rule.0.allowIapDisabled"] == data["rule.0.allowDefaultServiceAccount"] == "true"
    assert data["rule.0.images"] == "^(?s:.*)$"


def test_single_tenant_rule_comes_first_and_rules_may_add_to_it(render: Render) -> None:
    """singleTenant with rules: the implicit rule first, then the listed ones (the operator's order)."""
    data = _params(render("--set", "tenancy.singleTenant=true", *_rules({"name": "public", "namespaces": ["web"]})))
    assert data["rules"] == "0,1"
    assert (data["rule.0.name"], data["rule.1.name"]) == ("singleTenant", "public")


def test_operator_account_comes_from_the_workload_identity_annotation(render: Render) -> None:
    """Without tenancy.operatorServiceAccount the Workload Identity annotation names the operator's account, for
    the operator (IAPRUN_OPERATOR_SERVICE_ACCOUNT) and for the admission policy alike."""
    email = "iap-run-operator@platform-ops.iam.gserviceaccount.com"
    manifests = render("--set", f"serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account={email}")
    assert _params(manifests)["operatorServiceAccount"] == email
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert {"name": "IAPRUN_OPERATOR_SERVICE_ACCOUNT", "value": email} in container["env"]


def test_admission_policy_objects_and_switch(render: Render) -> None:
    """Enabled (the default): a Deny binding whose params are the tenancy ConfigMap, refusing when the params are
    missing, judging every namespace; disabled: no policy, no binding, no params keys (the policy file stays)."""
    manifests = render()
    policy = only(manifests, "ValidatingAdmissionPolicy")
    binding = only(manifests, "ValidatingAdmissionPolicyBinding")
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["paramRef"] == {
        "name": "rel-iap-run-operator-tenancy",
        "namespace": "ops",
        "parameterNotFoundAction": "Deny",
    }
    assert "matchResources" not in binding["spec"]
    off = render("--set", "admissionPolicy.enabled=false")
    assert find(off, "ValidatingAdmissionPolicy") == find(off, "ValidatingAdmissionPolicyBinding") == []
    assert set(_params(off)) == {"policy.json"}


def test_watch_namespace_confines_the_binding(render: Render) -> None:
    """With watchNamespace the binding judges that namespace only (another release may own the others), on top
    of admissionPolicy.namespaceSelector."""
    binding = only(
        render(
            "--set",
            "watchNamespace=team-a",
            "--set-json",
            'admissionPolicy.namespaceSelector={"matchLabels":{"tier":"apps"}}',
        ),
        "ValidatingAdmissionPolicyBinding",
    )
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "team-a", "tier": "apps"}
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "tenancy.singleTenant=true", *_rules({"name": "singleTenant", "namespaces": ["a"]})],
            'two rules are named "singleTenant"',
        ),
        (_rules({"namespaces": ["a"]}), "tenancy.rules[0] has no name"),
        (
            _rules({"name": "a", "namespaces": ["a"]}, {"name": "a", "namespaces": ["b"]}),
            'two rules are named "a"',
        ),
        (_rules({"name": "a", "projects": ["p"]}), 'tenancy.rules[0] ("a") sets neither namespaces nor'),
        (
            _rules({"name": "a", "namespaces": ["a"], "namespaceSelector": {"matchLabels": {}}}),
            "namespaceSelector needs at least one matchLabels entry",
        ),
    ],
    ids=["single-tenant-name-taken", "unnamed-rule", "duplicate-names", "rule-selecting-nothing", "empty-selector"],
)
def test_contradictory_tenancy_values_fail_with_a_message(render: Render, args: list[str], message: str) -> None:
    """Values the two enforcers could read differently, or that cannot mean what was meant, fail the render (in
    the template, so even with the values schema skipped)."""
    with pytest.raises(HelmFailedError) as failed:
        render("--skip-schema-validation", *args)
    assert message in failed.value.stderr


@pytest.mark.parametrize(
    "field", ["namespaces", "projects", "images", "accessorDomains", "networks", "kmsKeys", "oauthClientSecrets"]
)
def test_character_classes_are_refused(render: Render, field: str) -> None:
    """`[...]` is the one fnmatch feature the chart does not translate: the values schema refuses it, and so does
    the template when the schema is skipped."""
    rule = {"name": "a", "namespaces": ["a"], field: ["team-[ab]"]}
    with pytest.raises(HelmFailedError) as failed:
        render(*_rules(rule))
    assert "team-[ab]" in failed.value.stderr or "does not match pattern" in failed.value.stderr
    with pytest.raises(HelmFailedError) as skipped:
        render("--skip-schema-validation", *_rules(rule))
    assert "uses a character class" in skipped.value.stderr


def test_multi_tenant_example_lints_and_renders(helm_offline: Callable[..., Any], render: Render) -> None:
    """The hardened example passes `helm lint --strict`, renders the policy, binding and params for its four
    rules, names the operator's account, and keeps the operator's policy file equal to its rules."""
    helm_offline("lint", "--strict", str(CHART), "-f", str(EXAMPLE))
    manifests = render(values=(EXAMPLE,))
    data = _params(manifests)
    assert [data[f"rule.{i}.name"] for i in data["rules"].split(",")] == [
        "team-a",
        "team-b",
        "shared-web",
        "shared-api",
    ]
    assert data["operatorServiceAccount"] == "iap-run-operator@platform-ops.iam.gserviceaccount.com"
    only(manifests, "ValidatingAdmissionPolicy")
    only(manifests, "ValidatingAdmissionPolicyBinding")
    assert all(data[f"rule.{i}.envSecretsOnly"] == "true" for i in data["rules"].split(","))
    assert json.loads(data["policy.json"])["singleTenant"] is False


def test_tenant_roles_grant_objects_and_nothing_else(render: Render) -> None:
    """What a tenant holding the aggregated view/edit roles gets from this chart: IapRunService objects (read and
    write) and their status (read); never status writes, the params ConfigMap, the admission policy or anything
    else (tests/chart/test_admission_policy.py asks the API server the same questions)."""
    roles = {m["metadata"]["name"]: m for m in find(render(), "ClusterRole")}
    view, edit = roles["rel-iap-run-operator-view"], roles["rel-iap-run-operator-edit"]
    assert grants(view["rules"]) == {
        ("iaprun.dev", resource, verb)
        for resource in ("iaprunservices", "iaprunservices/status")
        for verb in ("get", "list", "watch")
    }
    assert grants(edit["rules"]) == {
        ("iaprun.dev", "iaprunservices", verb) for verb in ("create", "update", "patch", "delete", "deletecollection")
    }
