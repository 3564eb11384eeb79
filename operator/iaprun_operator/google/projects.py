"""Per-project facts, fetched once and cached: the project number and the IAP service agent.

Resource Manager v3 ``projects.get`` gives the number (IAP resources and the agent's email use it);
Service Usage v1beta1 ``generateServiceIdentity`` makes sure the IAP service agent exists (it needs no
permission and is idempotent). Both answers never change for a project, so each is asked once per
operator process; concurrent reconciles of the same project share one in-flight call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.names import IAP_SERVICE, iap_service_agent
from iaprun_operator.google.calls import Calls
from iaprun_operator.google.discovery import DiscoveryClients
from iaprun_operator.google.ratelimit import Limiter


class Projects:
    def __init__(self, *, calls: Calls, limiter: Limiter, clients: DiscoveryClients) -> None:
        self._calls = calls
        self._limiter = limiter
        self._clients = clients
        self._numbers: dict[str, asyncio.Task[str]] = {}
        self._agents: dict[str, asyncio.Task[str]] = {}

    async def _once(self, cache: dict[str, asyncio.Task[str]], key: str, make: Any) -> str:
        task = cache.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(make())
            cache[key] = task
        return await asyncio.shield(task)

    async def number(self, project: str) -> str:
        async def fetch() -> str:
            request = self._clients.service("cloudresourcemanager", "v3").projects().get(name=f"projects/{project}")
            result = await self._calls.run(
                "cloudresourcemanager",
                "projects.get",
                self._limiter.bucket("crm"),
                lambda: self._clients.execute(request),
            )
            name = str(result.get("name", ""))
            if not name.startswith("projects/"):
                raise GoogleError(
                    Kind.TRANSIENT,
                    f"unexpected project name {name!r}",
                    api="cloudresourcemanager",
                    method="projects.get",
                )
            return name.removeprefix("projects/")

        return await self._once(self._numbers, project, fetch)

    async def iap_agent(self, project: str, number: str) -> str:
        """The IAP service agent's email, after making sure it exists."""

        async def ensure() -> str:
            services = self._clients.service("serviceusage", "v1beta1").services()
            request = services.generateServiceIdentity(parent=f"projects/{project}/services/{IAP_SERVICE}")
            result = await self._calls.run(
                "serviceusage",
                "services.generateServiceIdentity",
                self._limiter.bucket("serviceusage"),
                lambda: self._clients.execute(request),
            )
            email = str(((result or {}).get("response") or {}).get("email") or "")
            return email or iap_service_agent(number)

        return await self._once(self._agents, project, ensure)
