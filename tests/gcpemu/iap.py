"""IAP API v1 for Cloud Run services: IAM policy get/set/test and the (minimal) IAP settings.

The resource is ``projects/{number}/iap_web/cloud_run-{region}/services/{service}``. A project ID is
accepted (configurable) and canonicalised to the number, as gcloud always sends the number. Other
``iap_web`` resources (region or project level) keep a policy keyed by their canonical name.
"""

from __future__ import annotations

import copy
from typing import Any

from gcpemu import orgpolicy, schema
from gcpemu.errors import ApiError, invalid
from gcpemu.iam import IamRules, Policy, set_policy
from gcpemu.routing import Ctx, Route, route

API = "iap.googleapis.com"
_DISC = schema.discovery("iap.v1.json")
GET_IAM = _DISC.message("GetIamPolicyRequest")
SET_IAM = _DISC.message("SetIamPolicyRequest")
TEST_IAM = _DISC.message("TestIamPermissionsRequest")
SETTINGS = _DISC.message("IapSettings")


def _resource(ctx: Ctx) -> tuple[str, tuple[str, str, str] | None]:
    """Canonical resource name and, for a Cloud Run service, its (number, region, service) key."""
    project = ctx.project
    assert project is not None
    given = ctx.params["project"]
    if given != project.number and not ctx.emu.config.iap_accept_project_id:
        raise invalid(
            f"Invalid resource name 'projects/{given}/iap_web/...': the project must be given by number.",
            "resource",
        )
    rest = ctx.params.get("rest", "")
    region = ctx.params.get("region")
    service = ctx.params.get("service")
    if region and service:
        name = f"projects/{project.number}/iap_web/cloud_run-{region}/services/{service}"
        key = (project.number, region, service)
        if ctx.emu.config.iap_require_service and key not in ctx.emu.world.services:
            raise ApiError(
                "NOT_FOUND",
                f"Resource '{name}' was not found.",
                reason="NOT_FOUND",
                domain=API,
            )
        return name, key
    return f"projects/{project.number}/iap_web{rest}", None


def _rules(ctx: Ctx) -> IamRules:
    cfg = ctx.emu.config
    return IamRules(
        max_principals=cfg.max_principals,
        max_groups=cfg.max_groups,
        allow_conditions=True,
        allow_all_users=cfg.iap_allow_all_users,
    )


def _policy(ctx: Ctx, name: str, key: tuple[str, str, str] | None) -> Policy:
    w = ctx.emu.world
    if key is not None:
        return w.iap_policies.get(key, Policy())
    return w.iap_other_policies.get(name, Policy())


async def get_iam(ctx: Ctx) -> dict[str, Any]:
    name, key = _resource(ctx)
    body = schema.validate(ctx.body or {}, GET_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    version = int((body.get("options") or {}).get("requestedPolicyVersion") or 0)
    return _policy(ctx, name, key).view(version)


async def set_iam(ctx: Ctx) -> dict[str, Any]:
    name, key = _resource(ctx)
    body = schema.validate(ctx.body or {}, SET_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    rules = orgpolicy.rules_for(_rules(ctx), ctx.emu.config, ctx.project)
    new = set_policy(_policy(ctx, name, key), body, rules, ctx.emu.account_exists)
    if key is not None:
        ctx.emu.world.iap_policies[key] = new
    else:
        ctx.emu.world.iap_other_policies[name] = new
    return new.view(3)


async def test_iam(ctx: Ctx) -> dict[str, Any]:
    _resource(ctx)
    body = schema.validate(ctx.body or {}, TEST_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    return ctx.emu.test_permissions(ctx, body.get("permissions") or [])


async def get_settings(ctx: Ctx) -> dict[str, Any]:
    name, key = _resource(ctx)
    stored = ctx.emu.world.iap_settings.get(key or (name, "", ""), {})
    return schema.render({**stored, "name": name}, SETTINGS)


async def update_settings(ctx: Ctx) -> dict[str, Any]:
    name, key = _resource(ctx)
    body = schema.validate(ctx.body or {}, SETTINGS, "iap_settings", strict=ctx.emu.config.reject_unknown_fields)
    k = key or (name, "", "")
    stored = copy.deepcopy(ctx.emu.world.iap_settings.get(k, {}))
    mask = ctx.query.get("updateMask", ctx.query.get("update_mask", ""))
    if mask:
        for path in mask.split(","):
            segs = [schema.camel(s) for s in path.strip().split(".")]
            src: Any = body
            for s in segs:
                src = src.get(s) if isinstance(src, dict) else None
            dst = stored
            for s in segs[:-1]:
                dst = dst.setdefault(s, {})
            if src is None:
                dst.pop(segs[-1], None)
            else:
                dst[segs[-1]] = copy.deepcopy(src)
    else:
        stored = {k2: v for k2, v in body.items() if k2 != "name"}
    ctx.emu.world.iap_settings[k] = stored
    return schema.render({**stored, "name": name}, SETTINGS)


_SVC = "/v1/projects/{project}/iap_web/cloud_run-{region}/services/{service}"
_ANY = "/v1/projects/{project}/iap_web{rest+}"


_D = "iap.v1.json:v1."
_ROOT = "/v1/projects/{project}/iap_web"


def _routes(base: str) -> list[Route]:
    return [
        route(
            "POST",
            base + ":getIamPolicy",
            "iap.getIamPolicy",
            API,
            "read",
            "iap.webServices.getIamPolicy",
            get_iam,
            _D + "getIamPolicy",
        ),
        route(
            "POST",
            base + ":setIamPolicy",
            "iap.setIamPolicy",
            API,
            "write",
            "iap.webServices.setIamPolicy",
            set_iam,
            _D + "setIamPolicy",
        ),
        route(
            "POST",
            base + ":testIamPermissions",
            "iap.testIamPermissions",
            API,
            "read",
            None,
            test_iam,
            _D + "testIamPermissions",
        ),
        route(
            "GET",
            base + ":iapSettings",
            "iap.getIapSettings",
            API,
            "read",
            "iap.webServices.getSettings",
            get_settings,
            _D + "getIapSettings",
        ),
        route(
            "PATCH",
            base + ":iapSettings",
            "iap.updateIapSettings",
            API,
            "write",
            "iap.webServices.updateSettings",
            update_settings,
            _D + "updateIapSettings",
        ),
    ]


ROUTES: list[Route] = _routes(_SVC) + _routes(_ANY) + _routes(_ROOT)
