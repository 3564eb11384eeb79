"""Every power an IapRunService asks the operator to use on its behalf, read out of a parsed spec.

The operator's Google account can do far more than any one tenant may: create services in every tenant
project, run revisions as many service accounts, read their secrets, pull any image. Whatever a spec names
that the operator would use with that authority is a *delegated reference*, and the tenancy policy must see
each one before any Google call. Keeping the extraction in one place means a new spec field that names a
Google resource is added here and so cannot bypass the policy by being forgotten in one of its callers.
Today: project, region, name, runtime account, secrets (env and volumes), images, VPC networks/subnetworks/
connectors, Cloud SQL instances, buckets, NFS servers, the KMS key, the Binary Authorization policy, and the
IAP and public-access switches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from iaprun_operator.core.iapsettings import secret_references
from iaprun_operator.core.model import PublicInvokerPolicy, Spec


@dataclass(frozen=True)
class LiteralEnv:
    """An env entry whose value is written in the spec itself (``value:``), not a Secret Manager reference."""

    container: str
    """The container's name, or ``containers[i]`` when it has none."""
    name: str


@dataclass(frozen=True)
class References:
    """What one spec asks for, in the order the tenancy policy judges it."""

    project: str | None
    """The resolved project (None only where nobody names one; the operator always has one)."""
    region: str
    service_name: str
    service_account: str | None
    """The runtime identity (``template.serviceAccount``); None means the project's default compute account."""
    secret_projects: tuple[str, ...]
    """Projects of every Secret Manager secret referenced (env, then volumes), in spec order, each once."""
    images: tuple[str, ...]
    accessors: tuple[str, ...]
    iap_enabled: bool
    public_invoker_bindings: bool
    """``publicInvokerBindings: Report``: public invoker bindings are kept."""
    invoker_iam_disabled: bool
    literal_env: tuple[LiteralEnv, ...]
    oauth_client_secrets: tuple[str, ...] = ()
    """Secrets (``projects/P/secrets/S``) the *operator* reads to configure IAP's OAuth clients
    (``spec.iap.settings``); unlike env secrets, which the runtime account reads, these use the operator's
    own access, so they are judged on their own list."""
    networks: tuple[str, ...] = ()
    """VPC networks, subnetworks and Serverless VPC Access connectors (``template.vpcAccess``), as full
    resource names: a short name is the service project's (``projects/P/global/networks/N``,
    ``projects/P/regions/R/subnetworks/S``, ``projects/P/locations/R/connectors/C``)."""
    sql_instances: tuple[str, ...] = ()
    """Cloud SQL connection names (``PROJECT:REGION:INSTANCE``) of ``cloudSqlInstance`` volumes."""
    buckets: tuple[str, ...] = ()
    """Cloud Storage buckets of ``gcs`` volumes."""
    nfs_servers: tuple[str, ...] = ()
    """NFS servers (IP or host name) of ``nfs`` volumes."""
    kms_keys: tuple[str, ...] = ()
    """The customer-managed encryption key (``template.encryptionKey``)."""
    binary_authorization_policies: tuple[str, ...] = ()
    """A named Binary Authorization policy (``binaryAuthorization.policy``); ``useDefault`` names none."""
    binary_authorization_breakglass: bool = False
    """``binaryAuthorization.breakglassJustification`` set: the deploy bypasses Binary Authorization."""


def secret_project(secret: str, service_project: str | None) -> str | None:
    """``projects/P/secrets/S`` names project P; a bare secret name means the service's own project."""
    parts = secret.split("/")
    if len(parts) >= 4 and parts[0] == "projects" and parts[2] == "secrets":
        return parts[1]
    return service_project


def _containers(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, container in enumerate(template.get("containers") or ()):
        yield str(container.get("name") or f"containers[{index}]"), container


def _secret_names(template: Mapping[str, Any]) -> Iterator[str]:
    for _, container in _containers(template):
        for var in container.get("env") or ():
            ref = ((var.get("valueSource") or {}).get("secretKeyRef") or {}).get("secret")
            if ref:
                yield str(ref)
    for volume in template.get("volumes") or ():
        ref = (volume.get("secret") or {}).get("secret")
        if ref:
            yield str(ref)


def _literal_env(template: Mapping[str, Any]) -> Iterator[LiteralEnv]:
    for label, container in _containers(template):
        for var in container.get("env") or ():
            if "value" in var:
                yield LiteralEnv(container=label, name=str(var.get("name", "")))


def _full_name(name: str, project: str | None, kind: str) -> str | None:
    """``name`` as a full resource name in ``project`` (``kind`` is the path after it), unless already one."""
    if name.startswith("projects/"):
        return name
    return None if project is None else f"projects/{project}/{kind}/{name}"


def _networks(template: Mapping[str, Any], project: str | None, region: str) -> Iterator[str | None]:
    access = template.get("vpcAccess") or {}
    if access.get("connector"):
        yield _full_name(str(access["connector"]), project, f"locations/{region}/connectors")
    for interface in access.get("networkInterfaces") or ():
        if interface.get("network"):
            yield _full_name(str(interface["network"]), project, "global/networks")
        if interface.get("subnetwork"):
            yield _full_name(str(interface["subnetwork"]), project, f"regions/{region}/subnetworks")


def _volume_values(template: Mapping[str, Any], kind: str, key: str) -> Iterator[str]:
    for volume in template.get("volumes") or ():
        value = (volume.get(kind) or {}).get(key)
        for item in value if isinstance(value, list) else [value]:
            if item:
                yield str(item)


def _once(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def extract(spec: Spec, project: str | None) -> References:
    """The delegated references of ``spec`` whose service lives in ``project``."""
    template = spec.template
    binauthz = spec.fields.get("binaryAuthorization") or {}
    secrets = (secret_project(name, project) for name in _secret_names(template))
    account = str(template.get("serviceAccount") or "") or None
    return References(
        project=project,
        region=spec.region,
        service_name=spec.service_name,
        service_account=account,
        secret_projects=tuple(dict.fromkeys(p for p in secrets if p is not None)),
        images=tuple(dict.fromkeys(str(c.get("image", "")) for _, c in _containers(template))),
        accessors=tuple(a.member for a in spec.iap.accessors),
        iap_enabled=spec.iap.enabled,
        public_invoker_bindings=spec.iap.public_invoker is PublicInvokerPolicy.REPORT,
        invoker_iam_disabled=spec.invoker_iam_disabled,
        literal_env=tuple(_literal_env(template)),
        oauth_client_secrets=_once(secret_references(spec.iap.settings, project)),
        networks=_once(_networks(template, project, spec.region)),
        sql_instances=_once(_volume_values(template, "cloudSqlInstance", "instances")),
        buckets=_once(_volume_values(template, "gcs", "bucket")),
        nfs_servers=_once(_volume_values(template, "nfs", "server")),
        kms_keys=_once([str(template.get("encryptionKey") or "")]),
        binary_authorization_policies=_once([str(binauthz.get("policy") or "")]),
        binary_authorization_breakglass=bool(binauthz.get("breakglassJustification")),
    )
