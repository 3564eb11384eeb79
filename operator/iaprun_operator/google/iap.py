"""IAP API v1 adapter: the IAM policy and the IAP settings of a Cloud Run service's IAP resource.

The resource is ``projects/{number}/iap_web/cloud_run-{region}/services/{service}``; the IAP API reads
policies with a POST carrying ``requestedPolicyVersion: 3`` so conditional (expiring) bindings come back
as written. Settings are read with ``getIapSettings`` and written with ``updateIapSettings`` and an update
mask, so only the fields named change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iaprun_operator.google.calls import Calls
from iaprun_operator.google.discovery import DiscoveryClients
from iaprun_operator.google.ratelimit import Limiter

API = "iap"


class Iap:
    def __init__(self, *, calls: Calls, limiter: Limiter, clients: DiscoveryClients) -> None:
        self._calls = calls
        self._limiter = limiter
        self._clients = clients
        self._v1: Any = None

    def _policies(self) -> Any:
        # Built once: a discovery resource builds every method of the API when made, on the event loop.
        if self._v1 is None:
            self._v1 = self._clients.service("iap", "v1").v1()
        return self._v1

    async def get_iam_policy(self, resource: str, project: str) -> dict[str, Any]:
        request = self._policies().getIamPolicy(resource=resource, body={"options": {"requestedPolicyVersion": 3}})
        result = await self._calls.run(
            API, "getIamPolicy", self._limiter.bucket("iap", project), lambda: self._clients.execute(request)
        )
        return dict(result)

    async def set_iam_policy(self, resource: str, project: str, policy: Mapping[str, Any]) -> dict[str, Any]:
        request = self._policies().setIamPolicy(resource=resource, body={"policy": dict(policy)})
        result = await self._calls.run(
            API, "setIamPolicy", self._limiter.bucket("iap", project), lambda: self._clients.execute(request)
        )
        return dict(result)

    async def get_settings(self, resource: str, project: str) -> dict[str, Any]:
        request = self._policies().getIapSettings(name=resource)
        result = await self._calls.run(
            API, "getIapSettings", self._limiter.bucket("iap", project), lambda: self._clients.execute(request)
        )
        return dict(result)

    async def update_settings(
        self, resource: str, project: str, settings: Mapping[str, Any], mask: str
    ) -> dict[str, Any]:
        request = self._policies().updateIapSettings(name=resource, updateMask=mask, body=dict(settings))
        result = await self._calls.run(
            API, "updateIapSettings", self._limiter.bucket("iap", project), lambda: self._clients.execute(request)
        )
        return dict(result)
