"""The platform admin's tenancy policy: which namespaces may use which projects, regions and accessors.

Checked before any Google call, so a tenant cannot make the operator act on a project it was not given.
No rules means no restriction (a single-team install). With rules, a request is allowed when one rule
selects the namespace and allows the project, the region and the domain of every accessor; a list that
a rule leaves out allows anything. Patterns are shell-style globs (``team-a-*``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any


@dataclass(frozen=True)
class Rule:
    namespaces: tuple[str, ...] = ()
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    projects: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    accessor_domains: tuple[str, ...] = ()

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.namespaces and not any(fnmatchcase(namespace, p) for p in self.namespaces):
            return False
        return all(labels.get(k) == v for k, v in self.namespace_labels.items())


@dataclass(frozen=True)
class TenancyPolicy:
    rules: tuple[Rule, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> TenancyPolicy:
        rules = []
        for item in (raw or {}).get("rules") or ():
            selector = item.get("namespaceSelector") or {}
            rules.append(
                Rule(
                    namespaces=tuple(item.get("namespaces") or ()),
                    namespace_labels=dict(selector.get("matchLabels") or {}),
                    projects=tuple(item.get("projects") or ()),
                    regions=tuple(item.get("regions") or ()),
                    accessor_domains=tuple(d.lower() for d in item.get("accessorDomains") or ()),
                )
            )
        return cls(rules=tuple(rules))


def member_domain(member: str) -> str | None:
    """The domain a member belongs to, or None for principals that have no email domain."""
    kind, _, rest = member.partition(":")
    if kind in {"user", "group", "serviceAccount"} and "@" in rest:
        return rest.rsplit("@", 1)[1].lower()
    if kind == "domain":
        return rest.lower()
    return None


def _allowed(value: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)


def check(
    policy: TenancyPolicy,
    *,
    namespace: str,
    namespace_labels: Mapping[str, str],
    project: str,
    region: str,
    members: Sequence[str],
) -> str | None:
    """None when allowed, else a message saying what the policy denies."""
    if not policy.rules:
        return None
    selecting = [r for r in policy.rules if r.selects(namespace, namespace_labels)]
    if not selecting:
        return f"namespace {namespace!r} may not use the operator (no tenancy rule selects it)"
    reasons: list[str] = []
    for rule in selecting:
        if not _allowed(project, rule.projects):
            reasons.append(f"project {project!r} is not allowed for namespace {namespace!r}")
            continue
        if not _allowed(region, rule.regions):
            reasons.append(f"region {region!r} is not allowed for namespace {namespace!r}")
            continue
        bad = [m for m in members if not _domain_allowed(m, rule.accessor_domains)]
        if bad:
            reasons.append(f"accessors outside the allowed domains {list(rule.accessor_domains)}: {bad}")
            continue
        return None
    return "; ".join(dict.fromkeys(reasons))


def _domain_allowed(member: str, domains: Sequence[str]) -> bool:
    if not domains:
        return True
    domain = member_domain(member)
    return domain is not None and any(domain == d or domain.endswith("." + d) for d in domains)
