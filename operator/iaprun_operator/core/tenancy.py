"""The platform's tenancy policy: what each namespace may make the operator do with its Google account.

The operator's account can act in every tenant project, as every runtime account any tenant uses; without a
policy covering every delegated power (``core.references``) it is a confused deputy. So the policy denies by
default: an empty policy allows nothing, a rule allows only what it lists, and an object is allowed only when
ONE rule selecting its namespace allows everything it asks for (rules never combine). The operator's own
account is never an allowed runtime identity, whatever the rules say. ``singleTenant: true`` is one implicit
rule allowing everything but public access, for an install with one team.

The policy is parsed strictly (an unknown key or a wrong type stops the operator at start-up with the path
of the mistake), and its deny messages are the ones the chart's ValidatingAdmissionPolicy gives
(docs/access-control.md), so a tenant reads the same words at ``kubectl apply`` and in status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from fnmatch import fnmatchcase
from typing import Any

from iaprun_operator.core.references import References


class TenancyPolicyError(ValueError):
    """The policy cannot be used as written; the message names the offending key."""


class EnvValues(Enum):
    ANY = "Any"
    SECRETS_ONLY = "SecretsOnly"


MEMBER_KINDS = ("user", "group", "serviceAccount", "domain", "principal", "principalSet")
DEFAULT_MEMBER_KINDS = ("user", "group", "serviceAccount")
_EMAIL_KINDS = frozenset({"user", "group", "serviceAccount"})


@dataclass(frozen=True)
class Rule:
    """One rule: the namespaces it selects and what their objects may use. Lists are globs; empty allows nothing."""

    name: str
    namespaces: tuple[str, ...] = ()
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    projects: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    service_names: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    allow_default_service_account: bool = False
    secret_projects: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    sql_instances: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    nfs_servers: tuple[str, ...] = ()
    kms_keys: tuple[str, ...] = ()
    binary_authorization_policies: tuple[str, ...] = ()
    adopt_service_names: tuple[str, ...] = ()
    accessor_member_kinds: tuple[str, ...] = DEFAULT_MEMBER_KINDS
    accessor_domains: tuple[str, ...] = ()
    allow_iap_disabled: bool = False
    allow_public_invoker_bindings: bool = False
    allow_public_access: bool = False
    allow_binary_authorization_breakglass: bool = False
    env_values: EnvValues = EnvValues.ANY
    oauth_client_secrets: tuple[str, ...] = ()
    """Secret Manager secrets (``projects/P/secrets/S`` globs) the operator may read for IAP's OAuth client."""

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Every selector the rule sets must match; a rule that sets none selects nothing."""
        if not self.namespaces and not self.namespace_labels:
            return False
        if self.namespaces and not _matches(namespace, self.namespaces):
            return False
        return all(labels.get(k) == v for k, v in self.namespace_labels.items())

    def refusal(self, refs: References, *, adopting: bool = False) -> str | None:
        """The first thing this rule does not allow (in the documented order), or None."""
        for reason in _reasons(self, refs, adopting):
            if reason is not None:
                return f'rule "{self.name}" {reason}'
        return None


SINGLE_TENANT_RULE = Rule(
    name="singleTenant",
    namespaces=("*",),
    projects=("*",),
    regions=("*",),
    service_names=("*",),
    service_accounts=("*",),
    allow_default_service_account=True,
    secret_projects=("*",),
    images=("*",),
    networks=("*",),
    sql_instances=("*",),
    buckets=("*",),
    nfs_servers=("*",),
    kms_keys=("*",),
    binary_authorization_policies=("*",),
    adopt_service_names=("*",),
    accessor_member_kinds=MEMBER_KINDS,
    accessor_domains=("*",),
    allow_iap_disabled=True,
    allow_public_invoker_bindings=True,
    oauth_client_secrets=("*",),
    allow_binary_authorization_breakglass=True,
)


@dataclass(frozen=True)
class TenancyPolicy:
    rules: tuple[Rule, ...] = ()
    single_tenant: bool = False

    @property
    def effective_rules(self) -> tuple[Rule, ...]:
        return ((SINGLE_TENANT_RULE,) if self.single_tenant else ()) + self.rules

    @classmethod
    def from_dict(cls, raw: Any) -> TenancyPolicy:
        """Parse the policy (the chart's ``tenancy`` value as JSON); ``TenancyPolicyError`` names any mistake."""
        if raw is None:
            return cls()
        top = _object(raw, "tenancy", {"singleTenant", "rules"})
        single_tenant = _bool(top, "singleTenant", "tenancy", default=False)
        rules = tuple(_rule(item, f"tenancy.rules[{i}]") for i, item in enumerate(_list(top, "rules", "tenancy")))
        names = [r.name for r in rules] + ([SINGLE_TENANT_RULE.name] if single_tenant else [])
        if duplicate := next((n for n in names if names.count(n) > 1), None):
            raise TenancyPolicyError(f'tenancy.rules: the name "{duplicate}" is used by more than one rule')
        return cls(rules=rules, single_tenant=single_tenant)


def _matches(value: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(value, p) for p in patterns)


def member_kind(member: str) -> str:
    """``user``, ``group``, ``serviceAccount``, ``domain``, ``principal`` or ``principalSet``."""
    if member.startswith("principalSet://"):
        return "principalSet"
    if member.startswith("principal://"):
        return "principal"
    return member.partition(":")[0]


def member_domain(member: str) -> str | None:
    """The domain a member belongs to, or None for principals that have no email domain."""
    kind, _, rest = member.partition(":")
    if kind in _EMAIL_KINDS and "@" in rest:
        return rest.rsplit("@", 1)[1].lower()
    if kind == "domain":
        return rest.lower()
    return None


def _domain_allowed(member: str, domains: Sequence[str]) -> bool:
    """Members with a domain must be inside an allowed one (subdomains included); pool principals have none."""
    if member_kind(member) not in _EMAIL_KINDS | {"domain"}:
        return True
    domain = member_domain(member)
    return domain is not None and any(d == "*" or domain == d or domain.endswith("." + d) for d in domains)


def _account_allowed(account: str, patterns: Sequence[str]) -> bool:
    # Only an email names an account unambiguously; a unique id could name any account, the operator's too.
    return "@" in account and _matches(account.lower(), patterns)


def _reasons(rule: Rule, refs: References, adopting: bool) -> Iterator[str | None]:
    """Each check in the documented order, lazily: None when it passes, else what is refused."""
    if refs.project is not None and not _matches(refs.project, rule.projects):
        yield f'does not allow project "{refs.project}"'
    if not _matches(refs.region, rule.regions):
        yield f'does not allow region "{refs.region}"'
    if not _matches(refs.service_name, rule.service_names):
        yield f'does not allow service name "{refs.service_name}"'
    if refs.service_account is not None and not _account_allowed(refs.service_account, rule.service_accounts):
        yield f'does not allow runtime service account "{refs.service_account}"'
    if refs.service_account is None and not rule.allow_default_service_account:
        yield "does not allow the project's default compute service account (set spec.template.serviceAccount)"
    yield _first(refs.secret_projects, lambda p: not _matches(p, rule.secret_projects), 'secrets from project "{}"')
    yield _first(refs.images, lambda i: not _matches(i, rule.images), 'image "{}"')
    for values, allowed, what in _resource_checks(rule, refs):
        yield _first(values, lambda v, allowed=allowed: not _matches(v, allowed), what)  # type: ignore[misc]
    if refs.binary_authorization_breakglass and not rule.allow_binary_authorization_breakglass:
        yield "does not allow bypassing Binary Authorization (binaryAuthorization.breakglassJustification)"
    for member in refs.accessors:
        if member_kind(member) not in rule.accessor_member_kinds:
            yield f'does not allow accessor "{member}" (member kind "{member_kind(member)}")'
    for member in refs.accessors:
        if not _domain_allowed(member, rule.accessor_domains):
            yield f'does not allow accessor "{member}" (domain outside the allowed domains)'
    if not refs.iap_enabled and not rule.allow_iap_disabled:
        yield "does not allow turning IAP off"
    if refs.public_invoker_bindings and not rule.allow_public_invoker_bindings:
        yield "does not allow keeping public invoker bindings (publicInvokerBindings: Report)"
    if refs.invoker_iam_disabled and not rule.allow_public_access:
        yield "does not allow public access (invokerIamDisabled: true)"
    if rule.env_values is EnvValues.SECRETS_ONLY and refs.literal_env:
        literal = refs.literal_env[0]
        yield (
            f'allows only Secret Manager references in env (container "{literal.container}" sets '
            f'"{literal.name}" literally)'
        )
    yield _first(
        refs.oauth_client_secrets,
        lambda s: not _matches(s, rule.oauth_client_secrets),
        'the operator reading OAuth client secret "{}"',
    )
    if adopting and not _matches(refs.service_name, rule.adopt_service_names):
        yield f'does not allow adopting service "{refs.service_name}"'


def _resource_checks(rule: Rule, refs: References) -> tuple[tuple[Sequence[str], Sequence[str], str], ...]:
    """The Google resources a revision reaches beyond secrets and images, in the documented order."""
    return (
        (refs.networks, rule.networks, 'network "{}"'),
        (refs.sql_instances, rule.sql_instances, 'Cloud SQL instance "{}"'),
        (refs.buckets, rule.buckets, 'bucket "{}"'),
        (refs.nfs_servers, rule.nfs_servers, 'NFS server "{}"'),
        (refs.kms_keys, rule.kms_keys, 'KMS key "{}"'),
        (refs.binary_authorization_policies, rule.binary_authorization_policies, 'Binary Authorization policy "{}"'),
    )


def _first(values: Sequence[str], refused: Callable[[str], bool], what: str) -> str | None:
    bad = next((v for v in values if refused(v)), None)
    return None if bad is None else f"does not allow {what.format(bad)}"


def check(
    policy: TenancyPolicy,
    *,
    namespace: str,
    namespace_labels: Mapping[str, str],
    refs: References,
    operator_account: str | None,
    adopting: bool = False,
) -> str | None:
    """None when one rule selecting the namespace allows everything ``refs`` asks for, else why not.

    ``adopting``: the object is about to take over an unowned service, which the rule must allow too.
    """
    selecting = [r for r in policy.effective_rules if r.selects(namespace, namespace_labels)]
    if not selecting:
        return f'namespace "{namespace}" may not use the operator: no tenancy rule selects it'
    account = refs.service_account
    if account and operator_account and account.lower() == operator_account.lower():
        return f'runtime service account "{account}" is the operator\'s own account and is never allowed'
    reasons: list[str] = []
    for rule in selecting:
        refused = rule.refusal(refs, adopting=adopting)
        if refused is None:
            return None
        reasons.append(refused)
    return "; ".join(reasons)


# ------------------------------------------------------------------------------------------------ start-up summary


def _listed(values: Sequence[str]) -> str:
    return "[" + ", ".join(values) + "]" if values else "nothing"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def describe_rule(rule: Rule) -> str:
    """One line saying what a rule selects and allows (policy only, never a spec value)."""
    selectors = []
    if rule.namespaces:
        selectors.append(f"namespaces {_listed(rule.namespaces)}")
    if rule.namespace_labels:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(rule.namespace_labels.items()))
        selectors.append(f"namespace labels {{{labels}}}")
    selected = " and ".join(selectors) or "no namespace (it sets no selector)"
    return (
        f'tenancy rule "{rule.name}" selects {selected}; allows projects {_listed(rule.projects)}, '
        f"regions {_listed(rule.regions)}, service names {_listed(rule.service_names)}, "
        f"runtime service accounts {_listed(rule.service_accounts)}, "
        f"the default compute service account: {_yes(rule.allow_default_service_account)}, "
        f"secrets from projects {_listed(rule.secret_projects)}, images {_listed(rule.images)}, "
        f"networks {_listed(rule.networks)}, Cloud SQL instances {_listed(rule.sql_instances)}, "
        f"buckets {_listed(rule.buckets)}, NFS servers {_listed(rule.nfs_servers)}, "
        f"KMS keys {_listed(rule.kms_keys)}, "
        f"Binary Authorization policies {_listed(rule.binary_authorization_policies)}, "
        f"Binary Authorization breakglass: {_yes(rule.allow_binary_authorization_breakglass)}, "
        f"adopting services {_listed(rule.adopt_service_names)}, "
        f"accessor kinds {_listed(rule.accessor_member_kinds)} in domains {_listed(rule.accessor_domains)}, "
        f"IAP off: {_yes(rule.allow_iap_disabled)}, "
        f"public invoker bindings kept: {_yes(rule.allow_public_invoker_bindings)}, "
        f"public access: {_yes(rule.allow_public_access)}, env values: {rule.env_values.value}, "
        f"OAuth client secrets {_listed(rule.oauth_client_secrets)}"
    )


def describe(policy: TenancyPolicy, operator_account: str | None) -> list[tuple[bool, str]]:
    """What the operator enforces, as (is_warning, line) pairs for its start-up log."""
    lines: list[tuple[bool, str]] = []
    if not policy.effective_rules:
        lines.append((True, "tenancy policy is empty: nothing is allowed; every IapRunService is Stalled/PolicyDenied"))
    if policy.single_tenant:
        lines.append((False, "tenancy: singleTenant is on (one implicit rule, every namespace)"))
    lines += [(False, describe_rule(rule)) for rule in policy.effective_rules]
    if operator_account:
        lines.append((False, f"tenancy: the operator's own account {operator_account} is never a runtime identity"))
        if operator_account.lower().endswith("-compute@developer.gserviceaccount.com"):
            lines.append(
                (
                    True,
                    "the operator runs as a default compute service account: a rule with "
                    "allowDefaultServiceAccount lets tenants run revisions as it in its own project",
                )
            )
    else:
        lines.append(
            (
                True,
                "the operator's own Google account is unknown (set IAPRUN_OPERATOR_SERVICE_ACCOUNT): "
                "only the rules keep tenants from running revisions as it",
            )
        )
    return lines


# ------------------------------------------------------------------------------------------------ strict parsing

_LISTS = {
    "namespaces": "namespaces",
    "projects": "projects",
    "regions": "regions",
    "serviceNames": "service_names",
    "serviceAccounts": "service_accounts",
    "secretProjects": "secret_projects",
    "images": "images",
    "networks": "networks",
    "sqlInstances": "sql_instances",
    "buckets": "buckets",
    "nfsServers": "nfs_servers",
    "kmsKeys": "kms_keys",
    "binaryAuthorizationPolicies": "binary_authorization_policies",
    "adoptServiceNames": "adopt_service_names",
    "accessorDomains": "accessor_domains",
    "oauthClientSecrets": "oauth_client_secrets",
}
_FLAGS = {
    "allowDefaultServiceAccount": "allow_default_service_account",
    "allowIapDisabled": "allow_iap_disabled",
    "allowPublicInvokerBindings": "allow_public_invoker_bindings",
    "allowPublicAccess": "allow_public_access",
    "allowBinaryAuthorizationBreakglass": "allow_binary_authorization_breakglass",
}
_RULE_KEYS = {"name", "namespaceSelector", "accessorMemberKinds", "envValues", *_LISTS, *_FLAGS}
_LOWERED = {"serviceAccounts", "accessorDomains"}  # emails and domains compare case-insensitively


_KINDS = {bool: "a boolean", str: "a string", list: "a list", dict: "an object", int: "a number", float: "a number"}


def _kind(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)


def _object(raw: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise TenancyPolicyError(f"{where}: expected an object, got {_kind(raw)}")
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise TenancyPolicyError(
            f"{where}: unknown key {', '.join(repr(k) for k in unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    return raw


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TenancyPolicyError(f"{where}.{key}: expected a list, got {_kind(value)}")
    return value


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _list(raw, key, where)
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise TenancyPolicyError(f"{where}.{key}[{index}]: expected a non-empty string, got {_kind(value)}")
    return tuple(v.lower() for v in values) if key in _LOWERED else tuple(values)


def _bool(raw: Mapping[str, Any], key: str, where: str, *, default: bool) -> bool:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise TenancyPolicyError(f"{where}.{key}: expected true or false, got {_kind(value)}")
    return value


def _labels(raw: Mapping[str, Any], where: str) -> dict[str, str]:
    selector = raw.get("namespaceSelector")
    if selector is None:
        return {}
    selector = _object(selector, f"{where}.namespaceSelector", {"matchLabels"})
    labels = selector.get("matchLabels")
    if not isinstance(labels, Mapping) or not labels:
        raise TenancyPolicyError(
            f'{where}.namespaceSelector.matchLabels: name at least one label (namespaces: ["*"] selects every '
            "namespace)"
        )
    for key, value in labels.items():
        if not isinstance(value, str):
            raise TenancyPolicyError(
                f"{where}.namespaceSelector.matchLabels.{key}: expected a string, got {_kind(value)}"
            )
    return {str(k): v for k, v in labels.items()}


def _rule(raw: Any, where: str) -> Rule:
    item = _object(raw, where, _RULE_KEYS)
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise TenancyPolicyError(f"{where}.name: required, a non-empty string (used in deny messages)")
    where = f'{where} ("{name}")'
    kinds = _strings(item, "accessorMemberKinds", where) if item.get("accessorMemberKinds") is not None else None
    for kind in kinds or ():
        if kind not in MEMBER_KINDS:
            raise TenancyPolicyError(f"{where}.accessorMemberKinds: {kind!r} is not one of {', '.join(MEMBER_KINDS)}")
    env = "Any" if item.get("envValues") is None else item["envValues"]
    if env not in [e.value for e in EnvValues]:
        raise TenancyPolicyError(f"{where}.envValues: {env!r} is not Any or SecretsOnly")
    return Rule(
        name=name,
        namespace_labels=_labels(item, where),
        accessor_member_kinds=DEFAULT_MEMBER_KINDS if kinds is None else kinds,
        env_values=EnvValues(env),
        **{attr: _strings(item, key, where) for key, attr in _LISTS.items()},  # type: ignore[arg-type]
        **{attr: _bool(item, key, where, default=False) for key, attr in _FLAGS.items()},  # type: ignore[arg-type]
    )
