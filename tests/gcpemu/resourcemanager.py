"""Cloud Resource Manager v1 and v3 ``projects.get``: how the operator learns a project's number.

Known projects come from the config. Google answers 403 "The caller does not have permission" both for a
project that does not exist and for one the caller may not see; so does the emulator.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gcpemu.errors import ApiError
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
    return {
        "name": f"projects/{p.number}",
        "parent": "organizations/000000000000",
        "projectId": p.id,
        "state": "ACTIVE",
        "displayName": p.id,
        "createTime": CREATE_TIME,
        "updateTime": CREATE_TIME,
        "etag": etag,
    }


async def get_v1(ctx: Ctx) -> dict[str, Any]:
    p = _project(ctx)
    return {
        "projectNumber": p.number,
        "projectId": p.id,
        "lifecycleState": "ACTIVE",
        "name": p.id,
        "createTime": CREATE_TIME,
        "parent": {"type": "organization", "id": "000000000000"},
    }


ROUTES: list[Route] = [
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
