"""Secret Manager v1 ``projects.secrets.versions.access``: what the operator reads an OAuth client secret with.

Secrets come from the config (``secrets``: ``projects/{id or number}/secrets/{name}`` -> payloads of versions
1, 2, ...; ``latest`` is the last). Who may read them is the permission model's
``secretmanager.versions.access``. Names come back with the project number, as Google writes them.
"""

from __future__ import annotations

import base64
from typing import Any

from gcpemu.errors import invalid, not_found
from gcpemu.routing import Ctx, Route, route

API = "secretmanager.googleapis.com"


def _versions(ctx: Ctx, secret: str) -> list[str] | None:
    project = ctx.project
    assert project is not None
    table = ctx.emu.config.secrets
    for alias in (project.id, project.number):
        found = table.get(f"projects/{alias}/secrets/{secret}")
        if found is not None:
            return found
    return None


async def access(ctx: Ctx) -> dict[str, Any]:
    project = ctx.project
    assert project is not None
    secret, version = ctx.params["secret"], ctx.params["version"]
    name = f"projects/{project.number}/secrets/{secret}"
    versions = _versions(ctx, secret)
    if not versions:
        raise not_found(f"Secret [{name}] not found or has no versions.", domain=API)
    if version == "latest":
        number = len(versions)
    elif version.isdigit():
        number = int(version)
    else:
        raise invalid(f"Invalid secret version [{version}]: must be a positive integer or 'latest'.", "name")
    if not 1 <= number <= len(versions):
        raise not_found(f"Secret Version [{name}/versions/{version}] not found.", domain=API)
    data = versions[number - 1].encode()
    return {
        "name": f"{name}/versions/{number}",
        "payload": {"data": base64.b64encode(data).decode()},
    }


ROUTES: list[Route] = [
    route(
        "GET",
        "/v1/projects/{project}/secrets/{secret}/versions/{version}:access",
        "secretmanager.projects.secrets.versions.access",
        API,
        "read",
        "secretmanager.versions.access",
        access,
        "secretmanager.v1.json:projects.secrets.versions.access",
    ),
]
