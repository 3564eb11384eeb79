"""Domain-restricted sharing: the organisation policy ``constraints/iam.allowedPolicyMemberDomains``.

Under it Google refuses a whole setIamPolicy (Cloud Run, IAP, Resource Manager alike) that names a member outside
the permitted customers: 400 ``FAILED_PRECONDITION`` "One or more users named in the policy do not belong to a
permitted customer,  perhaps due to an organization policy." with a ``google.rpc.PreconditionFailure`` detail
holding one violation per member (type = the constraint, subject ``orgpolicy:projects/P?configvalue=EMAIL``,
description "User EMAIL is not in permitted organization."), as public reports show it (gcp-api.md §3, §10).

Google keys the policy by Cloud Identity customer ID; the emulator keys it by the customers' domains
(``EmulatorConfig.allowed_policy_member_domains``). ``allUsers`` and ``allAuthenticatedUsers`` belong to no
customer and are refused. Service accounts (``*.gserviceaccount.com``, service agents included) are let through:
they belong to Google Cloud projects, and the operator's IAP service agent must stay grantable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gcpemu.errors import ApiError

if TYPE_CHECKING:  # gcpemu.iam calls ``check``; these only type the arguments
    from gcpemu.config import EmulatorConfig
    from gcpemu.iam import IamRules
    from gcpemu.state import Project

CONSTRAINT = "constraints/iam.allowedPolicyMemberDomains"
PRECONDITION_FAILURE = "type.googleapis.com/google.rpc.PreconditionFailure"
MESSAGE = (
    "One or more users named in the policy do not belong to a permitted customer,  perhaps due to an "
    "organization policy."
)


def rules_for(rules: IamRules, config: EmulatorConfig, project: Project | None) -> IamRules:
    """``rules`` with the project's domain-restricted sharing policy, if it has one."""
    if project is None:
        return rules
    table = config.allowed_policy_member_domains
    domains = table.get(project.id, table.get(project.number))
    if domains is None:
        return rules
    return dataclasses.replace(rules, allowed_member_domains=tuple(d.lower() for d in domains), org_project=project.id)


def _outside(member: str, domains: tuple[str, ...]) -> bool:
    kind, _, value = member.partition(":")
    if member in ("allUsers", "allAuthenticatedUsers"):
        return True
    if kind == "serviceAccount" or value.endswith(".gserviceaccount.com"):
        return False
    if kind == "domain":
        return value.lower() not in domains
    if kind in ("user", "group"):
        return value.rsplit("@", 1)[-1].lower() not in domains
    return False  # principal:// and principalSet:// identities belong to workforce/workload pools


def check(bindings: Iterable[Mapping[str, Any]], rules: IamRules, *, present: set[str]) -> None:
    """Raise Google's refusal when ``bindings`` name a member the organisation policy does not permit.

    Members ``present`` in the policy already are not judged again: the constraint is not retroactive, so a
    grant made before it keeps working and the policy around it stays writable."""
    domains = rules.allowed_member_domains
    if domains is None:
        return
    refused: list[str] = []
    for binding in bindings:
        for member in binding.get("members") or ():
            if member not in present and _outside(str(member), domains) and member not in refused:
                refused.append(str(member))
    if not refused:
        return
    violations = []
    for member in refused:
        email = member.partition(":")[2] or member
        violations.append(
            {
                "type": CONSTRAINT,
                "subject": f"orgpolicy:projects/{rules.org_project}?configvalue={email}",
                "description": f"User {email} is not in permitted organization.",
            }
        )
    raise ApiError("FAILED_PRECONDITION", MESSAGE, details=[{"@type": PRECONDITION_FAILURE, "violations": violations}])
