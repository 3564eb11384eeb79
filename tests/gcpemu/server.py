"""The one HTTP server that serves all four APIs, the service URLs and the admin API on one port.

``Emulator(config).start()`` binds a loopback port and returns the base URL. Each request goes through one
pipeline: route match -> request log -> latency/fault injection -> project resolution -> permission model ->
quota -> body parsing/validation -> handler -> Google error envelope. Routing is a short list of
precompiled regexes per HTTP method; aiohttp's low-level server keeps per-request overhead small.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import time
import traceback
from typing import Any

from aiohttp import web

from gcpemu import cloudrun, control, iap, protected, resourcemanager, secretmanager, serviceusage
from gcpemu.clock import Clock
from gcpemu.config import EmulatorConfig
from gcpemu.errors import ERROR_INFO, ApiError, Html404Error, bad_request, invalid, permission_denied
from gcpemu.faults import Faults, error_for, latency_for
from gcpemu.iam import agent_project_number
from gcpemu.quota import Quotas
from gcpemu.requestlog import Entry, RequestLog
from gcpemu.routing import Ctx, Route
from gcpemu.state import World

log = logging.getLogger("gcpemu")

_REGIONAL_API_PREFIX = {"run.googleapis.com"}


class CallerGoneError(Exception):
    """The caller's connection closed before its request body arrived: no call was made."""


class Emulator:
    """The emulator: state, control plane and the aiohttp server. Use from one event loop."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.initial_config = (config or EmulatorConfig()).copy()
        self.config = self.initial_config.copy()
        self.clock = Clock()
        self.world = World(self.config)
        self.faults = Faults()
        self.quotas = Quotas(self.clock)
        self.log = RequestLog(self.config.request_log_size)
        self.routes: dict[str, list[Route]] = {}
        for r in cloudrun.ROUTES + iap.ROUTES + serviceusage.ROUTES + resourcemanager.ROUTES + secretmanager.ROUTES:
            self.routes.setdefault(r.http, []).append(r)
        self._runner: web.ServerRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.base_url = ""
        self.inflight = 0
        self.epoch = 0
        """Bumped by reset(): requests still in flight from before (e.g. hanging ones) are then not logged."""

    # ---------------------------------------------------------------------------------------------- lifecycle

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "emulator not started"
        return self._loop

    async def start(self, host: str | None = None, port: int | None = None) -> str:
        self._loop = asyncio.get_running_loop()
        server = web.Server(self.handle, access_log=None)
        self._runner = web.ServerRunner(server, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, host or self.config.host, self.config.port if port is None else port, backlog=1024
        )
        await site.start()
        actual = self._runner.addresses[-1][1]
        self.base_url = f"http://{host or self.config.host}:{actual}"
        return self.base_url

    async def stop(self) -> None:
        self.world.cancel_timers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reset(self) -> None:
        """Back to the starting configuration and an empty world (clock, faults, quotas, log too)."""
        self.epoch += 1
        self.world.cancel_timers()
        self.config = self.initial_config.copy()
        self.world = World(self.config)
        self.faults.clear()
        self.quotas.reset()
        self.log.clear()
        self.clock.reset()

    def apply_config(self, changes: dict[str, Any]) -> None:
        self.config.update(changes)
        if "projects" in changes:
            self.world.load_projects()

    # ---------------------------------------------------------------------------------------------- IAM helpers

    def account_exists(self, email: str) -> bool:
        agent = agent_project_number(email)
        if agent is not None:
            if self.config.service_agents_exist:
                return True
            number, kind = agent
            created = self.world.agents.get((number, kind))
            if created is None:
                return False
            return self.clock.time() - created >= self.config.agent_propagation_delay
        return not any(m and m in email for m in self.config.nonexistent_service_account_markers)

    def permissions_denied(self, ctx: Ctx, permission: str) -> bool:
        cfg = self.config
        if not cfg.permissions_enabled:
            return False
        entry = cfg.permissions.get(ctx.caller or "anonymous")
        if entry is None:
            return not cfg.permissions_default_allow
        if ctx.project is not None:
            denied = entry.get("deny_projects") or []
            if ctx.project.id in denied or ctx.project.number in denied:
                return True
        if any(fnmatch.fnmatchcase(permission, p) for p in entry.get("deny") or []):
            return True
        allow = entry.get("allow")
        if allow is None:
            return False
        return not any(fnmatch.fnmatchcase(permission, p) for p in allow)

    def permission_error(self, ctx: Ctx, permission: str) -> ApiError:
        path = ctx.request.path
        resource = path.split("/", 2)[2] if path.count("/") >= 2 else path
        resource = resource.split(":", 1)[0]
        return permission_denied(permission, resource, domain=ctx.route.api)

    def test_permissions(self, ctx: Ctx, permissions: list[str]) -> dict[str, Any]:
        for p in permissions:
            if "*" in p:
                raise invalid(
                    f"Permissions with wildcards (such as '*' or 'storage.*') are not allowed: {p}", "permissions"
                )
        held = [p for p in permissions if not self.permissions_denied(ctx, p)]
        return {"permissions": held} if held else {}

    # ---------------------------------------------------------------------------------------------- dispatch

    def _match(self, http: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for r in self.routes.get(http, ()):
            m = r.pattern.match(path)
            if m is not None:
                return r, m.groupdict()
        return None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_emulator/"):
            return await control.handle(self, request)
        host = request.host.split(":")[0].lower()
        if host.endswith(".run.app"):
            return await self._protected(request, host, request.path_qs)
        if path.startswith("/_run/"):
            rest = path[len("/_run/") :]
            host, _, sub = rest.partition("/")
            sub_path = "/" + sub + (f"?{request.query_string}" if request.query_string else "")
            return await self._protected(request, host.lower(), sub_path)
        return await self._api(request)

    async def _protected(self, request: web.BaseRequest, host: str, path: str) -> web.StreamResponse:
        t0 = time.perf_counter()
        resp = await protected.serve(self, request, host, path)
        self.log.add(
            Entry(
                seq=self.log.next_seq(),
                time=self.clock.time(),
                method="app.request",
                http=request.method,
                path=f"{host}{path}",
                query={},
                status=resp.status,
                caller=request.headers.get("X-Emulator-User", ""),
                tag=request.headers.get("X-Emulator-Tag", ""),
                duration_ms=(time.perf_counter() - t0) * 1000,
            )
        )
        return resp

    async def _api(self, request: web.BaseRequest) -> web.StreamResponse:
        t0 = time.perf_counter()
        self.inflight += 1
        path = request.path
        query = dict(request.query.items())
        caller = request.headers.get("X-Emulator-Caller") or None
        if caller is None:
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                token = auth[7:].strip()
                caller = self.config.tokens.get(token, f"token:{token[:12]}")
        tag = request.headers.get("X-Emulator-Tag", "")
        epoch = self.epoch
        box: dict[str, Any] = {"epoch": epoch}
        matched = self._match(request.method, path)
        method_id = matched[0].method_id if matched else "unknown"
        status = 500
        err_status = ""
        received = True
        try:
            if matched is None:
                raise Html404Error()
            route, params = matched
            resp = await self._run(request, route, params, query, caller, tag, box)
            status = resp.status
            return resp
        except ApiError as e:
            status = e.http
            err_status = e.status
            return self.error_response(e, path)
        except CallerGoneError:  # a SIGKILLed operator's last request, cut before it arrived whole
            received = False  # not a call: nothing is logged, as Google records nothing it never received
            raise
        except Exception as e:  # the emulator's own bug: still answer like Google's 500
            traceback.print_exc()
            status = 500
            err_status = "INTERNAL"
            return self.error_response(ApiError("INTERNAL", f"Internal error: {e!r}"), path)
        finally:
            self.inflight -= 1
            if received and epoch == self.epoch:
                self.log.add(
                    Entry(
                        seq=self.log.next_seq(),
                        time=self.clock.time(),
                        method=method_id,
                        http=request.method,
                        path=path,
                        query=query,
                        status=status,
                        caller=caller or "",
                        tag=tag,
                        duration_ms=(time.perf_counter() - t0) * 1000,
                        error_status=err_status,
                        body=box.get("body"),
                    )
                )

    async def _run(
        self,
        request: web.BaseRequest,
        route: Route,
        params: dict[str, str],
        query: dict[str, str],
        caller: str | None,
        tag: str,
        box: dict[str, Any],
    ) -> web.StreamResponse:
        cfg = self.config
        # The whole request is received before any latency or hang, as by Google's front end: a client that
        # gives up during a hang does not take its request back, so a timed-out create still lands.
        try:
            raw = await request.read() if request.body_exists else b""
        except ConnectionResetError as error:
            raise CallerGoneError from error
        extra = latency_for(cfg.latency, route.method_id) if cfg.latency else 0.0
        if extra > 0:
            await asyncio.sleep(extra)
        if self.faults.rules and tag != "out-of-band":
            rule = self.faults.pick(route.method_id)
            if rule is not None:
                if rule.delay > 0:
                    await asyncio.sleep(rule.delay)
                err = error_for(rule, route.api)
                if err is not None:
                    raise err
        if route.query is not None and cfg.reject_unknown_fields:
            for name in query:
                if name not in route.query:
                    msg = (
                        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                        f"Field '{name}' could not be found in request message."
                    )
                    raise bad_request(msg, [("", msg)])
        if box["epoch"] != self.epoch:  # a reset happened while this request hung: do not touch the new world
            raise ApiError("CANCELLED", "The request was cancelled by an emulator reset.")
        alt = query.get("$alt", query.get("alt", "json"))
        ctx = Ctx(
            emu=self,
            request=request,
            route=route,
            params=params,
            query=query,
            body=None,
            caller=caller,
            int_enums="enum-encoding=int" in alt,
            tag=tag,
        )
        if "project" in params:
            ctx.project = self.world.resolve_project(params["project"])
            if ctx.project is None and route.api != resourcemanager.API:
                raise permission_denied(
                    route.permission or route.method_id, path_resource(request.path), domain=route.api
                )
        if tag != "out-of-band":
            serviceusage.check_enabled(ctx, route.api)  # Google's front end checks this before any permission
        if route.permission and tag != "out-of-band" and self.permissions_denied(ctx, route.permission):
            if route.api == resourcemanager.API:
                raise resourcemanager.no_permission(params.get("project", ""))
            raise self.permission_error(ctx, route.permission)
        if cfg.quotas_enabled and tag != "out-of-band":
            number = ctx.project.number if ctx.project else params.get("project", "")
            region = params.get("region", "global") if route.api in _REGIONAL_API_PREFIX else "global"
            qerr = self.quotas.take(cfg, route.api, number, region, route.kind)
            if qerr is not None:
                raise qerr
        if raw.strip():
            try:
                ctx.body = box["body"] = json.loads(raw)
            except ValueError as e:
                msg = f"Invalid JSON payload received. {e.args[0] if e.args else 'Unexpected token'}."
                raise ApiError("INVALID_ARGUMENT", msg, reason="INVALID_ARGUMENT", domain="googleapis.com") from None
        result = await route.handler(ctx)
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result)

    def error_response(self, err: ApiError, path: str) -> web.Response:
        if isinstance(err, Html404Error):
            return web.Response(status=404, content_type="text/html", text=Html404Error.PAGE.format(path=path))
        if not any(d.get("@type") == ERROR_INFO for d in err.details):
            err.details.insert(0, {"@type": ERROR_INFO, "reason": err.status, "domain": "googleapis.com"})
        body = err.body()
        if self.config.legacy_errors_array:
            body["error"]["errors"] = [{"message": err.message, "domain": "global", "reason": _legacy_reason(err)}]
        return json_response(body, status=err.http, headers=err.headers)


def path_resource(path: str) -> str:
    parts = path.split("/", 2)
    return parts[2].split(":", 1)[0] if len(parts) > 2 else path


def _legacy_reason(err: ApiError) -> str:
    return {
        400: "badRequest",
        401: "required",
        403: "forbidden",
        404: "notFound",
        409: "conflict",
        429: "rateLimitExceeded",
        503: "backendError",
    }.get(err.http, "backendError")


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=_dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
    )
