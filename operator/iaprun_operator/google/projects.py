"""Per-project facts, fetched once and cached: the project number, the IAP API's reachability, the IAP agent.

Resource Manager v3 ``projects.get`` gives the number (IAP resources and the agent's email use it);
a read of the project's IAP policy (``projects/N/iap_web``) proves the IAP API is enabled before the first
pass writes anything (a disabled API would otherwise surface only after the service was created and the
invoker granted); Service Usage v1beta1 ``generateServiceIdentity`` makes sure the IAP service agent exists (it
needs no permission and is idempotent). The answers do not change for a project in practice, so each is
asked once per operator process (a failure is asked again); concurrent reconciles of the same project share
one in-flight call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.names import IAP_SERVICE, iap_service_agent
from iaprun_operator.google.calls import Calls, once
from iaprun_operator.google.discovery import DiscoveryClients
from iaprun_operator.google.iap import Iap
from iaprun_operator.google.ratelimit import Limiter


class Projects:
    def __init__(self, *, calls: Calls, limiter: Limiter, clients: DiscoveryClients, iap: Iap) -> None:
        self._calls = calls
        self._iap = iap
        self._limiter = limiter
        self._clients = clients
        self._found: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._numbers: dict[str, asyncio.Future[str]] = {}
        self._agents: dict[str, asyncio.Future[str]] = {}
        self._iap_reachable: dict[str, asyncio.Future[str]] = {}

    def remember(self, project: str, number: str) -> None:
        """A number an object's status already holds (learnt by an earlier pass, maybe of an earlier process):
        other objects of the project then need no Resource Manager call either."""
        if project not in self._numbers:
            known: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            known.set_result(number)
            self._numbers[project] = known

    async def found(self, project: str) -> dict[str, Any]:
        """Resource Manager v3's ``projects.get`` answer (the number, the parent), asked once per process and
        shared with the organisation lookup."""

        async def fetch() -> dict[str, Any]:
            request = self._clients.service("cloudresourcemanager", "v3").projects().get(name=f"projects/{project}")
            result = await self._calls.run(
                "cloudresourcemanager",
                "projects.get",
                self._limiter.bucket("crm"),
                lambda: self._clients.execute(request),
            )
            return dict(result or {})

        return await once(self._found, project, fetch)

    async def number(self, project: str) -> str:
        async def fetch() -> str:
            name = str((await self.found(project)).get("name", ""))
            if not name.startswith("projects/"):
                self._found.pop(project, None)  # an answer without a number is asked again, like a failure
                raise GoogleError(
                    Kind.TRANSIENT,
                    f"unexpected project name {name!r}",
                    api="cloudresourcemanager",
                    method="projects.get",
                )
            return name.removeprefix("projects/")

        return await once(self._numbers, project, fetch)

    async def check_iap(self, project: str, number: str) -> None:
        """Raise ``API_NOT_ENABLED`` when the IAP API is not enabled in the project; any other answer, a
        permission error included, shows the API is on (the steps report such errors on their own calls)."""

        async def probe() -> str:
            try:
                await self._iap.get_iam_policy(f"projects/{number}/iap_web", project)
            except GoogleError as error:
                if error.kind is Kind.API_NOT_ENABLED:
                    raise
            return number

        await once(self._iap_reachable, project, probe)

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

        return await once(self._agents, project, ensure)
