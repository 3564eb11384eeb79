"""Cloud Resource Manager v1 and v3 ``projects.get`` (how the operator learns a project's number) and the
project IAM policy (``getIamPolicy``/``setIamPolicy``/``testIamPermissions``).

Known projects come from the config, each in an organisation or in none (``organizations``,
``project_organizations``); v1 ``projects.getAncestry`` and v3 ``organizations.get`` tell which, and the
organisation's ``displayName`` is its primary domain, as Google sets it.

Google answers 403 "The caller does not have permission" both for a
project that does not exist and for one the caller may not see; so does the emulator. The project policy is
inherited by the protected URL's IAP and invoker checks.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gcpemu import orgpolicy, schema
from gcpemu.errors import ApiError, invalid
from gcpemu.iam import IamRules, Policy, set_policy
from gcpemu.routing import Ctx, Route, route
from gcpemu.state import Project

API = "cloudresourcemanager.googleapis.com"
CREATE_TIME = "2024-01-15T10:00:00.000Z"


def no_permission(ref: str) -> ApiError:
    return ApiError(
        "PERMISSION_DENIED",
        "The caller does not have permission",
        reason="IAM_PERMISSION_DENIED",
        domain="cloudresourcemanager.googleapis.com",
        metadata={"permission": "resourcemanager.projects.get", "resource": f"projects/{ref}"},
    )


def _project(ctx: Ctx) -> Project:
    ref = ctx.params["project"]
    p = ctx.emu.world.resolve_project(ref)
    if p is None:
        raise no_permission(ref)
    return p


async def get_v3(ctx: Ctx) -> dict[str, Any]:
    p = _project(ctx)
    etag = 'W/"' + hashlib.sha1(p.id.encode()).hexdigest()[:16] + '"'
    org = ctx.emu.world.organization(p)
    return {
        "name": f"projects/{p.number}",
        **({"parent": f"organizations/{org}"} if org is not None else {}),
        "projectId": p.id,
        "state": "ACTIVE",
        "displayName": p.id,
        "createTime": CREATE_TIME,
        "updateTime": CREATE_TIME,
        "etag": etag,
    }


async def get_v1(ctx: Ctx) -> dict[str, Any]:
    p = _project(ctx)
    org = ctx.emu.world.organization(p)
    return {
        "projectNumber": p.number,
        "projectId": p.id,
        "lifecycleState": "ACTIVE",
        "name": p.id,
        "createTime": CREATE_TIME,
        **({"parent": {"type": "organization", "id": org}} if org is not None else {}),
    }


async def get_ancestry(ctx: Ctx) -> dict[str, Any]:
    """v1 ``projects.getAncestry``: the project, then its organisation when it has one."""
    p = _project(ctx)
    org = ctx.emu.world.organization(p)
    ancestors = [{"resourceId": {"type": "project", "id": p.id}}]
    if org is not None:
        ancestors.append({"resourceId": {"type": "organization", "id": org}})
    return {"ancestor": ancestors}


async def get_organization(ctx: Ctx) -> dict[str, Any]:
    """v3 ``organizations.get``; an unknown organisation answers 403 as Google does for one you cannot see."""
    org = ctx.params["organization"]
    domains = ctx.emu.config.organizations.get(org)
    if domains is None:
        raise ApiError(
            "PERMISSION_DENIED",
            "The caller does not have permission",
            reason="IAM_PERMISSION_DENIED",
            domain=API,
            metadata={"permission": "resourcemanager.organizations.get", "resource": f"organizations/{org}"},
        )
    return {
        "name": f"organizations/{org}",
        "displayName": domains[0] if domains else "",
        "directoryCustomerId": "C0" + hashlib.sha1(org.encode()).hexdigest()[:7],
        "state": "ACTIVE",
        "createTime": CREATE_TIME,
        "updateTime": CREATE_TIME,
        "etag": 'W/"' + hashlib.sha1(org.encode()).hexdigest()[:16] + '"',
    }


_V3 = schema.discovery("cloudresourcemanager.v3.json")
GET_IAM = _V3.message("GetIamPolicyRequest")
SET_IAM = _V3.message("SetIamPolicyRequest")
TEST_IAM = _V3.message("TestIamPermissionsRequest")


async def get_iam(ctx: Ctx) -> dict[str, Any]:
    p = _project(ctx)
    body = schema.validate(ctx.body or {}, GET_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    version = int((body.get("options") or {}).get("requestedPolicyVersion") or 0)
    return ctx.emu.world.project_policies.get(p.number, Policy()).view(version)


async def set_iam(ctx: Ctx) -> dict[str, Any]:
    p = _project(ctx)
    body = schema.validate(ctx.body or {}, SET_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    for b in (body.get("policy") or {}).get("bindings") or []:
        for m in b.get("members") or []:
            if m in ("allUsers", "allAuthenticatedUsers"):
                raise invalid(f"Policy members of type {m} are not allowed on a project.", "policy.bindings.members")
            if b.get("role") == "roles/owner" and m.startswith("user:"):
                raise invalid(
                    "Request contains an invalid argument: the owner role cannot be granted to a user through "
                    "setIamPolicy; send an invitation instead.",
                    "policy.bindings.role",
                )
    cfg = ctx.emu.config
    rules = IamRules(max_principals=cfg.max_principals, max_groups=cfg.max_groups, allow_all_users=False)
    cur = ctx.emu.world.project_policies.get(p.number, Policy())
    new = set_policy(cur, body, orgpolicy.rules_for(rules, cfg, p), ctx.emu.account_exists)
    ctx.emu.world.project_policies[p.number] = new
    return new.view(3)


async def test_iam(ctx: Ctx) -> dict[str, Any]:
    _project(ctx)
    body = schema.validate(ctx.body or {}, TEST_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    return ctx.emu.test_permissions(ctx, body.get("permissions") or [])


def _iam_routes(version: str) -> list[Route]:
    d = f"cloudresourcemanager.{version}.json:projects."
    base = f"/{version}/projects/{{project}}"
    prefix = "cloudresourcemanager." + ("v1." if version == "v1" else "")
    return [
        route(
            "POST",
            base + ":getIamPolicy",
            prefix + "projects.getIamPolicy",
            API,
            "read",
            "resourcemanager.projects.getIamPolicy",
            get_iam,
            d + "getIamPolicy",
        ),
        route(
            "POST",
            base + ":setIamPolicy",
            prefix + "projects.setIamPolicy",
            API,
            "write",
            "resourcemanager.projects.setIamPolicy",
            set_iam,
            d + "setIamPolicy",
        ),
        route(
            "POST",
            base + ":testIamPermissions",
            prefix + "projects.testIamPermissions",
            API,
            "read",
            None,
            test_iam,
            d + "testIamPermissions",
        ),
    ]


ROUTES: list[Route] = (
    _iam_routes("v1")
    + _iam_routes("v3")
    + [
        route(
            "GET",
            "/v3/projects/{project}",
            "cloudresourcemanager.projects.get",
            API,
            "read",
            "resourcemanager.projects.get",
            get_v3,
            "cloudresourcemanager.v3.json:projects.get",
        ),
        route(
            "POST",
            "/v1/projects/{project}:getAncestry",
            "cloudresourcemanager.v1.projects.getAncestry",
            API,
            "read",
            "resourcemanager.projects.get",
            get_ancestry,
            "cloudresourcemanager.v1.json:projects.getAncestry",
        ),
        route(
            "GET",
            "/v3/organizations/{organization}",
            "cloudresourcemanager.organizations.get",
            API,
            "read",
            "resourcemanager.organizations.get",
            get_organization,
            "cloudresourcemanager.v3.json:organizations.get",
        ),
        route(
            "GET",
            "/v1/projects/{project}",
            "cloudresourcemanager.v1.projects.get",
            API,
            "read",
            "resourcemanager.projects.get",
            get_v1,
            "cloudresourcemanager.v1.json:projects.get",
        ),
    ]
)
