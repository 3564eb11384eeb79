"""IAP settings of one service (``spec.iap.settings``): the declared fields, the plan, and who can sign in.

The spec mirrors IAP v1 ``IapSettings`` (same JSON names) with one change: an OAuth client secret is never
written in clear. ``clientSecret`` is refused; ``clientSecretSource.secretKeyRef`` names a Secret Manager
secret version instead (the shape Cloud Run v2 uses for env secrets), which the operator reads at apply time
and hands to IAP. Google keeps only its SHA-256 (``clientSecretSha256``), which is how drift is seen.

The settings are managed field by field: the object owns exactly the leaves it declares, writes them with an
``updateMask`` naming only those that differ, and clears a leaf it once declared and no longer does. Which
leaves it owns is a ledger kept in status (``status.iapSettings.managedFields``); a leaf enters the ledger
before it is first written, so a lost status write can never leave a field set that nobody will clear.
``reauthSettings`` is one leaf: Google requires its fields to be written together.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MASK_PREFIX = "iapSettings."
"""Google's update mask paths name the request field first (``iapSettings.accessSettings.reauthSettings``)."""
SECRET_FIELD = "clientSecret"
SECRET_SOURCE = "clientSecretSource"
_DURATION = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,9})?s$")
_SECRET_NAME = re.compile(r"^(projects/[a-z0-9-]{1,64}/secrets/)?[A-Za-z0-9_-]{1,255}$")
_VERSION = re.compile(r"^(latest|[1-9][0-9]{0,18})$")


class SettingsError(ValueError):
    """``spec.iap.settings`` cannot be applied as written; the message names the field."""


# The declared shape: a dict is a message, ``str``/``bool`` a scalar, a list a repeated scalar (its one item
# the allowed values, or ``str``), ``SECRET`` a secret source, ``ATOMIC`` a message written as one leaf.
SECRET = "secret"
_REAUTH_METHODS = ("LOGIN", "SECURE_KEY", "ENROLLED_SECOND_FACTORS")
_POLICY_TYPES = ("MINIMUM", "DEFAULT")
_ATOMIC_REAUTH: dict[str, Any] = {"method": _REAUTH_METHODS, "maxAge": "duration", "policyType": _POLICY_TYPES}
SHAPE: dict[str, Any] = {
    "accessSettings": {
        "oauthSettings": {"clientId": str, SECRET_SOURCE: SECRET, "loginHint": str, "programmaticClients": [str]},
        "allowedDomainsSettings": {"enable": bool, "domains": [str]},
        "reauthSettings": ("atomic", _ATOMIC_REAUTH),
        "corsSettings": {"allowHttpOptions": bool},
        "workforceIdentitySettings": {"workforcePools": [str], "oauth2": {"clientId": str, SECRET_SOURCE: SECRET}},
        "gcipSettings": {"tenantIds": [str], "loginPageUri": str},
        "identitySources": [("WORKFORCE_IDENTITY_FEDERATION",)],
    },
    "applicationSettings": {
        "accessDeniedPageSettings": {
            "accessDeniedPageUri": str,
            "generateTroubleshootingUri": bool,
            "remediationTokenGenerationEnabled": bool,
        },
        "cookieDomain": str,
        "attributePropagationSettings": {
            "enable": bool,
            "expression": str,
            "outputCredentials": [("HEADER", "JWT", "RCTOKEN")],
        },
    },
}
MAX_LIST = 20
MAX_STRING = 1024


@dataclass(frozen=True)
class SecretRef:
    """A Secret Manager secret version: ``secret`` is ``projects/P/secrets/S`` or a bare ``S`` (the service's
    project), ``version`` a number or ``latest``."""

    secret: str
    version: str = "latest"

    def resolve(self, project: str) -> str:
        """The full version name the operator reads."""
        name = self.secret if self.secret.startswith("projects/") else f"projects/{project}/secrets/{self.secret}"
        return f"{name}/versions/{self.version}"

    def secret_name(self, project: str) -> str:
        return self.resolve(project).rsplit("/versions/", 1)[0]


@dataclass(frozen=True)
class IapSettingsSpec:
    """The declared leaves: mask path (without ``iapSettings.``) -> value, secrets apart."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    """Mask path of a ``clientSecret`` -> where its value is kept."""

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(sorted({*self.fields, *self.secrets}))

    @property
    def client_id(self) -> str:
        return str(self.fields.get("accessSettings.oauthSettings.clientId") or "")


# ------------------------------------------------------------------------------------------------ parsing


def parse_settings(raw: Any) -> IapSettingsSpec | None:
    """``spec.iap.settings`` as declared leaves; None when absent. Raises ``SettingsError``."""
    if raw is None:
        return None
    fields: dict[str, Any] = {}
    secrets: dict[str, SecretRef] = {}
    _walk(raw, SHAPE, "", fields, secrets)
    for path in secrets:
        if path.replace(SECRET_FIELD, "clientId") not in fields:
            raise SettingsError(f"spec.iap.settings.{path}Source: a client secret needs the clientId it belongs to")
    return IapSettingsSpec(fields=fields, secrets=secrets)


def _where(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _walk(raw: Any, shape: Mapping[str, Any], prefix: str, fields: dict[str, Any], secrets: dict[str, Any]) -> None:
    if not isinstance(raw, Mapping):
        raise SettingsError(f"spec.iap.settings{'.' + prefix if prefix else ''}: must be an object")
    for key, value in raw.items():
        path = _where(prefix, str(key))
        if key == SECRET_FIELD and SECRET_SOURCE in shape:
            raise SettingsError(
                f"spec.iap.settings.{path}: a client secret is never written in the object; name a Secret "
                f"Manager secret in {SECRET_SOURCE}.secretKeyRef instead"
            )
        if key not in shape:
            raise SettingsError(f"spec.iap.settings.{path}: unknown field (IAP v1 IapSettings names only)")
        kind = shape[key]
        if value is None:
            continue
        if isinstance(kind, dict):
            _walk(value, kind, path, fields, secrets)
        elif kind == SECRET:
            secrets[_where(prefix, SECRET_FIELD)] = _secret_ref(value, path)
        elif isinstance(kind, tuple) and kind[0] == "atomic":
            fields[path] = _atomic(value, kind[1], path)
        else:
            fields[path] = _scalar(value, kind, path)


def _scalar(value: Any, kind: Any, path: str) -> Any:
    where = f"spec.iap.settings.{path}"
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: {value!r} is not true or false")
        return value
    if kind is str:
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise SettingsError(f"{where}: must be a string of at most {MAX_STRING} characters")
        return value
    if kind == "duration":
        if not isinstance(value, str) or not _DURATION.match(value):
            raise SettingsError(f"{where}: {value!r} is not a duration in seconds such as 3600s")
        return value
    if isinstance(kind, tuple):
        if value not in kind:
            raise SettingsError(f"{where}: {value!r} is not one of {', '.join(kind)}")
        return value
    assert isinstance(kind, list)
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise SettingsError(f"{where}: must be a list of at most {MAX_LIST} items")
    items = [_scalar(item, kind[0], f"{path}[{i}]") for i, item in enumerate(value)]
    if len(set(items)) != len(items):
        raise SettingsError(f"{where}: lists an item twice")
    return items


def _atomic(value: Any, shape: Mapping[str, Any], path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingsError(f"spec.iap.settings.{path}: must be an object")
    out = {}
    for key, item in value.items():
        if key not in shape:
            raise SettingsError(f"spec.iap.settings.{path}.{key}: unknown field (IAP v1 IapSettings names only)")
        if item is not None:
            out[str(key)] = _scalar(item, shape[key], f"{path}.{key}")
    return out


def _secret_ref(value: Any, path: str) -> SecretRef:
    where = f"spec.iap.settings.{path}"
    ref = value.get("secretKeyRef") if isinstance(value, Mapping) else None
    if not isinstance(ref, Mapping) or set(value) != {"secretKeyRef"}:
        raise SettingsError(f"{where}: must be {{secretKeyRef: {{secret, version}}}}")
    secret = str(ref.get("secret") or "")
    version = str(ref.get("version") or "latest")
    if set(ref) - {"secret", "version"}:
        raise SettingsError(f"{where}.secretKeyRef: only secret and version are allowed")
    if not _SECRET_NAME.match(secret):
        raise SettingsError(f"{where}.secretKeyRef.secret: {secret!r} is not a secret name or projects/P/secrets/S")
    if not _VERSION.match(version):
        raise SettingsError(f"{where}.secretKeyRef.version: {version!r} is not a version number or latest")
    return SecretRef(secret, version)


# ------------------------------------------------------------------------------------------------ planning


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    """None when the field is cleared; secrets are shown as ``(secret)``, never their value."""

    def describe(self) -> str:
        if self.after is None:
            return f"{self.path} cleared"
        return f"{self.path}: {_show(self.before)} -> {_show(self.after)}"


def _show(value: Any) -> str:
    return "(unset)" if value is None else str(value)


@dataclass(frozen=True)
class SettingsPlan:
    """What the step writes: the body and mask (relative paths), or nothing."""

    mask: tuple[str, ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict)
    changes: tuple[FieldChange, ...] = ()
    ledger: tuple[str, ...] = ()
    """The fields this object owns once the plan is applied (or recorded)."""
    record_first: bool = False
    """Fields about to be written for the first time enter the ledger (status) first; the next pass writes."""

    @property
    def write(self) -> bool:
        return bool(self.mask) and not self.record_first

    @property
    def wire_mask(self) -> str:
        return ",".join(MASK_PREFIX + path for path in self.mask)


def lookup(settings: Mapping[str, Any], path: str) -> Any:
    node: Any = settings
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _zero(value: Any) -> bool:
    return value in (None, False, "", [], {})


def _same(observed: Any, desired: Any) -> bool:
    if isinstance(desired, Mapping):
        observed = {k: v for k, v in (observed or {}).items() if not _zero(v)}
        desired = {k: v for k, v in desired.items() if not _zero(v)}
    if _zero(observed) and _zero(desired):
        return True
    return bool(observed == desired)


def secret_digests(payload: str) -> frozenset[str]:
    """The forms Google may show a secret's SHA-256 in (hex or base64): what matching ``clientSecretSha256``
    means the secret in place is the declared one."""
    digest = hashlib.sha256(payload.encode()).digest()
    return frozenset({digest.hex(), base64.b64encode(digest).decode()})


def _secret_set(observed: Mapping[str, Any], path: str) -> str | None:
    return lookup(observed, path + "Sha256") or None


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = body
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def plan_settings(
    observed: Mapping[str, Any],
    spec: IapSettingsSpec | None,
    ledger: Sequence[str],
    secrets: Mapping[str, str],
) -> SettingsPlan:
    """The fields to write so the declared ones match and the ones this object no longer declares are cleared.

    ``secrets``: the value of each declared secret (read by the step); compared through its digest.
    """
    declared = spec or IapSettingsSpec()
    owned = set(ledger)
    body: dict[str, Any] = {}
    changes: list[FieldChange] = []
    for path, want in sorted(declared.fields.items()):
        have = lookup(observed, path)
        if not _same(have, want):
            _set(body, path, want)
            changes.append(FieldChange(path, have, want))
    for path in sorted(declared.secrets):
        payload = secrets[path]
        have_digest = _secret_set(observed, path)
        if have_digest not in secret_digests(payload):
            _set(body, path, payload)
            changes.append(FieldChange(path, "(secret)" if have_digest else None, "(secret)"))
    for path in sorted(owned - set(declared.paths)):
        have = _secret_set(observed, path) if path.endswith(SECRET_FIELD) else lookup(observed, path)
        if not _zero(have):
            changes.append(FieldChange(path, "(secret)" if path.endswith(SECRET_FIELD) else have, None))
    if not changes:
        return SettingsPlan(ledger=declared.paths)
    mask = tuple(c.path for c in changes)
    newcomers = set(declared.paths) - owned
    written_new = any(c.path in newcomers for c in changes)
    if written_new:
        return SettingsPlan(mask, body, tuple(changes), tuple(sorted(owned | set(declared.paths))), record_first=True)
    return SettingsPlan(mask, body, tuple(changes), declared.paths)


# ------------------------------------------------------------------------------------------------ who can sign in

_PEOPLE = ("user", "group", "domain")


def people(members: Sequence[str]) -> list[str]:
    """The members that sign in as people (in a browser): users, groups and domains."""
    return [m for m in members if m.partition(":")[0] in _PEOPLE]


def cannot_sign_in(members: Sequence[str], org_domains: Sequence[str] | None) -> list[str]:
    """Accessors that cannot sign in through the Google-managed OAuth client.

    That client lets in only identities of the project's organisation; a project with no organisation
    (``org_domains`` None) cannot use it at all. Service accounts and pool principals do not sign in in a
    browser and are not judged here.
    """
    out = []
    domains = {d.lower() for d in org_domains or ()}
    for member in people(members):
        domain = member.partition(":")[2].rsplit("@", 1)[-1].lower()
        if org_domains is None or domain not in domains:
            out.append(member)
    return out


# ------------------------------------------------------------------------------------------------ status.access


def access_urls(status: Mapping[str, Any]) -> list[str]:
    """The service's URLs as the service step reported them: the main one, the others, then tagged ones."""
    urls = [str(status.get("url") or "")] + [str(u) for u in status.get("urls") or ()]
    urls += [str(t.get("uri") or "") for t in status.get("traffic") or () if isinstance(t, Mapping)]
    return list(dict.fromkeys(u for u in urls if u))


def access_status(status: Mapping[str, Any], observed: Mapping[str, Any]) -> dict[str, Any]:
    """``status.access``: where to reach the service and how a program proves who it is.

    With a custom OAuth client, an OIDC ID token's audience is that client's ID. With the Google-managed
    client, programmatic callers use a service-account-signed JWT whose audience is the service URL, or an ID
    token for one of ``programmaticClients``.
    """
    oauth = lookup(observed, "accessSettings.oauthSettings") or {}
    client_id = str(oauth.get("clientId") or "")
    urls = access_urls(status)
    access: dict[str, Any] = {"urls": urls, "googleManagedClient": not client_id}
    audience = client_id or (urls[0] if urls else "")
    if audience:
        access["audience"] = audience
    access["programmaticClients"] = [str(c) for c in oauth.get("programmaticClients") or ()]
    return access


def secret_references(spec: IapSettingsSpec | None, project: str | None) -> Iterator[str]:
    """``projects/P/secrets/S`` of every secret the settings name (what the tenancy policy judges)."""
    for ref in (spec.secrets if spec else {}).values():
        yield ref.secret_name(project or "-")
