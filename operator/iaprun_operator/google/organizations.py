"""Resource Manager v3: the organisation a project belongs to, and that organisation's domain.

Who can sign in through IAP's Google-managed OAuth client depends on it: only identities of the project's
organisation, and nobody when the project has none. ``projects.get`` names the parent; a folder's parent is
followed with ``folders.get`` up to the organisation (or none); ``organizations.get`` gives its
``displayName``, which Google sets to the organisation's primary domain. The answers are stable, so each
project is asked once per process; ``projects.get`` is the answer ``Projects`` already holds for the number.
"""

from __future__ import annotations

import asyncio
from typing import Any

from iaprun_operator.google.calls import Calls, once
from iaprun_operator.google.discovery import DiscoveryClients
from iaprun_operator.google.projects import Projects
from iaprun_operator.google.ratelimit import Limiter

API = "cloudresourcemanager"
MAX_FOLDER_DEPTH = 10
"""Google allows folders ten levels deep."""


class Organizations:
    def __init__(self, *, calls: Calls, limiter: Limiter, clients: DiscoveryClients, projects: Projects) -> None:
        self._calls = calls
        self._projects = projects
        self._limiter = limiter
        self._clients = clients
        self._known: dict[str, asyncio.Future[tuple[str, ...] | None]] = {}

    async def domains(self, project: str) -> tuple[str, ...] | None:
        return await once(self._known, project, lambda: self._fetch(project))

    async def _call(self, method: str, request: Any) -> Any:
        return await self._calls.run(API, method, self._limiter.bucket("crm"), lambda: self._clients.execute(request))

    async def _fetch(self, project: str) -> tuple[str, ...] | None:
        v3 = self._clients.service("cloudresourcemanager", "v3")
        parent = str((await self._projects.found(project)).get("parent") or "")
        for _ in range(MAX_FOLDER_DEPTH):
            if not parent.startswith("folders/"):
                break
            folder = await self._call("folders.get", v3.folders().get(name=parent))
            parent = str((folder or {}).get("parent") or "")
        if not parent.startswith("organizations/"):
            return None
        org = await self._call("organizations.get", v3.organizations().get(name=parent))
        domain = str((org or {}).get("displayName") or "")
        return (domain.lower(),) if domain else ()
