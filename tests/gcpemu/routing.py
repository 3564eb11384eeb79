"""The request context and route table types shared by every API module.

Each API module exports ``ROUTES``: (HTTP method, path regex, method id, quota kind, permission, handler).
The server matches the path once, resolves the project, runs the control plane (latency, faults, quota,
permissions, logging) and then calls the handler with a ``Ctx``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gcpemu.errors import ApiError

if TYPE_CHECKING:
    from gcpemu.server import Emulator
    from gcpemu.state import Project

Handler = Callable[["Ctx"], Awaitable[dict[str, Any] | web.StreamResponse]]


@dataclass(slots=True)
class Route:
    http: str
    pattern: re.Pattern[str]
    method_id: str
    api: str  # e.g. run.googleapis.com
    kind: str  # read | write
    permission: str | None
    handler: Handler
    query: frozenset[str] | None = None
    """Query parameters the discovery document allows (None = not checked)."""


def route(
    http: str,
    path: str,
    method_id: str,
    api: str,
    kind: str,
    permission: str | None,
    handler: Handler,
    disc: str | None = None,
) -> Route:
    """``path`` uses ``{name}`` for one segment (no ``/`` or ``:``) and ``{name+}`` for the rest.

    ``disc`` names the discovery method (``run.v2.json:projects.locations.services.create``) whose query
    parameters are the only ones accepted.
    """
    rx = re.escape(path)
    rx = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+?)", rx)
    rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/:]+)", rx)
    query = None
    if disc is not None:
        from gcpemu.schema import method_query_params

        filename, _, method_path = disc.partition(":")
        query = method_query_params(filename, method_path)
    return Route(http, re.compile(f"^{rx}$"), method_id, api, kind, permission, handler, query=query)


@dataclass(slots=True)
class Ctx:
    """Everything a handler needs about one request."""

    emu: Emulator
    request: web.BaseRequest
    route: Route
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    caller: str | None
    int_enums: bool
    project: Project | None = None
    tag: str = ""

    def qbool(self, name: str, snake_name: str | None = None) -> bool:
        raw = self.query.get(name)
        if raw is None and snake_name:
            raw = self.query.get(snake_name)
        if raw is None or raw == "":
            return False
        low = raw.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        field_name = snake_name or name
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field_name}' (TYPE_BOOL), \"{raw}\"")

    def qint(self, name: str, snake_name: str | None = None) -> int:
        raw = self.query.get(name)
        if raw is None and snake_name:
            raw = self.query.get(snake_name)
        if raw in (None, ""):
            return 0
        try:
            return int(raw)
        except ValueError:
            field_name = snake_name or name
            raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field_name}' (TYPE_INT32), \"{raw}\"") from None

    @property
    def caller_email(self) -> str:
        if self.caller and ":" in self.caller:
            return self.caller.split(":", 1)[1]
        return self.emu.config.default_caller_email
