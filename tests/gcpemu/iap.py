"""IAP API v1 for Cloud Run services: IAM policy get/set/test and the IAP settings.

The resource is ``projects/{number}/iap_web/cloud_run-{region}/services/{service}``. A project ID is
accepted (configurable) and canonicalised to the number, as gcloud always sends the number.
``updateIapSettings`` follows Google's field-mask semantics: a path named in the mask and absent from the
body is cleared, ``reauthSettings`` is written only as a whole, ``clientSecret`` is kept as its SHA-256. Other
``iap_web`` resources (region or project level) keep a policy keyed by their canonical name.
"""

from __future__ import annotations

import copy
import hashlib
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


_MASK_PREFIXES = ("iapSettings.", "iap_settings.")
_ATOMIC = "accessSettings.reauthSettings"
_SECRETS = ("accessSettings.oauthSettings", "accessSettings.workforceIdentitySettings.oauth2")


def _mask_paths(mask: str) -> list[str]:
    """The mask's paths in lowerCamel without the ``iapSettings.`` request prefix; unknown paths answer 400."""
    paths = []
    for raw in mask.split(","):
        path = raw.strip()
        for prefix in _MASK_PREFIXES:
            path = path.removeprefix(prefix)
        path = ".".join(schema.camel(s) for s in path.split("."))
        msg: schema.Message | None = SETTINGS
        for seg in path.split("."):
            f = msg.fields.get(seg) if msg is not None else None
            if f is None or f.read_only:
                raise invalid(f"Invalid update mask path: {raw.strip()}.", "update_mask")
            msg = f.message
        if path.startswith(_ATOMIC + "."):
            raise invalid(
                "All IAP reauth settings must always be set together, using the field mask: "
                "iapSettings.accessSettings.reauthSettings.",
                "update_mask",
            )
        paths.append(path)
    return paths


def _check(settings: dict[str, Any]) -> None:
    """Google's own validation of a settings body beyond its schema."""
    access = settings.get("accessSettings") or {}
    if len(access.get("identitySources") or []) > 1:
        raise invalid("Only one identity source can be configured.", "iap_settings.access_settings.identity_sources")
    pools = (access.get("workforceIdentitySettings") or {}).get("workforcePools") or []
    if len(pools) > 1:
        raise invalid(
            "Only one workforce pool is accepted.",
            "iap_settings.access_settings.workforce_identity_settings.workforce_pools",
        )
    max_age = (access.get("reauthSettings") or {}).get("maxAge")
    if max_age is not None and not str(max_age).endswith("s"):
        raise invalid(f"Invalid duration: {max_age}.", "iap_settings.access_settings.reauth_settings.max_age")


def _hash_secrets(settings: dict[str, Any]) -> None:
    """``clientSecret`` is input only: Google keeps its SHA-256 (``clientSecretSha256``, hex) and never returns it."""
    for path in _SECRETS:
        node: Any = settings
        for seg in path.split("."):
            node = node.get(seg) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        secret = node.pop("clientSecret", None)
        if secret:
            node["clientSecretSha256"] = hashlib.sha256(str(secret).encode()).hexdigest()
        elif secret == "":
            node.pop("clientSecretSha256", None)


def _apply_mask(stored: dict[str, Any], body: dict[str, Any], paths: list[str]) -> None:
    for path in paths:
        segs = path.split(".")
        src: Any = body
        for s in segs:
            src = src.get(s) if isinstance(src, dict) else None
        dst = stored
        for s in segs[:-1]:
            dst = dst.setdefault(s, {})
        if segs[-1] == "clientSecret":
            dst.pop("clientSecretSha256", None)
        if src is None:
            dst.pop(segs[-1], None)
        else:
            dst[segs[-1]] = copy.deepcopy(src)


def _prune(node: dict[str, Any]) -> dict[str, Any]:
    """Empty messages and default values are not kept (Google omits them on output)."""
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            v = _prune(v)
        if v not in (None, False, "", [], {}):
            out[k] = v
    return out


async def update_settings(ctx: Ctx) -> dict[str, Any]:
    name, key = _resource(ctx)
    body = schema.validate(ctx.body or {}, SETTINGS, "iap_settings", strict=ctx.emu.config.reject_unknown_fields)
    k = key or (name, "", "")
    stored = copy.deepcopy(ctx.emu.world.iap_settings.get(k, {}))
    mask = ctx.query.get("updateMask", ctx.query.get("update_mask", ""))
    if mask:
        _apply_mask(stored, body, _mask_paths(mask))
    else:
        stored = {k2: v for k2, v in body.items() if k2 != "name"}
    _check(stored)
    _hash_secrets(stored)
    stored = _prune(stored)
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
