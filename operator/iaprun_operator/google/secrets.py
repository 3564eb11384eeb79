"""Secret Manager v1 adapter: the value of one secret version, for the operator to hand to Google itself.

Only IAP settings need it: ``updateIapSettings`` takes an OAuth client secret in clear, so the operator reads
the secret version the spec names (``accessSecretVersion``) right before writing, and keeps it nowhere (not in
status, Events, logs or a cache). The operator's Google account needs ``secretmanager.versions.access`` on
exactly those secrets; see docs/access-control.md.
"""

from __future__ import annotations

import base64

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.google.calls import Calls
from iaprun_operator.google.discovery import DiscoveryClients
from iaprun_operator.google.ratelimit import Limiter

API = "secretmanager"


class Secrets:
    def __init__(self, *, calls: Calls, limiter: Limiter, clients: DiscoveryClients) -> None:
        self._calls = calls
        self._limiter = limiter
        self._clients = clients

    async def access(self, version: str, project: str) -> str:
        """The payload of ``projects/P/secrets/S/versions/V`` as text."""
        versions = self._clients.service("secretmanager", "v1").projects().secrets().versions()
        request = versions.access(name=version)
        result = await self._calls.run(
            API,
            "versions.access",
            self._limiter.bucket("secretmanager", project),
            lambda: self._clients.execute(request),
        )
        data = str(((result or {}).get("payload") or {}).get("data") or "")
        try:
            return base64.b64decode(data, validate=True).decode()
        except ValueError:
            raise GoogleError(
                Kind.INVALID, f"secret version {version} is not UTF-8 text", api=API, method="versions.access"
            ) from None
