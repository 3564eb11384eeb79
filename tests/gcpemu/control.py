"""The admin API under ``/_emulator/``: reset, state, config, request log, faults, latency, quotas,
permissions, clock, and out-of-band changes (what a console user would do behind the operator's back).

Documented in docs/emulator.md; ``gcpemu.admin.AdminClient`` is its Python client.
"""

from __future__ import annotations

import copy
import json
import resource
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gcpemu import cloudrun
from gcpemu.clock import parse_rfc3339
from gcpemu.iam import Policy, new_etag
from gcpemu.serviceusage import AGENT_DOMAINS, agent_email

if TYPE_CHECKING:
    from gcpemu.server import Emulator


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, default=str), content_type="application/json")


async def handle(emu: Emulator, request: web.BaseRequest) -> web.StreamResponse:
    path = request.path[len("/_emulator/") :].strip("/")
    method = request.method
    body: Any = {}
    if request.body_exists:
        raw = await request.read()
        if raw.strip():
            body = json.loads(raw)
    try:
        fn = _ROUTES.get((method, path))
        if fn is None:
            raise AdminError(404, f"no admin endpoint {method} /_emulator/{path}")
        return _json(fn(emu, request, body))
    except AdminError as e:
        return _json({"error": str(e)}, e.status)
    except (KeyError, ValueError, TypeError) as e:
        return _json({"error": f"{type(e).__name__}: {e}"}, 400)


def _health(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    return {"ok": True, "base_url": emu.base_url}


def _reset(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    emu.reset()
    return {"ok": True}


def _config_get(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    return emu.config.to_dict()


def _config_patch(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    emu.apply_config(dict(body))
    return emu.config.to_dict()


def _state(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    w = emu.world

    def k(key: tuple[str, str, str]) -> str:
        return "/".join(key)

    return {
        "clock": {"now": emu.clock.rfc3339(), "offset": emu.clock.offset},
        "projects": {p.id: p.number for p in w.projects_by_id.values()},
        "services": {k(key): r.data for key, r in w.services.items()},
        "hosts": {h: k(key) for h, key in w.hosts.items()},
        "run_policies": {k(key): p.view(3) for key, p in w.run_policies.items()},
        "iap_policies": {k(key): p.view(3) for key, p in w.iap_policies.items()},
        "iap_other_policies": {n: p.view(3) for n, p in w.iap_other_policies.items()},
        "project_policies": {f"projects/{n}": p.view(3) for n, p in w.project_policies.items()},
        "iap_settings": {k(key): s for key, s in w.iap_settings.items()},
        "agents": [{"project_number": n, "kind": kind, "created": t} for (n, kind), t in w.agents.items()],
        "operations": [
            {"name": o.name, "method": o.method, "done": o.done, "error": o.error} for o in w.operations.values()
        ],
    }


def _requests(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    q = request.query
    status = q.get("status")
    return emu.log.query(
        method=q.get("method") or None,
        since=int(q.get("since", "0")),
        status=int(status) if status else None,
        tag=q.get("tag"),
        include_tagged=q.get("include_tagged", "true") != "false",
    )


def _requests_clear(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    emu.log.clear()
    return {"ok": True}


def _counts(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    return {"methods": dict(emu.log.counts), "statuses": dict(emu.log.status_counts), "last_seq": emu.log.seq}


def _faults_get(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    return emu.faults.dump()


def _faults_add(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    rule = emu.faults.add(dict(body))
    return {"id": rule.id}


def _faults_clear(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    emu.faults.clear()
    return {"ok": True}


def _latency(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    emu.config.latency = {str(k): float(v) for k, v in dict(body).items()}
    return emu.config.latency


def _quotas_put(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    changes: dict[str, Any] = {}
    if "enabled" in body:
        changes["quotas_enabled"] = bool(body["enabled"])
    if "limits" in body:
        changes["quota_limits"] = body["limits"]
    if "retry_after" in body:
        changes["quota_retry_after"] = int(body["retry_after"])
    emu.apply_config(changes)
    emu.quotas.reset()
    return _quotas_get(emu, request, body)


def _quotas_get(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    cfg = emu.config
    return {
        "enabled": cfg.quotas_enabled,
        "limits": {k: {"read": v.read, "write": v.write} for k, v in cfg.quota_limits.items()},
        "buckets": emu.quotas.dump(),
        "exceeded": dict(emu.quotas.exceeded),
    }


def _permissions(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    changes: dict[str, Any] = {}
    if "enabled" in body:
        changes["permissions_enabled"] = bool(body["enabled"])
    if "default_allow" in body:
        changes["permissions_default_allow"] = bool(body["default_allow"])
    if "callers" in body:
        callers = copy.deepcopy(emu.config.permissions)
        for caller, entry in dict(body["callers"]).items():
            if entry is None:
                callers.pop(caller, None)
            else:
                callers[caller] = dict(entry)
        changes["permissions"] = callers
    if "tokens" in body:
        changes["tokens"] = {**emu.config.tokens, **dict(body["tokens"])}
    emu.apply_config(changes)
    return {
        "enabled": emu.config.permissions_enabled,
        "default_allow": emu.config.permissions_default_allow,
        "callers": emu.config.permissions,
    }


def _clock_get(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    return {"now": emu.clock.rfc3339(), "offset": emu.clock.offset}


def _clock_post(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    if body.get("reset"):
        emu.clock.reset()
    if "set" in body:
        emu.clock.set(parse_rfc3339(str(body["set"])))
    if "advance" in body:
        emu.clock.advance(float(body["advance"]))
    return _clock_get(emu, request, body)


def _service_key(emu: Emulator, body: Any) -> tuple[str, str, str]:
    project = emu.world.resolve_project(str(body["project"]))
    if project is None:
        raise AdminError(404, f"unknown project {body['project']}")
    return (project.number, str(body["region"]), str(body["service"]))


def _set_dotted(d: Any, path: str, value: Any) -> None:
    segs = path.split(".")
    cur = d
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        key: Any = int(seg) if isinstance(cur, list) else seg
        if last:
            if value is None and isinstance(cur, dict):
                cur.pop(key, None)
            else:
                cur[key] = copy.deepcopy(value)
            return
        nxt = cur[key] if isinstance(cur, list) else cur.get(key)
        if nxt is None:
            nxt = [] if segs[i + 1].isdigit() else {}
            cur[key] = nxt
        cur = nxt


def _mutate_service(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    key = _service_key(emu, body)
    rec = emu.world.services.get(key)
    if rec is None:
        raise AdminError(404, f"no service {'/'.join(key)}")
    rec.touch()
    before_template = copy.deepcopy(rec.data.get("template"))
    for path, value in dict(body.get("set") or {}).items():
        _set_dotted(rec.data, path, value)
    if body.get("bump_generation", True):
        rec.data["generation"] = str(int(rec.data.get("generation", "0")) + 1)
        rec.data["etag"] = cloudrun._etag()
        rec.data["updateTime"] = emu.clock.rfc3339()
        rec.data["lastModifier"] = str(body.get("modifier", "console-user@example.com"))
        if rec.data.get("template") != before_template:
            rec.revisions += 1
            rev = f"{rec.service_id}-{rec.revisions:05d}-oob"
            rec.created_revisions[rev] = copy.deepcopy(rec.data.get("template") or {})
            rec.data["latestCreatedRevision"] = f"{rec.data['name']}/revisions/{rev}"
        if body.get("settle", True):
            err = cloudrun._finish(emu, rec)
            if err is not None:
                return {"service": rec.data, "error": err.message}
    return {"service": rec.data}


def _binding(emu: Emulator, body: Any, add: bool) -> Any:
    kind = body.get("kind", "run")
    store: Any
    key: Any
    if kind == "project":
        project = emu.world.resolve_project(str(body["project"]))
        if project is None:
            raise AdminError(404, f"unknown project {body['project']}")
        store, key = emu.world.project_policies, project.number
    else:
        store = emu.world.run_policies if kind == "run" else emu.world.iap_policies
        key = _service_key(emu, body)
    pol = store.get(key, Policy())
    bindings = copy.deepcopy(pol.bindings)
    role, member, cond = body["role"], body["member"], body.get("condition")
    target = next((b for b in bindings if b["role"] == role and b.get("condition") == cond), None)
    if add:
        if target is None:
            target = {"role": role, "members": []}
            if cond:
                target["condition"] = cond
            bindings.append(target)
        if member not in target["members"]:
            target["members"].append(member)
    elif target is not None and member in target["members"]:
        target["members"].remove(member)
    new = Policy([b for b in bindings if b["members"]], pol.audit_configs, new_etag(), True)
    store[key] = new
    return new.view(3)


def _add_binding(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    return _binding(emu, body, True)


def _remove_binding(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    return _binding(emu, body, False)


def _agents(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    project = emu.world.resolve_project(str(body["project"]))
    if project is None:
        raise AdminError(404, f"unknown project {body['project']}")
    service = body.get("service", "iap.googleapis.com")
    kind = AGENT_DOMAINS[service].removeprefix("gcp-sa-")
    if body.get("delete"):
        emu.world.agents.pop((project.number, kind), None)
    else:
        emu.world.agents[(project.number, kind)] = emu.clock.time() - float(body.get("age", 1e9))
    return {"email": agent_email(service, project.number)}


def _stats(emu: Emulator, request: web.BaseRequest, body: Any) -> Any:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_seconds": time.process_time(),
        "user_seconds": ru.ru_utime,
        "system_seconds": ru.ru_stime,
        "requests": emu.log.seq,
        "inflight": emu.inflight,
        "pending_operations": sum(1 for o in emu.world.operations.values() if not o.done),
    }


_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "health"): _health,
    ("POST", "reset"): _reset,
    ("GET", "config"): _config_get,
    ("PATCH", "config"): _config_patch,
    ("GET", "state"): _state,
    ("GET", "requests"): _requests,
    ("DELETE", "requests"): _requests_clear,
    ("GET", "counts"): _counts,
    ("GET", "faults"): _faults_get,
    ("POST", "faults"): _faults_add,
    ("DELETE", "faults"): _faults_clear,
    ("PUT", "latency"): _latency,
    ("GET", "quotas"): _quotas_get,
    ("PUT", "quotas"): _quotas_put,
    ("PUT", "permissions"): _permissions,
    ("GET", "clock"): _clock_get,
    ("POST", "clock"): _clock_post,
    ("POST", "services/mutate"): _mutate_service,
    ("POST", "policies/add-binding"): _add_binding,
    ("POST", "policies/remove-binding"): _remove_binding,
    ("POST", "agents"): _agents,
    ("GET", "stats"): _stats,
}
