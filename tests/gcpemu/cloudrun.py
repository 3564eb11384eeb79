"""Cloud Run Admin API v2: services (create/get/list/patch/delete), their IAM policy, and operations.

The lifecycle is the real one in miniature: a write stores the desired state, bumps ``generation``, marks the
service ``reconciling`` and returns an Operation; an asyncio timer later "rolls out" the revision (or fails it
when the image does not exist) and completes the Operation with the Service.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import re
import secrets
import string
import uuid
from typing import TYPE_CHECKING, Any

from gcpemu import identity, orgpolicy, schema
from gcpemu.errors import ApiError, Html404Error, bad_request, invalid
from gcpemu.iam import IamRules, Policy, check_policy_version_param, set_policy
from gcpemu.routing import Ctx, Route, route
from gcpemu.runspec import REVISION, check_after_defaults, check_service, ingress_index, quantity
from gcpemu.state import OperationRecord, Project, ServiceRecord

if TYPE_CHECKING:
    from gcpemu.server import Emulator

API = "run.googleapis.com"
SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
SERVICE_ID_RE = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")
SERVICE_ID_MESSAGE = (
    "Violation in CreateServiceRequest.service_id: only lowercase, digits, and hyphens; must begin with "
    "letter, and cannot end with hyphen; must be less than 50 characters."
)

_DISC = schema.discovery("run.v2.json")
SERVICE = _DISC.message("GoogleCloudRunV2Service")
SET_IAM = _DISC.message("GoogleIamV1SetIamPolicyRequest")
TEST_IAM = _DISC.message("GoogleIamV1TestIamPermissionsRequest")
WAIT_OP = _DISC.message("GoogleLongrunningWaitOperationRequest")


def _bind() -> None:
    from google.cloud import run_v2

    schema.bind_proto(SERVICE, run_v2.Service.pb().DESCRIPTOR)


_bind()

SETTABLE = tuple(n for n, f in SERVICE.fields.items() if not f.read_only and n not in ("name", "etag"))


# ----------------------------------------------------------------------------------------------------------
# helpers


def _region(ctx: Ctx) -> str:
    region = ctx.params["region"]
    cfg = ctx.emu.config
    if region not in cfg.regions and not cfg.accept_any_region:
        # The real front end answers an unknown location with its HTML 404 page.
        raise Html404Error()
    return region


def name_project(ctx: Ctx, project: Project) -> str:
    mode = ctx.emu.config.run_name_project
    if mode == "number":
        return project.number
    if mode == "as_given":
        return ctx.params["project"]
    return project.id


def _key(project: Project, region: str, sid: str) -> tuple[str, str, str]:
    return (project.number, region, sid)


def _etag() -> str:
    return '"' + base64.b64encode(secrets.token_bytes(18)).decode() + '"'


def _rand3() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(3))


def _project_hash(number: str) -> str:
    alphabet = string.ascii_lowercase + string.digits
    h = int(hashlib.sha256(number.encode()).hexdigest(), 16)
    out = []
    for _ in range(10):
        h, r = divmod(h, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def region_code(emu: Emulator, region: str) -> str:
    code = emu.config.regions.get(region)
    if code:
        return code
    return "".join(p[0] for p in region.rstrip("0123456789").split("-") if p)


def service_hosts(emu: Emulator, project: Project, region: str, sid: str) -> tuple[str, str]:
    return (
        f"{sid}-{_project_hash(project.number)}-{region_code(emu, region)}.a.run.app",
        f"{sid}-{project.number}.{region}.run.app",
    )


def _get_path(d: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    cur: Any = d
    for seg in path:
        if not isinstance(cur, dict) or seg not in cur:
            return False, None
        cur = cur[seg]
    return True, cur


def _set_path(d: dict[str, Any], path: list[str], present: bool, value: Any) -> None:
    cur = d
    for seg in path[:-1]:
        nxt = cur.get(seg)
        if not isinstance(nxt, dict):
            if not present:
                return
            nxt = {}
            cur[seg] = nxt
        cur = nxt
    if present:
        cur[path[-1]] = copy.deepcopy(value)
    else:
        cur.pop(path[-1], None)


def missing_image(emu: Emulator, spec: dict[str, Any]) -> str | None:
    cfg = emu.config
    for c in (spec.get("template") or {}).get("containers") or []:
        img = c.get("image", "")
        if img in cfg.missing_images or any(m and m in img for m in cfg.missing_image_markers):
            return str(img)
    return None


def default_startup_probe(port: int) -> dict[str, Any]:
    return {"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1, "tcpSocket": {"port": port}}


def _probe_defaults(probe: dict[str, Any], port: int | None) -> None:
    """A declared probe reads back with Google's documented defaults filled in."""
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("failureThreshold", 3)
    for action in ("httpGet", "tcpSocket", "grpc"):
        a = probe.get(action)
        if isinstance(a, dict):
            if port is not None:
                a.setdefault("port", port)
            if action == "httpGet":
                a.setdefault("path", "/")


def _container_defaults(c: dict[str, Any], ingress: bool) -> bool:
    """Fill one container's defaults; returns whether its CPU is at least 1."""
    port: int | None = None
    if ingress:
        ports = c.get("ports") or [{}]
        for p in ports:
            p.setdefault("name", "http1")
            p.setdefault("containerPort", 8080)
        c["ports"] = ports
        port = int(ports[0]["containerPort"])
    if "resources" not in c:
        # cpuIdle defaults to true only when resources are absent: "if ResourceRequirements is set, the caller
        # must explicitly set this field to true to preserve the default behavior" (run.v2 discovery).
        c["resources"] = {"cpuIdle": True}
    res = c["resources"]
    limits = res.setdefault("limits", {})
    limits.setdefault("cpu", "1")
    limits.setdefault("memory", "512Mi")
    if not res.get("startupCpuBoost", False):
        res.pop("startupCpuBoost", None)
    for kind in ("startupProbe", "livenessProbe"):
        if isinstance(c.get(kind), dict):
            _probe_defaults(c[kind], port)
    if ingress and port is not None:
        c.setdefault("startupProbe", default_startup_probe(port))
    cpu = quantity(limits["cpu"])
    return cpu == 0 or cpu >= 1


def apply_defaults(emu: Emulator, project: Project, spec: dict[str, Any]) -> None:
    """Server-set defaults, as a real read-back shows them."""
    spec.setdefault("ingress", "INGRESS_TRAFFIC_ALL")
    if emu.config.iap_requires_beta and spec.get("iapEnabled"):
        spec["launchStage"] = "BETA"
    else:
        spec["launchStage"] = "GA"  # the lowest stage actually needed
    if not spec.get("traffic"):
        spec["traffic"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
    t = spec.get("template")
    if not isinstance(t, dict):
        return
    ingress = ingress_index(t)
    cpu_ge_1 = True
    for i, c in enumerate(t.get("containers") or []):
        cpu_ge_1 = _container_defaults(c, i == ingress) and cpu_ge_1
    if isinstance(t.get("vpcAccess"), dict):
        t["vpcAccess"].setdefault("egress", "PRIVATE_RANGES_ONLY")
    scaling = t.setdefault("scaling", {})
    scaling.setdefault("maxInstanceCount", 100)
    t.setdefault("maxInstanceRequestConcurrency", 80 if cpu_ge_1 else 1)
    t.setdefault("timeout", "300s")
    t.setdefault("serviceAccount", emu.config.default_service_account.format(number=project.number))


def _check_spec(
    emu: Emulator,
    spec: dict[str, Any],
    request: str,
    name: str,
    *,
    region: str,
    old: dict[str, Any] | None = None,
) -> None:
    schema.check_required(spec.get("template"), "service.template", request)
    containers = spec["template"].get("containers") or []
    schema.check_required(containers, "service.template.containers", request)
    for i, c in enumerate(containers):
        schema.check_required(c.get("image"), f"service.template.containers[{i}].image", request)
    if len(spec.get("description") or "") > 512:
        raise invalid(f"Violation in {request}.service.description: must be at most 512 characters.")
    check_service(emu, spec, request, region, old, name.rsplit("/", 1)[-1])
    if emu.config.iap_requires_beta and spec.get("iapEnabled") and spec.get("launchStage") not in ("ALPHA", "BETA"):
        raise invalid(
            f"The feature 'IAP' is not supported in the declared launch stage on resource {name}. The launch "
            "stage annotation should be specified at least as BETA. Please visit "
            "https://cloud.google.com/run/docs/troubleshooting#launch-stage-validation for in-depth "
            "troubleshooting documentation."
        )


def _spec_of(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in SETTABLE if k in data}


def _render_service(ctx: Ctx, data: dict[str, Any]) -> dict[str, Any]:
    return schema.render(data, SERVICE, int_enums=ctx.int_enums)


def render_operation(op: OperationRecord, int_enums: bool = False) -> dict[str, Any]:
    """Operation JSON with only fields the pinned run_v2 proto knows (its parser is strict)."""
    out: dict[str, Any] = {"name": op.name}
    if op.metadata is not None:
        out["metadata"] = {
            "@type": SERVICE_TYPE,
            **schema.render(op.metadata, SERVICE, int_enums=int_enums, proto_only=True),
        }
    if op.done:
        out["done"] = True
        if op.error is not None:
            out["error"] = op.error
        else:
            out["response"] = {
                "@type": SERVICE_TYPE,
                **schema.render(op.response or {}, SERVICE, int_enums=int_enums, proto_only=True),
            }
    return out


def _op_delay(emu: Emulator, method: str) -> float:
    d = emu.config.operation_delays.get(method)
    return emu.config.operation_delay if d is None else float(d)


# ----------------------------------------------------------------------------------------------------------
# lifecycle


def _conditions(
    state: str, now: str, message: str = "", failed_reason: str = ""
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    term: dict[str, Any] = {"type": "Ready", "state": state, "lastTransitionTime": now}
    if message:
        term["message"] = message
    if failed_reason:
        term["reason"] = failed_reason
    conds = []
    for t in ("ConfigurationsReady", "RoutesReady"):
        c: dict[str, Any] = {"type": t, "state": state, "lastTransitionTime": now}
        if message and t == "ConfigurationsReady":
            c["message"] = message
        conds.append(c)
    return term, conds


def _begin(emu: Emulator, rec: ServiceRecord, new_revision: bool, ctx: Ctx) -> None:
    rec.touch()
    d = rec.data
    now = emu.clock.rfc3339()
    if new_revision:
        rec.revisions += 1
        template = d.get("template") or {}
        rev = template.get("revision") or f"{rec.service_id}-{rec.revisions:05d}-{_rand3()}"
        rec.created_revisions[rev] = copy.deepcopy(template)
        d["latestCreatedRevision"] = f"{d['name']}/revisions/{rev}"
    d["reconciling"] = True
    term, conds = _conditions("CONDITION_RECONCILING", now)
    d["terminalCondition"] = term
    d["conditions"] = conds


def _fail(emu: Emulator, d: dict[str, Any], status: str, msg: str, reason: str = "") -> ApiError:
    """The rollout failed: say why in the conditions; the last serving state is kept."""
    term, conds = _conditions("CONDITION_FAILED", emu.clock.rfc3339(), msg, reason)
    d["terminalCondition"] = term
    d["conditions"] = conds
    return ApiError(status, msg)


def _logs_hint(rec: ServiceRecord, rev: str) -> str:
    svc = rec.service_id
    return (
        f"\n\nLogs URL: https://console.cloud.google.com/logs/viewer?project={rec.project.id}"
        f"&resource=cloud_run_revision/service_name/{svc}/revision_name/{rev}"
        "&advancedFilter=resource.type%3D%22cloud_run_revision%22%0Aresource.labels.service_name%3D%22"
        f"{svc}%22%0Aresource.labels.revision_name%3D%22{rev}%22\n"
        "For more troubleshooting guidance, see https://cloud.google.com/run/docs/troubleshooting#container-failed-to-start"
    )


def startup_probe_failure(emu: Emulator, d: dict[str, Any]) -> str | None:
    """Why the revision's startup probe fails (the configured trigger), or None when every container starts."""
    markers = [m for m in emu.config.startup_probe_failure_markers if m]
    for c in (d.get("template") or {}).get("containers") or []:
        probe = c.get("startupProbe") or {}
        path = str((probe.get("httpGet") or {}).get("path", ""))
        if not any(m in str(c.get("image", "")) or m in path for m in markers):
            continue
        ports = c.get("ports") or [{}]
        port = ports[0].get("containerPort", 8080)
        if probe and probe != default_startup_probe(port):
            return "The user-provided container failed the configured startup probe checks."
        return (
            "The user-provided container failed to start and listen on the port defined provided by the "
            f"PORT={port} environment variable within the allocated timeout. This can happen when the container "
            "port is misconfigured or if the timeout is too short. The health check timeout can be extended."
        )
    return None


def _missing_traffic_revision(rec: ServiceRecord, new_rev: str) -> str | None:
    for t in rec.data.get("traffic") or []:
        name = t.get("revision")
        if t.get("type") == REVISION and name and name != new_rev and name not in rec.ready_revisions:
            return str(name)
    return None


def _finish(emu: Emulator, rec: ServiceRecord) -> ApiError | None:
    rec.touch()
    d = rec.data
    d["reconciling"] = False
    rev = d.get("latestCreatedRevision", "").rsplit("/", 1)[-1]
    not_ready = f"Revision '{rev}' is not ready and cannot serve traffic. "
    img = missing_image(emu, d)
    if img is not None:
        return _fail(emu, d, "FAILED_PRECONDITION", f"{not_ready}Image '{img}' not found.")
    denied = identity.secret_denials(emu, rec.project, d)
    if denied:
        # Observed: the Operation fails with code 13 and the revision's message, one line per reference.
        return _fail(emu, d, "INTERNAL", not_ready + "\n".join(denied), "SECRETS_ACCESS_CHECK_FAILED")
    probe = startup_probe_failure(emu, d)
    if probe is not None:
        msg = f"{not_ready}{probe} Logs for this revision might contain more information.{_logs_hint(rec, rev)}"
        return _fail(emu, d, "FAILED_PRECONDITION", msg)
    rec.ready_revisions.add(rev)
    d["latestReadyRevision"] = d.get("latestCreatedRevision", "")
    missing = _missing_traffic_revision(rec, rev)
    if missing is not None:
        msg = (
            f"Revision '{missing}' does not exist or is deleted. Update all traffic to route to currently "
            "available revisions."
        )
        return _fail(emu, d, "INTERNAL", msg)
    d["observedGeneration"] = d["generation"]
    if not rec.ready_once:
        rec.ready_once = True
        d["uri"] = f"https://{rec.hosts[0]}"
        d["urls"] = [f"https://{h}" for h in (rec.hosts[1], rec.hosts[0])]
    _route(emu, rec)
    term, conds = _conditions("CONDITION_SUCCEEDED", emu.clock.rfc3339())
    d["terminalCondition"] = term
    d["conditions"] = conds
    containers = (d.get("template") or {}).get("containers") or []
    rec.ready_revision_image = containers[0].get("image", "") if containers else ""
    return None


def _route(emu: Emulator, rec: ServiceRecord) -> None:
    """trafficStatuses mirror traffic with every target resolved to a revision name; each tag gets
    its own ``{tag}---`` URL, registered as a host so the protected URL serves it."""
    d = rec.data
    ready = d["latestReadyRevision"].rsplit("/", 1)[-1]
    key = _key(rec.project, rec.region, rec.service_id)
    for h in rec.tag_hosts:
        emu.world.hosts.pop(h, None)
    rec.tag_hosts = {}
    statuses = []
    for t in d.get("traffic") or []:
        s = {k: v for k, v in t.items() if k in ("type", "revision", "percent", "tag")}
        if not s.get("revision"):
            s["revision"] = ready  # LATEST (and an unnamed REVISION target) resolves to the ready revision
        if s.get("tag"):
            host = f"{s['tag']}---{rec.hosts[0]}"
            s["uri"] = f"https://{host}"
            rec.tag_hosts[host] = s["revision"]
            emu.world.hosts[host] = key
        statuses.append(s)
    d["trafficStatuses"] = statuses


def _new_operation(ctx: Ctx, project: Project, region: str, method: str, snapshot: dict[str, Any]) -> OperationRecord:
    emu = ctx.emu
    name = f"projects/{name_project(ctx, project)}/locations/{region}/operations/{uuid.uuid4()}"
    op = OperationRecord(
        name=name, method=method, metadata=copy.deepcopy(snapshot), created=emu.clock.time(), seq=next(emu.world.seq)
    )
    emu.world.operations[name] = op
    return op


def _complete(emu: Emulator, op: OperationRecord, response: dict[str, Any] | None, error: ApiError | None) -> None:
    op.done = True
    op.timer = None
    if error is not None:
        op.error = error.rpc_status()
    else:
        op.response = copy.deepcopy(response or {})
    if op.event is not None:
        op.event.set()


def _schedule(emu: Emulator, op: OperationRecord, delay: float, fn: Any) -> None:
    if delay <= 0:
        fn()
        return
    op.timer = emu.loop.call_later(delay, fn)


def _start_rollout(ctx: Ctx, rec: ServiceRecord, op: OperationRecord, method: str) -> None:
    emu = ctx.emu
    key = _key(rec.project, rec.region, rec.service_id)

    def done() -> None:
        cur = emu.world.services.get(key)
        if cur is not rec:
            _complete(emu, op, rec.data, None)
            return
        err = _finish(emu, rec)
        _complete(emu, op, rec.data, err)

    _schedule(emu, op, _op_delay(emu, method), done)


# ----------------------------------------------------------------------------------------------------------
# handlers


def _parent(ctx: Ctx) -> tuple[Project, str]:
    assert ctx.project is not None
    return ctx.project, _region(ctx)


def _lookup(ctx: Ctx, project: Project, region: str, sid: str) -> ServiceRecord:
    rec = ctx.emu.world.services.get(_key(project, region, sid))
    if rec is None:
        raise ApiError(
            "NOT_FOUND",
            ctx.emu.config.not_found_message.format(
                id=sid, region=region, project=ctx.params["project"], name=f"{ctx.params['project']}/{sid}"
            ),
            reason="NOT_FOUND",
            domain=API,
        )
    return rec


def _create_record(
    ctx: Ctx,
    project: Project,
    region: str,
    sid: str,
    spec: dict[str, Any],
    validate_only: bool,
    request: str = "CreateServiceRequest",
) -> tuple[ServiceRecord, bool]:
    emu = ctx.emu
    now = emu.clock.rfc3339()
    name = f"projects/{name_project(ctx, project)}/locations/{region}/services/{sid}"
    data: dict[str, Any] = {"name": name, **copy.deepcopy(spec)}
    apply_defaults(emu, project, data)
    check_after_defaults(data.get("template") or {}, request)
    data.update(
        uid=str(uuid.uuid4()),
        generation="1",
        createTime=now,
        updateTime=now,
        creator=ctx.caller_email,
        lastModifier=ctx.caller_email,
        etag=_etag(),
    )
    rec = ServiceRecord(
        project, region, sid, data, seq=next(emu.world.seq), hosts=service_hosts(emu, project, region, sid)
    )
    return rec, validate_only


def _store(ctx: Ctx, rec: ServiceRecord) -> None:
    w = ctx.emu.world
    w.services[_key(rec.project, rec.region, rec.service_id)] = rec
    for h in rec.hosts:
        w.hosts[h] = _key(rec.project, rec.region, rec.service_id)


def _validate_service_body(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body if ctx.body is not None else {}
    return schema.validate(body, SERVICE, "service", strict=ctx.emu.config.reject_unknown_fields)


async def create_service(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    body = _validate_service_body(ctx)
    sid = ctx.query.get("serviceId", ctx.query.get("service_id", ""))
    validate_only = ctx.qbool("validateOnly", "validate_only")
    if sid == "":
        sid = "service-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    elif not SERVICE_ID_RE.match(sid):
        raise bad_request(
            SERVICE_ID_MESSAGE, [("Violation in CreateServiceRequest.service_id", SERVICE_ID_MESSAGE.split(": ", 1)[1])]
        )
    spec = _spec_of(body)
    name = f"projects/{name_project(ctx, project)}/locations/{region}/services/{sid}"
    _check_spec(ctx.emu, spec, "CreateServiceRequest", name, region=region)
    if _key(project, region, sid) in ctx.emu.world.services:
        raise ApiError(
            "ALREADY_EXISTS",
            ctx.emu.config.already_exists_message.format(id=sid, name=name),
            reason="RESOURCE_ALREADY_EXISTS",
            domain=API,
        )
    identity.check_invoker_switch(ctx, None, spec)
    identity.check_act_as(ctx, project, spec)
    rec, _ = _create_record(ctx, project, region, sid, spec, validate_only)
    return _write_result(
        ctx, rec, project, region, "run.services.create", validate_only, new_revision=True, create=True
    )


def _write_result(
    ctx: Ctx,
    rec: ServiceRecord,
    project: Project,
    region: str,
    method: str,
    validate_only: bool,
    *,
    new_revision: bool,
    create: bool,
    prior: dict[str, Any] | None = None,
) -> dict[str, Any]:
    emu = ctx.emu
    if validate_only:
        snap = copy.deepcopy(rec.data if prior is None else prior)
        op = _new_operation(ctx, project, region, method, snap)
        _schedule(
            emu,
            op,
            0.0 if emu.config.validate_only_operation == "done" else _op_delay(emu, method),
            lambda: _complete(emu, op, snap, None),
        )
        return render_operation(op, ctx.int_enums)
    if create:
        _store(ctx, rec)
    _begin(emu, rec, new_revision, ctx)
    op = _new_operation(ctx, project, region, method, rec.data)
    _start_rollout(ctx, rec, op, method)
    return render_operation(op, ctx.int_enums)


async def get_service(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    rec = _lookup(ctx, project, region, ctx.params["service"])
    return _cached_render(ctx, rec)


def _cached_render(ctx: Ctx, rec: ServiceRecord) -> dict[str, Any]:
    cached = rec.render_cache.get(ctx.int_enums)
    if cached is None:
        cached = rec.render_cache[ctx.int_enums] = _render_service(ctx, rec.data)
    return cached


async def list_services(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    cfg = ctx.emu.config
    size = ctx.qint("pageSize", "page_size") or cfg.default_page_size
    size = min(size, cfg.max_page_size)
    token = ctx.query.get("pageToken", ctx.query.get("page_token", ""))
    show_deleted = ctx.qbool("showDeleted", "show_deleted")
    recs = [r for (n, reg, _), r in ctx.emu.world.services.items() if n == project.number and reg == region]
    if not show_deleted:
        recs = [r for r in recs if not r.deleting]
    recs.sort(key=lambda r: (r.data.get("createTime", ""), r.seq), reverse=True)
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeDecodeError):
            raise invalid("Invalid page token.", "page_token") from None
    page = recs[start : start + size]
    out: dict[str, Any] = {}
    if page:
        out["services"] = [_cached_render(ctx, r) for r in page]
    if start + size < len(recs):
        out["nextPageToken"] = base64.urlsafe_b64encode(f"o:{start + size}".encode()).decode()
    return out


def _normalise_mask(raw: str) -> list[list[str]]:
    paths = []
    for p in raw.split(","):
        p = p.strip()
        if not p:
            continue
        segs = [schema.camel(s) for s in p.split(".")]
        paths.append(segs)
    return paths


async def patch_service(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    sid = ctx.params["service"]
    body = _validate_service_body(ctx)
    validate_only = ctx.qbool("validateOnly", "validate_only")
    allow_missing = ctx.qbool("allowMissing", "allow_missing")
    force = ctx.qbool("forceNewRevision", "force_new_revision")
    raw_mask = ctx.query.get("updateMask", ctx.query.get("update_mask"))
    key = _key(project, region, sid)
    rec = ctx.emu.world.services.get(key)
    name = f"projects/{name_project(ctx, project)}/locations/{region}/services/{sid}"
    paths = _normalise_mask(raw_mask) if raw_mask else []
    for segs in paths:
        if segs[0] not in SETTABLE and segs != ["*"]:
            msg = f"Invalid field mask path: '{'.'.join(segs)}' is not a settable field of Service."
            raise bad_request(msg, [("update_mask", msg)])
    if rec is None and not allow_missing:
        _lookup(ctx, project, region, sid)  # raises NOT_FOUND
    if rec is None or rec.deleting:
        if rec is not None:
            raise ApiError(
                "FAILED_PRECONDITION", f"Resource '{sid}' is being deleted.", reason="FAILED_PRECONDITION", domain=API
            )
        if ctx.emu.permissions_denied(ctx, "run.services.create"):
            raise ctx.emu.permission_error(ctx, "run.services.create")
        spec = _spec_of(body)
        _check_spec(ctx.emu, spec, "UpdateServiceRequest", name, region=region)
        identity.check_invoker_switch(ctx, None, spec)
        identity.check_act_as(ctx, project, spec)
        new, _ = _create_record(ctx, project, region, sid, spec, validate_only, "UpdateServiceRequest")
        return _write_result(
            ctx, new, project, region, "run.services.patch", validate_only, new_revision=True, create=True
        )
    cur = rec.data
    etag = body.get("etag")
    if etag and etag != cur.get("etag"):
        raise _stale(ctx, name)
    old_spec = _spec_of(cur)
    if not paths or ["*"] in paths:
        spec = _spec_of(body)
    else:
        spec = copy.deepcopy(old_spec)
        for segs in paths:
            present, value = _get_path(body, segs)
            _set_path(spec, segs, present, value)
    _check_spec(ctx.emu, spec, "UpdateServiceRequest", name, region=region, old=old_spec)
    identity.check_invoker_switch(ctx, old_spec, spec)
    apply_defaults(ctx.emu, project, spec)
    check_after_defaults(spec.get("template") or {}, "UpdateServiceRequest")
    identity.check_act_as(ctx, project, spec)
    changed = spec != old_spec
    template_changed = spec.get("template") != old_spec.get("template") or force
    if template_changed:
        _check_revision_name(rec, spec)
    new_data = {k: v for k, v in cur.items() if k not in SETTABLE}
    new_data.update(copy.deepcopy(spec))
    now = ctx.emu.clock.rfc3339()
    new_data["etag"] = _etag()
    new_data["updateTime"] = now
    new_data["lastModifier"] = ctx.caller_email
    if changed or force:
        new_data["generation"] = str(int(cur.get("generation", "0")) + 1)
    if validate_only:
        return _write_result(
            ctx, rec, project, region, "run.services.patch", True, new_revision=False, create=False, prior=new_data
        )
    rec.data = new_data
    rec.touch()
    return _write_result(
        ctx, rec, project, region, "run.services.patch", False, new_revision=template_changed, create=False
    )


def _check_revision_name(rec: ServiceRecord, spec: dict[str, Any]) -> None:
    """A named revision (``template.revision``) may be reused only with the same configuration."""
    wanted = (spec.get("template") or {}).get("revision")
    prior = rec.created_revisions.get(wanted or "")
    if wanted and prior is not None and prior != spec.get("template"):
        raise ApiError(
            "ALREADY_EXISTS",
            f"Revision named '{wanted}' with different configuration already exists.",
            reason="RESOURCE_ALREADY_EXISTS",
            domain=API,
        )


def _stale(ctx: Ctx, name: str) -> ApiError:
    status = ctx.emu.config.stale_etag_status
    return ApiError(
        status,
        f"The etag provided does not match the current etag of resource '{name}'. Please fetch the latest "
        "version and retry.",
        reason="ETAG_MISMATCH" if status == "ABORTED" else "FAILED_PRECONDITION",
        domain=API,
    )


async def delete_service(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    sid = ctx.params["service"]
    rec = _lookup(ctx, project, region, sid)
    etag = ctx.query.get("etag")
    if etag and etag != rec.data.get("etag"):
        raise _stale(ctx, rec.data["name"])
    validate_only = ctx.qbool("validateOnly", "validate_only")
    emu = ctx.emu
    if validate_only:
        op = _new_operation(ctx, project, region, "run.services.delete", rec.data)
        _complete(emu, op, rec.data, None)
        return render_operation(op, ctx.int_enums)
    now = emu.clock.time()
    rec.deleting = True
    rec.touch()
    rec.data["deleteTime"] = emu.clock.rfc3339()
    from gcpemu.clock import rfc3339

    rec.data["expireTime"] = rfc3339(now + 30 * 86400)
    rec.data["reconciling"] = True
    rec.data["etag"] = _etag()
    op = _new_operation(ctx, project, region, "run.services.delete", rec.data)
    key = _key(project, region, sid)

    def done() -> None:
        w = emu.world
        if w.services.get(key) is rec:
            del w.services[key]
            for h in (*rec.hosts, *rec.tag_hosts):
                w.hosts.pop(h, None)
            w.run_policies.pop(key, None)
            if emu.config.iap_delete_policy_with_service:
                w.iap_policies.pop(key, None)
        rec.data["reconciling"] = False
        rec.touch()
        _complete(emu, op, rec.data, None)

    delay = emu.config.delete_delay
    _schedule(emu, op, _op_delay(emu, "run.services.delete") if delay is None else delay, done)
    return render_operation(op, ctx.int_enums)


# --- IAM on the service


def iam_rules(emu: Emulator) -> IamRules:
    cfg = emu.config
    return IamRules(
        max_principals=cfg.max_principals, max_groups=cfg.max_groups, allow_conditions=cfg.run_iam_conditions
    )


async def get_iam(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    sid = ctx.params["service"]
    _lookup(ctx, project, region, sid)
    version = check_policy_version_param(
        ctx.query.get("options.requestedPolicyVersion", ctx.query.get("options.requested_policy_version"))
    )
    pol = ctx.emu.world.run_policies.get(_key(project, region, sid), Policy())
    return pol.view(version)


async def set_iam(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    sid = ctx.params["service"]
    _lookup(ctx, project, region, sid)
    body = schema.validate(ctx.body or {}, SET_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    key = _key(project, region, sid)
    cur = ctx.emu.world.run_policies.get(key, Policy())
    rules = orgpolicy.rules_for(iam_rules(ctx.emu), ctx.emu.config, project)
    new = set_policy(cur, body, rules, ctx.emu.account_exists)
    ctx.emu.world.run_policies[key] = new
    return new.view(3)


async def test_iam(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    _lookup(ctx, project, region, ctx.params["service"])
    body = schema.validate(ctx.body or {}, TEST_IAM, "", strict=ctx.emu.config.reject_unknown_fields)
    return ctx.emu.test_permissions(ctx, body.get("permissions") or [])


# --- operations


def _op_lookup(ctx: Ctx) -> OperationRecord:
    project, region = _parent(ctx)
    name = f"projects/{name_project(ctx, project)}/locations/{region}/operations/{ctx.params['operation']}"
    op = ctx.emu.world.operations.get(name)
    if op is None:
        for alt in (project.id, project.number):
            op = ctx.emu.world.operations.get(f"projects/{alt}/locations/{region}/operations/{ctx.params['operation']}")
            if op is not None:
                break
    if op is None or op.kind != "run":
        raise ApiError(
            "NOT_FOUND",
            ctx.emu.config.operation_not_found_message.format(name=name),
            reason="NOT_FOUND",
            domain=API,
        )
    return op


async def get_operation(ctx: Ctx) -> dict[str, Any]:
    return render_operation(_op_lookup(ctx), ctx.int_enums)


async def delete_operation(ctx: Ctx) -> dict[str, Any]:
    op = _op_lookup(ctx)
    ctx.emu.world.operations.pop(op.name, None)
    return {}


async def wait_operation(ctx: Ctx) -> dict[str, Any]:
    import asyncio

    body = schema.validate(ctx.body or {}, WAIT_OP, "", strict=ctx.emu.config.reject_unknown_fields)
    op = _op_lookup(ctx)
    timeout = float(str(body.get("timeout") or "60s").rstrip("s") or 60)
    if not op.done:
        if op.event is None:
            op.event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(op.event.wait(), timeout=min(timeout, 600.0))
    return render_operation(op, ctx.int_enums)


async def list_operations(ctx: Ctx) -> dict[str, Any]:
    project, region = _parent(ctx)
    prefixes = tuple(f"projects/{p}/locations/{region}/operations/" for p in {project.id, project.number})
    ops = [o for n, o in ctx.emu.world.operations.items() if n.startswith(prefixes) and o.kind == "run"]
    ops.sort(key=lambda o: o.seq, reverse=True)
    size = ctx.qint("pageSize", "page_size") or 100
    token = ctx.query.get("pageToken", "")
    start = int(token) if token.isdigit() else 0
    page = ops[start : start + size]
    out: dict[str, Any] = {}
    if page:
        out["operations"] = [render_operation(o, ctx.int_enums) for o in page]
    if start + size < len(ops):
        out["nextPageToken"] = str(start + size)
    return out


_SVC = "/v2/projects/{project}/locations/{region}/services"
_OPS = "/v2/projects/{project}/locations/{region}/operations"

_D = "run.v2.json:projects.locations."
_SVC_V1 = "/v1/projects/{project}/locations/{region}/services"
_D1 = "run.v1.json:projects.locations."

ROUTES: list[Route] = [
    route(
        "POST", _SVC, "run.services.create", API, "write", "run.services.create", create_service, _D + "services.create"
    ),
    route("GET", _SVC, "run.services.list", API, "read", "run.services.list", list_services, _D + "services.list"),
    route(
        "GET",
        _SVC + "/{service}",
        "run.services.get",
        API,
        "read",
        "run.services.get",
        get_service,
        _D + "services.get",
    ),
    route(
        "PATCH",
        _SVC + "/{service}",
        "run.services.patch",
        API,
        "write",
        "run.services.update",
        patch_service,
        _D + "services.patch",
    ),
    route(
        "DELETE",
        _SVC + "/{service}",
        "run.services.delete",
        API,
        "write",
        "run.services.delete",
        delete_service,
        _D + "services.delete",
    ),
    route(
        "GET",
        _SVC + "/{service}:getIamPolicy",
        "run.services.getIamPolicy",
        API,
        "read",
        "run.services.getIamPolicy",
        get_iam,
        _D + "services.getIamPolicy",
    ),
    route(
        "POST",
        _SVC + "/{service}:setIamPolicy",
        "run.services.setIamPolicy",
        API,
        "write",
        "run.services.setIamPolicy",
        set_iam,
        _D + "services.setIamPolicy",
    ),
    route(
        "POST",
        _SVC + "/{service}:testIamPermissions",
        "run.services.testIamPermissions",
        API,
        "read",
        None,
        test_iam,
        _D + "services.testIamPermissions",
    ),
    # Cloud Run Admin API v1 serves the same service policies at v1 paths; `gcloud run services
    # add-iam-policy-binding` and Terraform's google_cloud_run_service_iam_* use them (gcp-api.md §10).
    route(
        "GET",
        _SVC_V1 + "/{service}:getIamPolicy",
        "run.v1.services.getIamPolicy",
        API,
        "read",
        "run.services.getIamPolicy",
        get_iam,
        _D1 + "services.getIamPolicy",
    ),
    route(
        "POST",
        _SVC_V1 + "/{service}:setIamPolicy",
        "run.v1.services.setIamPolicy",
        API,
        "write",
        "run.services.setIamPolicy",
        set_iam,
        _D1 + "services.setIamPolicy",
    ),
    route(
        "POST",
        _SVC_V1 + "/{service}:testIamPermissions",
        "run.v1.services.testIamPermissions",
        API,
        "read",
        None,
        test_iam,
        _D1 + "services.testIamPermissions",
    ),
    route(
        "GET",
        _OPS,
        "run.operations.list",
        API,
        "read",
        "run.operations.list",
        list_operations,
        _D + "operations.list",
    ),
    route(
        "GET",
        _OPS + "/{operation}",
        "run.operations.get",
        API,
        "read",
        "run.operations.get",
        get_operation,
        _D + "operations.get",
    ),
    route(
        "DELETE",
        _OPS + "/{operation}",
        "run.operations.delete",
        API,
        "write",
        "run.operations.delete",
        delete_operation,
        _D + "operations.delete",
    ),
    route(
        "POST",
        _OPS + "/{operation}:wait",
        "run.operations.wait",
        API,
        "read",
        "run.operations.get",
        wait_operation,
        _D + "operations.wait",
    ),
]
