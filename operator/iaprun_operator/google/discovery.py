"""Discovery-based clients (``google-api-python-client``) built once, executed thread-safely.

httplib2 connections are not thread-safe, so each pool thread executes requests on its own authorised
Http object; the service objects themselves are shared. Retries are the loop's job (``num_retries=0``).
"""

from __future__ import annotations

import threading
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.credentials import Credentials
from googleapiclient import discovery


class DiscoveryClients:
    def __init__(self, *, creds: Credentials, endpoint: str | None, timeout: float) -> None:
        self._creds = creds
        self._endpoint = endpoint
        self._timeout = timeout
        self._local = threading.local()
        self._services: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def service(self, name: str, version: str) -> Any:
        with self._lock:
            key = (name, version)
            if key not in self._services:
                options = {"api_endpoint": self._endpoint.rstrip("/") + "/"} if self._endpoint else None
                self._services[key] = discovery.build(
                    name,
                    version,
                    credentials=self._creds,
                    static_discovery=True,
                    client_options=options,
                    cache_discovery=False,
                )
            return self._services[key]

    def _http(self) -> Any:
        http = getattr(self._local, "http", None)
        if http is None:
            http = google_auth_httplib2.AuthorizedHttp(self._creds, http=httplib2.Http(timeout=self._timeout))
            self._local.http = http
        return http

    def execute(self, request: Any) -> Any:
        """Run a built request on this thread's own connection."""
        return request.execute(http=self._http(), num_retries=0)
