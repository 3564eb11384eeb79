"""Writes a pass's status to the API server itself: one merge patch of the fields that changed, sent by the pass
under its object's lock, over kopf's own API-server session.

kopf could write it (a patch transformation applied after the handler returns), but only by deep-copying the
whole object and diffing it against the copy: at 1,000 objects that was a seventh of the operator's CPU
(docs/performance.md). Written here, the status of one object is written by one pass at a time, in the order
the passes ran, and a pass knows before it lets the object go whether its write was stored (docs/reliability.md,
"The status converges to the last pass").
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from iaprun_operator.kube import GROUP, PLURAL, VERSION, api_message

log = logging.getLogger(__name__)
RETRY_DELAYS = (0.5, 1.0, 2.0)
"""Seconds between attempts of one write before the pass gives up (the object's next pass writes again)."""
TIMEOUT = 90.0
"""Seconds an attempt may take: longer than kube-apiserver's own limit on a request (``--request-timeout``, one
minute), after which it cancels the request's work. An attempt this process gave up on has therefore been
settled by the API server before the next attempt (or the next pass) writes: an older write cannot land over
a newer one, as kopf's resent patches once did (docs/reliability.md, "The status converges to the last pass")."""


class StatusWriteError(Exception):
    """The write was not stored, or its fate is unknown (a timeout): the object needs another pass."""


class StatusWriter:
    """The status subresource's merge patch, over the session kopf logged in with (``runtime.login`` hands it
    over, again after each re-login)."""

    def __init__(self, retry_delays: Sequence[float] = RETRY_DELAYS, timeout: float = TIMEOUT) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.server = ""
        self.retry_delays = tuple(retry_delays)
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def use(self, session: aiohttp.ClientSession, server: str) -> None:
        self.session, self.server = session, server.rstrip("/")

    def url(self, namespace: str, name: str) -> str:
        return f"{self.server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"

    async def write(self, namespace: str, name: str, changes: Mapping[str, Any]) -> bool:
        """Merge-patch ``changes`` into the object's status: True once stored, False when the object is gone.

        Raises ``StatusWriteError`` when the API server refuses it or cannot be reached after the retries.
        """
        payload = json.dumps({"status": changes}, separators=(",", ":"))
        failure = ""
        for delay in (*self.retry_delays, None):
            try:
                return await self._send(namespace, name, payload)
            except _TransientError as error:
                failure = str(error)
            if delay is None:
                break
            await asyncio.sleep(delay)
        raise StatusWriteError(f"could not write the status of {namespace}/{name}: {failure}")

    async def _send(self, namespace: str, name: str, payload: str) -> bool:
        if self.session is None or self.session.closed:
            raise _TransientError("no API-server session (logging in)")
        headers = {"Content-Type": "application/merge-patch+json"}
        try:
            url = self.url(namespace, name)
            async with self.session.patch(url, data=payload, headers=headers, timeout=self.timeout) as response:
                if response.status == 404:
                    return False
                if response.status < 300:
                    return True
                text = await response.text()
                detail = api_message(text, text[:500])
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _TransientError(f"{type(error).__name__}: {error}") from None
        if response.status in (401, 409, 429) or response.status >= 500:  # 401: a token kopf is renewing
            raise _TransientError(f"{response.status}: {detail}")
        raise StatusWriteError(f"the API server refused the status of {namespace}/{name}: {response.status} {detail}")


class _TransientError(Exception):
    """Worth another attempt: no session yet, a connection error or timeout, a conflict, throttling, a 5xx."""
