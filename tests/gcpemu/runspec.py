"""Cloud Run Admin API v2's semantic checks on a Service body (what the discovery schema cannot say).

The schema layer (``schema.validate``) rejects unknown fields, wrong JSON types and unknown enum values. What
is left is the service's own rules: system annotations, container/volume references, the ingress container,
traffic targets, scaling bounds, GPUs, Cloud SQL names and VPC access. Each rule answers Google's 400
``INVALID_ARGUMENT`` with a ``BadRequest`` field violation, in the ``Violation in {Request}.service.{path}:``
form Google uses; where Google's text is known it is used verbatim (docs/emulator.md says which are).
The rules run on the desired spec before defaults are applied, except :func:`check_after_defaults`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gcpemu.errors import ApiError, bad_request

if TYPE_CHECKING:
    from gcpemu.server import Emulator

SYSTEM_PREFIXES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
GPU_KEY = "nvidia.com/gpu"
CLOUD_SQL_RE = re.compile(r"^[a-zA-Z0-9-]{1,}:[a-zA-Z0-9-]{1,}:[a-z][a-z0-9-]{0,}$")
CONNECTOR_RE = re.compile(r"^projects/[^/]+/locations/[^/]+/connectors/[^/]+$")
NETWORK_RE = re.compile(r"^(projects/[^/]+/global/networks/)?[a-z]([-a-z0-9]*[a-z0-9])?$")
SUBNET_RE = re.compile(r"^(projects/[^/]+/regions/[^/]+/subnetworks/)?[a-z]([-a-z0-9]*[a-z0-9])?$")
TAG_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"


def violation(request: str, path: str, description: str) -> ApiError:
    """Google's form: message ``Violation in {Request}.service.{path}: {description}``, one field violation."""
    field = f"Violation in {request}.service.{path}"
    return bad_request(f"{field}: {description}", [(field, description)])


def is_system_key(key: str) -> bool:
    return "/" in key and key.split("/", 1)[0] in SYSTEM_PREFIXES


def check_service(
    emu: Emulator, spec: dict[str, Any], request: str, region: str, old: dict[str, Any] | None, service_id: str
) -> None:
    """Every semantic rule on the desired spec; raises the first violation, as Google reports one at a time."""
    template = spec.get("template") or {}
    _check_metadata(spec, template, request, old)
    _check_containers(template, request)
    _check_volumes(template, request)
    _check_scaling(spec, template, request)
    _check_vpc(template, request)
    _check_gpu(emu, template, request, region)
    _check_traffic(spec, request, service_id)


def _check_metadata(spec: dict[str, Any], template: dict[str, Any], request: str, old: dict[str, Any] | None) -> None:
    # Service annotations are "rejected in new resources": a v1-era key already on the service may stay.
    kept = set((old or {}).get("annotations") or {})
    for k in spec.get("annotations") or {}:
        if is_system_key(k) and k not in kept:
            raise violation(request, f"annotations[{k}]", "system annotations are not supported in Cloud Run API v2.")
    for k in template.get("annotations") or {}:
        if is_system_key(k):
            raise violation(
                request, f"template.annotations[{k}]", "system annotations are not supported in Cloud Run API v2."
            )
    for where, labels in (("labels", spec.get("labels")), ("template.labels", template.get("labels"))):
        for k in labels or {}:
            if is_system_key(k):
                raise violation(request, f"{where}[{k}]", "system labels are not supported in Cloud Run API v2.")


def _containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in template.get("containers") or [] if isinstance(c, dict)]


def ingress_index(template: dict[str, Any]) -> int | None:
    """The container that receives requests: the only one, or the one that declares a port."""
    cs = _containers(template)
    if len(cs) == 1:
        return 0
    with_ports = [i for i, c in enumerate(cs) if c.get("ports")]
    return with_ports[0] if len(with_ports) == 1 else None


def _check_containers(template: dict[str, Any], request: str) -> None:
    cs = _containers(template)
    names: dict[str, int] = {}
    for i, c in enumerate(cs):
        if len(c.get("ports") or []) > 1:
            raise violation(request, f"template.containers[{i}].ports", "ports should contain 0 or 1 port.")
        name = c.get("name") or ""
        if name and name in names:
            raise violation(request, f"template.containers[{i}].name", f"Container name '{name}' is not unique.")
        names[name] = i
        reserved = [e.get("name") for e in c.get("env") or [] if e.get("name") in RESERVED_ENV]
        if reserved:
            raise violation(
                request,
                f"template.containers[{i}].env",
                f"The following reserved env names were provided: {', '.join(reserved)}. These values are "
                "automatically set by the system.",
            )
    if len(cs) > 1 and sum(1 for c in cs if c.get("ports")) != 1:
        msg = "template.containers: Revision template should contain exactly one container with an exposed port."
        raise bad_request(msg, [("template.containers", msg.split(": ", 1)[1])])
    _check_mounts(template, cs, request)
    _check_depends_on(cs, request)


def _check_mounts(template: dict[str, Any], cs: list[dict[str, Any]], request: str) -> None:
    volumes = {v.get("name") for v in template.get("volumes") or []}
    for i, c in enumerate(cs):
        for j, m in enumerate(c.get("volumeMounts") or []):
            if m.get("name") not in volumes:
                raise violation(
                    request,
                    f"template.containers[{i}].volume_mounts[{j}].name",
                    f"Volume '{m.get('name')}' was not found in the revision template's volumes.",
                )


def _check_depends_on(cs: list[dict[str, Any]], request: str) -> None:
    by_name = {c.get("name"): c for c in cs if c.get("name")}
    for i, c in enumerate(cs):
        for dep in c.get("dependsOn") or []:
            if dep not in by_name or dep == c.get("name"):
                raise violation(request, f"template.containers[{i}].depends_on", f"Container '{dep}' not found.")
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str) -> bool:
        if state.get(name) == 1:
            return True
        if state.get(name) == 2:
            return False
        state[name] = 1
        cyclic = any(visit(d) for d in by_name[name].get("dependsOn") or [])
        state[name] = 2
        return cyclic

    for i, c in enumerate(cs):
        if c.get("name") and visit(c["name"]):
            raise violation(request, f"template.containers[{i}].depends_on", "Container dependencies form a cycle.")


def check_after_defaults(template: dict[str, Any], request: str) -> None:
    """A container others wait for must have a startup probe (the ingress container gets a default one)."""
    cs = _containers(template)
    by_name = {c.get("name"): c for c in cs if c.get("name")}
    for i, c in enumerate(cs):
        for dep in c.get("dependsOn") or []:
            if not by_name[dep].get("startupProbe"):
                raise violation(
                    request,
                    f"template.containers[{i}].depends_on",
                    f"Dependent container '{dep}' must have startup probe specified",
                )


def _check_volumes(template: dict[str, Any], request: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(template.get("volumes") or []):
        name = v.get("name") or ""
        if name in seen:
            raise violation(request, f"template.volumes[{i}].name", f"Volume name '{name}' is not unique.")
        seen.add(name)
        bad = [
            n
            for n in (v.get("cloudSqlInstance") or {}).get("instances") or []
            if len(n) > 97 or not CLOUD_SQL_RE.match(n) or n.endswith("-")
        ]
        if bad:
            raise violation(
                request,
                f"template.volumes[{i}].cloud_sql_instance.instances",
                f"Invalid cloud sql instance names: {bad!r}. Instance names must be 97 characters or less, matching "
                "[a-zA-Z0-9-]{1,}:[a-zA-Z0-9-]{1,}:[a-z][a-z0-9-]{0,}, and cannot end in an hyphen",
            )


def _check_scaling(spec: dict[str, Any], template: dict[str, Any], request: str) -> None:
    for where, scaling in (("template.scaling", template.get("scaling")), ("scaling", spec.get("scaling"))):
        s = scaling or {}
        lo, hi = int(s.get("minInstanceCount") or 0), int(s.get("maxInstanceCount") or 0)
        if hi and lo > hi:
            raise violation(request, f"{where}.max_instance_count", "must be greater or equal than min_instance_count.")


def _check_vpc(template: dict[str, Any], request: str) -> None:
    vpc = template.get("vpcAccess")
    if not vpc:
        return
    nics = vpc.get("networkInterfaces") or []
    connector = vpc.get("connector") or ""
    if connector and nics:
        raise violation(request, "template.vpc_access", "Only one of connector or network_interfaces may be specified.")
    if connector and not CONNECTOR_RE.match(connector):
        raise violation(
            request,
            "template.vpc_access.connector",
            f"Invalid connector name '{connector}'. Expected format: "
            "projects/{project}/locations/{location}/connectors/{connector}.",
        )
    if len(nics) > 1:
        raise violation(
            request, "template.vpc_access.network_interfaces", "Only a single network interface is supported."
        )
    for i, n in enumerate(nics):
        where = f"template.vpc_access.network_interfaces[{i}]"
        net, sub = n.get("network") or "", n.get("subnetwork") or ""
        if not net and not sub:
            raise violation(request, where, "At least one of network or subnetwork must be specified.")
        if net and not NETWORK_RE.match(net):
            raise violation(request, f"{where}.network", f"Invalid network name '{net}'.")
        if sub and not SUBNET_RE.match(sub):
            raise violation(request, f"{where}.subnetwork", f"Invalid subnetwork name '{sub}'.")


_UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_SUFFIXES = sorted(_UNITS, key=len, reverse=True)  # "Mi" before "M"


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a number (cpu in cores, memory in bytes); 0 when unreadable."""
    s = str(value or "").strip()
    for suffix in _SUFFIXES:
        if s.endswith(suffix):
            try:
                return float(s[: -len(suffix)]) * _UNITS[suffix]
            except ValueError:
                return 0.0
    try:
        return float(s)
    except ValueError:
        return 0.0


def _check_gpu(emu: Emulator, template: dict[str, Any], request: str, region: str) -> None:
    accel = (template.get("nodeSelector") or {}).get("accelerator") or ""
    cs = _containers(template)
    gpu = [i for i, c in enumerate(cs) if GPU_KEY in ((c.get("resources") or {}).get("limits") or {})]
    if not accel:
        if gpu:
            raise violation(
                request,
                f"template.containers[{gpu[0]}].resources.limits",
                f"'{GPU_KEY}' requires node_selector.accelerator to be set.",
            )
        return
    cfg = emu.config
    if accel not in cfg.gpu_accelerators:
        raise violation(
            request,
            "template.node_selector.accelerator",
            f"Accelerator type '{accel}' is not supported. Supported values: {', '.join(cfg.gpu_accelerators)}.",
        )
    if region not in cfg.gpu_regions:
        raise violation(request, "template.node_selector.accelerator", f"GPU is not supported in region '{region}'.")
    if not gpu:
        raise violation(
            request,
            "template.containers",
            f"A container must set resources.limits['{GPU_KEY}'] when a GPU is requested.",
        )
    for i in gpu:
        res = cs[i].get("resources") or {}
        limits = res.get("limits") or {}
        where = f"template.containers[{i}].resources"
        if res.get("cpuIdle"):
            raise violation(request, f"{where}.cpu_idle", "GPU requires CPU to be always allocated (cpu_idle: false).")
        if quantity(limits.get("cpu", "1")) < 4:
            raise violation(request, f"{where}.limits.cpu", "GPU requires at least 4 CPU.")
        if quantity(limits.get("memory", "512Mi")) < 16 * 2**30:
            raise violation(request, f"{where}.limits.memory", "GPU requires at least 16Gi of memory.")


def _check_traffic(spec: dict[str, Any], request: str, service_id: str) -> None:
    traffic = spec.get("traffic") or []
    if traffic and sum(int(t.get("percent") or 0) for t in traffic) != 100:
        raise violation(request, "traffic", "traffic percentages must add up to 100.")
    tags: set[str] = set()
    for i, t in enumerate(traffic):
        if t.get("type") == REVISION and not t.get("revision"):
            raise violation(
                request,
                f"traffic[{i}].revision",
                "revision is required when type is TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION.",
            )
        tag = t.get("tag") or ""
        if not tag:
            continue
        if tag in tags:
            raise violation(request, f"traffic[{i}].tag", f"Tag '{tag}' is used by more than one traffic target.")
        tags.add(tag)
        if not TAG_RE.match(tag) or len(tag) + len(service_id) > 46:
            raise violation(
                request,
                f"traffic[{i}].tag",
                f"Tag '{tag}' must be lowercase letters, digits and hyphens, and together with the service name at "
                "most 46 characters.",
            )
