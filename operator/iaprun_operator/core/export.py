"""An existing Cloud Run service, its IAM and its IAP policy, written back as the IapRunService that declares it.

Pure: ``iaprun export`` reads, this module writes the manifest. The manifest is made so the round trip is exact:
applied, its plan is empty, and a ``Full`` pass then writes nothing the service does not already hold (no new
revision). So it carries the template as Cloud Run reports it (server defaults included), the spec-level fields
with Cloud Run v2 names and enum values (SPEC-V2), IAP on or off, and the accessors read from the IAP policy:
unconditional grants as members, the operator's expiry conditions as ``expires``, and conditions of the access
level form (``"accessPolicies/N/accessLevels/X" in request.auth.access_levels``, optionally ``&& request.time <
timestamp(...)``) as ``accessLevels`` (``accessor_of`` is the seam for further forms). A grant under any other
condition cannot be declared: the manifest then says ``accessorsPolicy: Additive`` (such grants are kept, never
revoked) and a note says why. A public run.invoker binding makes it ``publicInvokerBindings: Report``.
The IAP resource's settings become ``spec.iap.settings``: the IAP v1 fields set to anything but their default.
A custom OAuth client's secret cannot be exported (IAP keeps only its SHA-256): the manifest declares its
``clientId`` and no ``clientSecretSource``, so the object does not own the secret and leaves it in place (the plan
stays empty, the round trip exact), and a note says how to hand the secret to the operator (a Secret Manager
reference).
It is adopted ``IfUnowned``, ``managementPolicy: ObserveOnly`` and ``deletionPolicy: Abandon``: importing a
service never puts it at risk.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iaprun_operator.core.iam import format_time, parse_expression
from iaprun_operator.core.iapsettings import SECRET, SECRET_FIELD, SECRET_SOURCE, SHAPE
from iaprun_operator.core.model import is_public_member, normalise_member
from iaprun_operator.core.names import IAP_ACCESSOR_ROLE, OWNER_LABEL, RESERVED_LABEL_PREFIX, RUN_INVOKER_ROLE

_SYSTEM_PREFIXES = ("goog-", "cloud.googleapis.com", "run.googleapis.com", RESERVED_LABEL_PREFIX, OWNER_LABEL)
_DEFAULT_INGRESS = "INGRESS_TRAFFIC_ALL"


@dataclass
class Exported:
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    """What the manifest could not say exactly, for the person importing (printed as YAML comments)."""


def accessor_of(member: str, condition: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The accessor entry that declares ``member``'s grant under ``condition``, or None if no spec can say it.

    A condition is declarable when it is one the operator writes (``core.iam.parse_expression``): the access levels
    (any one of them) and then the expiry, whatever its title."""
    entry: dict[str, Any] = {"member": normalise_member(member)}
    if not condition:
        return entry
    grant = parse_expression(str(condition.get("expression", "")))
    if grant is None:
        return None
    if grant.expires is not None:
        entry["expires"] = format_time(grant.expires)
    if grant.access_levels:
        entry["accessLevels"] = list(grant.access_levels)
    return entry


def _accessors(policy: Mapping[str, Any], notes: list[str]) -> tuple[list[dict[str, Any]], bool]:
    """The declared accessors, and whether a grant the spec cannot declare was found."""
    found: dict[str, dict[str, Any]] = {}
    undeclarable = False
    for binding in policy.get("bindings") or ():
        if binding.get("role") != IAP_ACCESSOR_ROLE:
            continue
        for member in binding.get("members") or ():
            entry = accessor_of(member, binding.get("condition"))
            if entry is None or entry["member"] in found:
                undeclarable = True
                expression = (binding.get("condition") or {}).get("expression", "")
                notes.append(f"{member} holds {IAP_ACCESSOR_ROLE} under a condition no spec declares: {expression}")
                continue
            found[entry["member"]] = entry
    return [found[m] for m in sorted(found)], undeclarable


_DEFAULT_ACCOUNT_RE = re.compile(r"^\d+-compute@developer\.gserviceaccount\.com$")
_TEMPLATE_DEFAULTS = {"maxInstanceRequestConcurrency": 80, "timeout": "300s"}


def _container_defaults(container: dict[str, Any]) -> dict[str, Any]:
    """A container without the values Cloud Run fills in when they are not given (it fills them in again)."""
    port = 8080
    if (ports := container.get("ports")) and len(ports) == 1 and ports[0].get("name", "http1") == "http1":
        port = int(ports[0].get("containerPort", 8080))
        if port == 8080:
            container.pop("ports")
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    if str(limits.get("cpu")) in ("1", "1000m"):
        limits.pop("cpu")
    if limits.get("memory") == "512Mi":
        limits.pop("memory")
    if resources.get("cpuIdle") is True:
        resources.pop("cpuIdle")
    probe = {"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1, "tcpSocket": {"port": port}}
    if container.get("startupProbe") == probe:
        container.pop("startupProbe")
    return _pruned(container)


def _pruned(value: dict[str, Any]) -> dict[str, Any]:
    out = {k: _pruned(v) if isinstance(v, dict) else v for k, v in value.items()}
    return {k: v for k, v in out.items() if v not in (None, "", [], {})}


def _template(service: Mapping[str, Any]) -> dict[str, Any]:
    """The template as deployed, less what Cloud Run would fill in anyway (so the manifest reads as one a person
    writes; an undeclared field is left to Cloud Run, so the round trip stays exact)."""
    template = copy.deepcopy(dict(service.get("template") or {}))
    template["containers"] = [_container_defaults(c) for c in template.get("containers") or ()]
    for key, default in _TEMPLATE_DEFAULTS.items():
        if template.get(key) == default:
            template.pop(key)
    if (template.get("scaling") or {}).get("maxInstanceCount") == 100:
        template["scaling"].pop("maxInstanceCount")
    if _DEFAULT_ACCOUNT_RE.match(str(template.get("serviceAccount", ""))):
        template.pop("serviceAccount")
    return _pruned(template)


def _service_fields(service: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if service.get("description"):
        spec["description"] = service["description"]
    labels = {k: v for k, v in (service.get("labels") or {}).items() if not k.startswith(_SYSTEM_PREFIXES)}
    if labels:
        spec["labels"] = labels
    if (ingress := service.get("ingress")) and ingress not in (_DEFAULT_INGRESS, "INGRESS_TRAFFIC_UNSPECIFIED"):
        spec["ingress"] = ingress
    if (stage := service.get("launchStage")) and stage != "GA":
        spec["launchStage"] = stage
    if service.get("invokerIamDisabled"):
        spec["invokerIamDisabled"] = True
    return spec


def export(
    service: Mapping[str, Any],
    run_policy: Mapping[str, Any],
    iap_policy: Mapping[str, Any],
    *,
    project: str,
    namespace: str = "",
    iap_settings: Mapping[str, Any] | None = None,
) -> Exported:
    """The manifest for ``service`` (a v2 Service as ``services.get`` returns it), its two policies and its IAP
    resource's settings (``getIapSettings``); ``project`` is the project ID the user named (Cloud Run may spell the
    service's name with the project number)."""
    _, region, name = _place(str(service.get("name", "")))
    notes: list[str] = []
    accessors, undeclarable = _accessors(iap_policy, notes)
    iap: dict[str, Any] = {"enabled": bool(service.get("iapEnabled")), "accessors": accessors}
    if undeclarable:
        iap["accessorsPolicy"] = "Additive"
    if declared := settings_of(iap_settings or {}, SHAPE, "", notes):
        iap["settings"] = declared
    public = sorted(
        m
        for b in run_policy.get("bindings") or ()
        if b.get("role") == RUN_INVOKER_ROLE
        for m in b.get("members") or ()
        if is_public_member(m)
    )
    if public and iap["enabled"]:
        iap["publicInvokerBindings"] = "Report"
        notes.append(f"{RUN_INVOKER_ROLE} is granted to {', '.join(public)}: kept as found (publicInvokerBindings)")
    metadata: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    spec = {
        "projectID": project,
        "region": region,
        "serviceName": name,
        "adoption": "IfUnowned",
        "managementPolicy": "ObserveOnly",
        "deletionPolicy": "Abandon",
        **_service_fields(service),
        "iap": iap,
        "template": _template(service),
    }
    manifest = {"apiVersion": "iaprun.dev/v1alpha1", "kind": "IapRunService", "metadata": metadata, "spec": spec}
    return Exported(manifest, notes)


def _default(value: Any) -> bool:
    """A value IAP holds when the field was never set (proto3 JSON: Google omits these on output)."""
    return value in (None, False, "", [], {})


def settings_of(live: Any, shape: Mapping[str, Any], path: str, notes: list[str]) -> dict[str, Any]:
    """The IAP v1 settings fields of ``shape`` set to anything but their default, as ``spec.iap.settings`` says
    them; a client secret found set adds a note (it cannot be exported)."""
    out: dict[str, Any] = {}
    node: Mapping[str, Any] = live if isinstance(live, Mapping) else {}
    for key, kind in shape.items():
        where, value = f"{path}.{key}" if path else key, node.get(key)
        if kind == SECRET:
            if node.get(SECRET_FIELD + "Sha256"):
                notes.append(_secret_note(path, str(node.get("clientId") or "")))
        elif isinstance(kind, dict):
            if inner := settings_of(value, kind, where, notes):
                out[key] = inner
        elif isinstance(kind, tuple) and kind[0] == "atomic":
            atomic = {k: v for k, v in (value or {}).items() if k in kind[1] and not _default(v)}
            if atomic:
                out[key] = atomic
        elif isinstance(value, list):
            if items := [v for v in value if not _default(v)]:
                out[key] = items
        elif not _default(value):
            out[key] = value
    return out


def _secret_note(path: str, client: str) -> str:
    return (
        f"iap.settings.{path} uses the custom OAuth client {client}; IAP never returns its secret, so the manifest "
        "declares the clientId only and the operator leaves the secret in place. To have the operator manage it, "
        f"store it in Secret Manager and add under {path}: "
        f"{SECRET_SOURCE}: {{secretKeyRef: {{secret: SECRET-NAME, version: latest}}}}"
    )


def _place(name: str) -> tuple[str, str, str]:
    """(project, region, service) of ``projects/P/locations/R/services/S``."""
    parts = name.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "services":
        raise ValueError(f"not a Cloud Run service name: {name!r}")
    return parts[1], parts[3], parts[5]
