"""The tenancy policy v2: deny by default, one rule must allow everything, verbatim deny messages, strict parsing.

Proves: an empty policy allows nothing; each delegated power (project, region, service name, runtime account,
default compute account, secret projects, images, accessor kinds and domains, IAP off, public invoker bindings,
public access, literal env, adoption) is refused with the agreed words unless the selecting rule allows it;
rules never combine; the operator's own account is refused whatever the rules say; the policy parser refuses
unknown keys and wrong types with the path of the mistake. Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iaprun_operator.core.references import LiteralEnv, References
from iaprun_operator.core.tenancy import (
    DEFAULT_MEMBER_KINDS,
    MEMBER_KINDS,
    EnvValues,
    Rule,
    TenancyPolicy,
    TenancyPolicyError,
    check,
    describe,
)

OPERATOR = "iaprun-operator@platform-prod.iam.gserviceaccount.com"
NS, LABELS = "team-a", {"team": "a"}

# The schema document's example rule, as the chart renders it to JSON.
TEAM_A: dict[str, Any] = {
    "name": "team-a",
    "namespaces": ["team-a", "team-a-*"],
    "namespaceSelector": {"matchLabels": {"team": "a"}},
    "projects": ["team-a-prod"],
    "regions": ["asia-northeast1"],
    "serviceNames": ["team-a-*"],
    "serviceAccounts": ["*@team-a-prod.iam.gserviceaccount.com"],
    "allowDefaultServiceAccount": False,
    "secretProjects": ["team-a-prod"],
    "images": ["asia-northeast1-docker.pkg.dev/team-a-prod/*"],
    "adoptServiceNames": [],
    "accessorMemberKinds": ["user", "group", "serviceAccount"],
    "accessorDomains": ["example.com"],
    "allowIapDisabled": False,
    "allowPublicInvokerBindings": False,
    "allowPublicAccess": False,
    "envValues": "Any",
}

# What an object of team-a asks for when it asks for nothing the rule refuses.
FINE = References(
    project="team-a-prod",
    region="asia-northeast1",
    service_name="team-a-web",
    service_account="web@team-a-prod.iam.gserviceaccount.com",
    secret_projects=("team-a-prod",),
    images=("asia-northeast1-docker.pkg.dev/team-a-prod/web/app:1",),
    accessors=("group:devs@example.com", "user:alice@eng.example.com"),
    iap_enabled=True,
    public_invoker_bindings=False,
    invoker_iam_disabled=False,
    literal_env=(),
)


def policy(*rules: dict[str, Any], single_tenant: bool = False) -> TenancyPolicy:
    return TenancyPolicy.from_dict({"singleTenant": single_tenant, "rules": list(rules)})


def judge(
    pol: TenancyPolicy,
    refs: References = FINE,
    *,
    namespace: str = NS,
    labels: dict[str, str] | None = None,
    adopting: bool = False,
) -> str | None:
    return check(
        pol,
        namespace=namespace,
        namespace_labels=LABELS if labels is None else labels,
        refs=refs,
        operator_account=OPERATOR,
        adopting=adopting,
    )


def asks(**changes: Any) -> References:
    return dataclasses.replace(FINE, **changes)


def test_the_schema_example_parses_into_every_field() -> None:
    rule = policy(TEAM_A).rules[0]
    assert rule == Rule(
        name="team-a",
        namespaces=("team-a", "team-a-*"),
        namespace_labels={"team": "a"},
        projects=("team-a-prod",),
        regions=("asia-northeast1",),
        service_names=("team-a-*",),
        service_accounts=("*@team-a-prod.iam.gserviceaccount.com",),
        secret_projects=("team-a-prod",),
        images=("asia-northeast1-docker.pkg.dev/team-a-prod/*",),
        accessor_domains=("example.com",),
    )
    assert judge(policy(TEAM_A)) is None


@pytest.mark.parametrize("raw", [None, {}, {"rules": []}, {"rules": None, "singleTenant": False}])
def test_an_empty_policy_allows_nothing(raw: Any) -> None:
    assert (
        judge(TenancyPolicy.from_dict(raw)) == 'namespace "team-a" may not use the operator: no tenancy rule selects it'
    )


@pytest.mark.parametrize(
    ("refs", "rule", "message"),
    [
        (asks(project="team-b-prod"), {}, 'rule "team-a" does not allow project "team-b-prod"'),
        (asks(region="us-central1"), {}, 'rule "team-a" does not allow region "us-central1"'),
        (asks(service_name="payroll"), {}, 'rule "team-a" does not allow service name "payroll"'),
        (
            asks(service_account="admin@team-b-prod.iam.gserviceaccount.com"),
            {},
            'rule "team-a" does not allow runtime service account "admin@team-b-prod.iam.gserviceaccount.com"',
        ),
        (
            asks(service_account=None),
            {},
            'rule "team-a" does not allow the project\'s default compute service account '
            "(set spec.template.serviceAccount)",
        ),
        (
            asks(secret_projects=("team-a-prod", "team-b-prod")),
            {},
            'rule "team-a" does not allow secrets from project "team-b-prod"',
        ),
        (asks(images=("docker.io/evil/miner",)), {}, 'rule "team-a" does not allow image "docker.io/evil/miner"'),
        (
            asks(accessors=("domain:example.com",)),
            {},
            'rule "team-a" does not allow accessor "domain:example.com" (member kind "domain")',
        ),
        (
            asks(accessors=("principalSet://iam.googleapis.com/locations/global/workforcePools/p/*",)),
            {},
            'rule "team-a" does not allow accessor '
            '"principalSet://iam.googleapis.com/locations/global/workforcePools/p/*" (member kind "principalSet")',
        ),
        (
            asks(accessors=("user:eve@evilexample.com",)),
            {},
            'rule "team-a" does not allow accessor "user:eve@evilexample.com" (domain outside the allowed domains)',
        ),
        (asks(iap_enabled=False), {}, 'rule "team-a" does not allow turning IAP off'),
        (
            asks(public_invoker_bindings=True),
            {},
            'rule "team-a" does not allow keeping public invoker bindings (publicInvokerBindings: Report)',
        ),
        (asks(invoker_iam_disabled=True), {}, 'rule "team-a" does not allow public access (invokerIamDisabled: true)'),
        (
            asks(literal_env=(LiteralEnv("app", "API_KEY"),)),
            {"envValues": "SecretsOnly"},
            'rule "team-a" allows only Secret Manager references in env (container "app" sets "API_KEY" literally)',
        ),
        (
            asks(networks=("projects/team-b-prod/global/networks/default",)),
            {},
            'rule "team-a" does not allow network "projects/team-b-prod/global/networks/default"',
        ),
        (asks(sql_instances=("b:r:db",)), {}, 'rule "team-a" does not allow Cloud SQL instance "b:r:db"'),
        (asks(buckets=("payroll",)), {}, 'rule "team-a" does not allow bucket "payroll"'),
        (asks(nfs_servers=("10.0.0.9",)), {}, 'rule "team-a" does not allow NFS server "10.0.0.9"'),
        (
            asks(kms_keys=("projects/k/locations/l/keyRings/r/cryptoKeys/c",)),
            {},
            'rule "team-a" does not allow KMS key "projects/k/locations/l/keyRings/r/cryptoKeys/c"',
        ),
        (
            asks(binary_authorization_policies=("projects/p/platforms/cloudRun/lax",)),
            {},
            'rule "team-a" does not allow Binary Authorization policy "projects/p/platforms/cloudRun/lax"',
        ),
        (
            asks(binary_authorization_breakglass=True),
            {},
            'rule "team-a" does not allow bypassing Binary Authorization (binaryAuthorization.breakglassJustification)',
        ),
    ],
)
def test_each_delegated_power_is_refused_in_the_agreed_words(
    refs: References, rule: dict[str, Any], message: str
) -> None:
    assert judge(policy({**TEAM_A, **rule}), refs) == message


@pytest.mark.parametrize(
    ("refs", "rule"),
    [
        (asks(service_account=None), {"allowDefaultServiceAccount": True}),
        (asks(accessors=("domain:eng.example.com",)), {"accessorMemberKinds": ["domain"]}),
        (asks(accessors=("principal://iam.googleapis.com/x/subject/y",)), {"accessorMemberKinds": ["principal"]}),
        (asks(accessors=("user:anyone@anywhere.org",)), {"accessorDomains": ["*"]}),
        (asks(iap_enabled=False), {"allowIapDisabled": True}),
        (asks(public_invoker_bindings=True), {"allowPublicInvokerBindings": True}),
        (asks(invoker_iam_disabled=True), {"allowPublicAccess": True}),
        (asks(literal_env=(LiteralEnv("app", "MODE"),)), {"envValues": "Any"}),
        (asks(project=None, secret_projects=()), {}),  # admission: no project named; the operator always has one
        (asks(service_account="WEB@TEAM-A-PROD.iam.gserviceaccount.com"), {}),  # emails compare without case
        (
            asks(networks=("projects/team-a-prod/global/networks/default",)),
            {"networks": ["projects/team-a-prod/*"]},
        ),
        (asks(sql_instances=("team-a-prod:r:db",)), {"sqlInstances": ["team-a-prod:*"]}),
        (asks(buckets=("team-a-media",)), {"buckets": ["team-a-*"]}),
        (asks(nfs_servers=("10.0.0.2",)), {"nfsServers": ["10.0.0.*"]}),
        (asks(kms_keys=("projects/team-a-prod/k",)), {"kmsKeys": ["projects/team-a-prod/*"]}),
        (asks(binary_authorization_policies=("projects/x/p",)), {"binaryAuthorizationPolicies": ["*"]}),
        (asks(binary_authorization_breakglass=True), {"allowBinaryAuthorizationBreakglass": True}),
    ],
)
def test_what_a_rule_grants_explicitly_is_allowed(refs: References, rule: dict[str, Any]) -> None:
    assert judge(policy({**TEAM_A, **rule}), refs) is None


def test_the_first_refusal_of_each_rule_is_reported_and_rules_never_combine() -> None:
    """Rule one allows the project but not the image, rule two the image but not the project: both deny."""
    images = {**TEAM_A, "name": "images-only", "projects": ["team-b-prod"], "images": ["*"]}
    refs = asks(images=("docker.io/x/y",), region="us-central1", iap_enabled=False)
    assert judge(policy(TEAM_A, images), refs) == (
        'rule "team-a" does not allow region "us-central1"; rule "images-only" does not allow project "team-a-prod"'
    )
    assert judge(policy(TEAM_A, images), asks(images=("docker.io/x/y",))) == (
        'rule "team-a" does not allow image "docker.io/x/y"; rule "images-only" does not allow project "team-a-prod"'
    )


def test_a_rule_that_does_not_select_the_namespace_is_not_consulted() -> None:
    other = {**TEAM_A, "name": "team-b", "namespaces": ["team-b"], "namespaceSelector": None}
    assert judge(policy(other)) == 'namespace "team-a" may not use the operator: no tenancy rule selects it'
    assert judge(policy(TEAM_A), labels={"team": "b"}) is not None  # both selectors must match
    assert judge(policy({**TEAM_A, "namespaceSelector": None}), namespace="team-a-dev", labels={}) is None
    no_selector = {**TEAM_A, "namespaces": None, "namespaceSelector": None}
    assert "no tenancy rule selects it" in (judge(policy(no_selector)) or "")


@pytest.mark.parametrize("spelling", [OPERATOR, OPERATOR.upper()])
def test_the_operators_own_account_is_never_allowed(spelling: str) -> None:
    everything = {**TEAM_A, "serviceAccounts": ["*"]}
    expected = f'runtime service account "{spelling}" is the operator\'s own account and is never allowed'
    assert judge(policy(everything), asks(service_account=spelling)) == expected
    assert judge(policy(single_tenant=True), asks(service_account=spelling)) == expected


def test_a_runtime_identity_that_is_not_an_email_matches_no_pattern() -> None:
    """A numeric unique id could name any account, the operator's own included; "*" does not cover it."""
    everything = {**TEAM_A, "serviceAccounts": ["*"]}
    assert judge(policy(everything), asks(service_account="117023123456789012345")) == (
        'rule "team-a" does not allow runtime service account "117023123456789012345"'
    )


def test_single_tenant_allows_everything_but_public_access() -> None:
    anything = asks(
        project="p-1",
        service_account=None,
        images=("docker.io/x",),
        accessors=("domain:a.org", "principalSet://iam.googleapis.com/x"),
        iap_enabled=False,
        public_invoker_bindings=True,
        literal_env=(LiteralEnv("c", "V"),),
    )
    single = policy(single_tenant=True)
    assert judge(single, anything, namespace="anything", labels={}, adopting=True) is None
    assert judge(single, asks(invoker_iam_disabled=True)) == (
        'rule "singleTenant" does not allow public access (invokerIamDisabled: true)'
    )
    public = {"name": "public", "namespaces": ["team-a"], **{k: ["*"] for k in ("projects", "regions")}}
    public |= {"serviceNames": ["*"], "serviceAccounts": ["*"], "secretProjects": ["*"], "images": ["*"]}
    public |= {"accessorDomains": ["*"], "allowPublicAccess": True}
    assert judge(policy(public, single_tenant=True), asks(invoker_iam_disabled=True)) is None


def test_adoption_needs_a_matching_adopt_service_names() -> None:
    assert judge(policy(TEAM_A), adopting=True) == 'rule "team-a" does not allow adopting service "team-a-web"'
    assert judge(policy({**TEAM_A, "adoptServiceNames": ["team-a-*"]}), adopting=True) is None
    # Adoption comes last: any other refusal is reported first.
    assert judge(policy(TEAM_A), asks(iap_enabled=False), adopting=True) == (
        'rule "team-a" does not allow turning IAP off'
    )


def test_accessor_kinds_default_to_emails_and_an_empty_list_allows_none() -> None:
    assert policy({k: v for k, v in TEAM_A.items() if k != "accessorMemberKinds"}).rules[0].accessor_member_kinds == (
        DEFAULT_MEMBER_KINDS
    )
    none = policy({**TEAM_A, "accessorMemberKinds": []})
    assert judge(none) == 'rule "team-a" does not allow accessor "group:devs@example.com" (member kind "group")'
    assert judge(none, asks(accessors=())) is None
    no_domains = policy({**TEAM_A, "accessorDomains": []})
    assert "domain outside the allowed domains" in (judge(no_domains) or "")


# ------------------------------------------------------------------------------------------------ properties

patterns = st.lists(st.sampled_from(["*", "team-a-*", "team-a-prod", "x"]), max_size=3)
flags = st.booleans()


@st.composite
def rules(draw: st.DrawFn, name: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": name, "namespaces": draw(st.sampled_from([["team-a"], ["*"], ["team-b"]]))}
    for key in ("projects", "regions", "serviceNames", "serviceAccounts", "secretProjects", "images"):
        rule[key] = draw(st.sampled_from([["*"], [], ["team-a-*"]]))
    rule["accessorMemberKinds"] = draw(st.lists(st.sampled_from(MEMBER_KINDS), unique=True))
    rule["accessorDomains"] = draw(st.sampled_from([["*"], [], ["example.com"]]))
    for key in ("allowDefaultServiceAccount", "allowIapDisabled", "allowPublicInvokerBindings", "allowPublicAccess"):
        rule[key] = draw(flags)
    rule["envValues"] = draw(st.sampled_from([e.value for e in EnvValues]))
    return rule


references = st.builds(
    References,
    project=st.sampled_from(["team-a-prod", "team-b-prod"]),
    region=st.sampled_from(["asia-northeast1", "team-a-x"]),
    service_name=st.sampled_from(["team-a-web", "web"]),
    service_account=st.sampled_from([None, "a@team-a-prod.iam.gserviceaccount.com", OPERATOR]),
    secret_projects=st.lists(st.sampled_from(["team-a-prod", "other"]), max_size=2).map(tuple),
    images=st.lists(st.sampled_from(["team-a-img", "docker.io/x"]), min_size=1, max_size=2).map(tuple),
    accessors=st.lists(
        st.sampled_from(
            ["user:a@example.com", "domain:example.com", "principal://iam.googleapis.com/x", "user:b@x.org"]
        ),
        max_size=3,
    ).map(tuple),
    iap_enabled=flags,
    public_invoker_bindings=flags,
    invoker_iam_disabled=flags,
    literal_env=st.lists(st.builds(LiteralEnv, st.just("c"), st.just("V")), max_size=1).map(tuple),
)


@given(
    st.lists(st.integers(0, 1000), max_size=4, unique=True).flatmap(
        lambda ids: st.tuples(*(rules(f"r{i}") for i in ids))
    ),
    references,
    st.booleans(),
)
def test_allowed_exactly_when_one_selecting_rule_alone_allows_it(
    raw: tuple[dict[str, Any], ...], refs: References, adopting: bool
) -> None:
    """The policy's answer is the OR of each rule judged alone (never a mix), minus the operator's account."""
    pol = policy(*raw)
    alone = [judge(policy(rule), refs, adopting=adopting) is None for rule in raw]
    assert (judge(pol, refs, adopting=adopting) is None) == any(alone)
    if refs.service_account == OPERATOR:
        assert not any(alone)


@given(
    st.lists(st.integers(0, 1000), max_size=3, unique=True).flatmap(
        lambda ids: st.tuples(*(rules(f"r{i}") for i in ids))
    ),
    rules("extra"),
    references,
)
def test_adding_a_rule_never_takes_anything_away(
    raw: tuple[dict[str, Any], ...], extra: dict[str, Any], refs: References
) -> None:
    if judge(policy(*raw), refs) is None:
        assert judge(policy(*raw, extra), refs) is None


@given(references)
def test_a_rule_listing_nothing_allows_nothing(refs: References) -> None:
    """Deny by default inside a rule too: omitted lists allow nothing (only accessor kinds have a default)."""
    bare = policy({"name": "bare", "namespaces": ["*"]})
    assert judge(bare, refs) is not None
    assert judge(bare, dataclasses.replace(refs, project=None)) is not None  # every spec names an image


# ------------------------------------------------------------------------------------------------ strict parsing


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ([], "tenancy: expected an object, got a list"),
        ({"rule": []}, "tenancy: unknown key 'rule'"),
        ({"singleTenant": "yes"}, "tenancy.singleTenant: expected true or false, got a string"),
        ({"rules": {"name": "x"}}, "tenancy.rules: expected a list, got an object"),
        ({"rules": [{"namespaces": ["a"]}]}, "tenancy.rules[0].name: required"),
        ({"rules": [{**TEAM_A, "project": ["x"]}]}, "tenancy.rules[0]: unknown key 'project'"),
        ({"rules": [{**TEAM_A, "projects": "team-a-prod"}]}, '("team-a").projects: expected a list, got a string'),
        ({"rules": [{**TEAM_A, "images": [1]}]}, '("team-a").images[0]: expected a non-empty string, got a number'),
        ({"rules": [{**TEAM_A, "allowIapDisabled": "true"}]}, ".allowIapDisabled: expected true or false"),
        ({"rules": [{**TEAM_A, "envValues": "secretsOnly"}]}, ".envValues: 'secretsOnly' is not Any or SecretsOnly"),
        ({"rules": [{**TEAM_A, "accessorMemberKinds": ["users"]}]}, ".accessorMemberKinds: 'users' is not one of"),
        ({"rules": [{**TEAM_A, "namespaceSelector": {"matchLabels": {}}}]}, "name at least one label"),
        ({"rules": [{**TEAM_A, "namespaceSelector": {"matchExpressions": []}}]}, "unknown key 'matchExpressions'"),
        ({"rules": [{**TEAM_A, "namespaceSelector": {"matchLabels": {"on": True}}}]}, "matchLabels.on: expected a"),
        ({"rules": [TEAM_A, TEAM_A]}, 'the name "team-a" is used by more than one rule'),
        ({"singleTenant": True, "rules": [{**TEAM_A, "name": "singleTenant"}]}, '"singleTenant" is used by more'),
        ({"rules": [{"namespaces": ["*"], "projects": ["*"]}]}, "rules[0].name: required"),  # a v1 policy
    ],
)
def test_a_policy_with_a_mistake_is_refused_with_its_path(raw: Any, words: str) -> None:
    with pytest.raises(TenancyPolicyError) as refused:
        TenancyPolicy.from_dict(raw)
    assert words in str(refused.value)


def test_the_policy_round_trips_through_json() -> None:
    raw = {"singleTenant": False, "rules": [TEAM_A]}
    assert TenancyPolicy.from_dict(json.loads(json.dumps(raw))) == policy(TEAM_A)


# ------------------------------------------------------------------------------------------------ start-up summary


def test_start_up_says_what_is_enforced() -> None:
    lines = describe(policy(TEAM_A), OPERATOR)
    assert [w for w, _ in lines] == [False, False]
    rule_line = lines[0][1]
    assert rule_line.startswith('tenancy rule "team-a" selects namespaces [team-a, team-a-*] and namespace labels')
    assert "runtime service accounts [*@team-a-prod.iam.gserviceaccount.com]" in rule_line
    assert "public access: no" in rule_line
    assert OPERATOR in lines[1][1]
    empty = describe(TenancyPolicy(), None)
    assert empty[0] == (
        True,
        "tenancy policy is empty: nothing is allowed; every IapRunService is Stalled/PolicyDenied",
    )
    assert (True, empty[-1][1]) == empty[-1]
    assert "IAPRUN_OPERATOR_SERVICE_ACCOUNT" in empty[-1][1]
