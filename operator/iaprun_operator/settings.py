"""Operator settings: one object, read once from the environment (the Helm chart sets these).

Every knob has a default that is right for production on GKE; tests and the demo override a few
(``IAPRUN_GOOGLE_API_ENDPOINT`` points all Google clients at the local emulator). Each field names its
environment variable (``_env``), so ``from_env`` takes every default from the field itself: the dataclass is
the one place a default is written (the chart's values are checked against it in tests/chart).
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from iaprun_operator.core.shards import MAX_SHARDS
from iaprun_operator.core.tenancy import TenancyPolicy, TenancyPolicyError

log = logging.getLogger(__name__)


MIN_KUBE_CONNECTIONS = 4
"""The operator's watch streams (objects, namespaces) hold one connection each, and the patches need room."""


class SettingsError(ValueError):
    """A setting cannot be used; the operator refuses to start and says which and why."""


Parse = Callable[[Mapping[str, str], str, Any], Any]
"""Reads one variable: (environment, variable name, the field's default) -> value."""


def _number(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    return float(raw) if raw not in (None, "") else default


def _positive(env: Mapping[str, str], key: str, default: float) -> float:
    try:
        value = _number(env, key, default)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{key}={env.get(key)!r}: must be a positive number of seconds")
    return value


def _integer(env: Mapping[str, str], key: str, default: int) -> int:
    return int(_number(env, key, default))


def _optional(env: Mapping[str, str], key: str, default: None) -> str | None:
    return env.get(key) or default


def _text(env: Mapping[str, str], key: str, default: str) -> str:
    return env.get(key, default)


def _env(variable: str, parse: Parse) -> dict[str, Any]:
    """Field metadata: the environment variable that sets the field, and how it is read."""
    return {"env": variable, "parse": parse}


def _from_fields(cls: type[Any], env: Mapping[str, str], **rest: Any) -> Any:
    """``cls`` with every field that names a variable read from ``env`` (its default from the field itself)."""
    values = dict(rest)
    for f in fields(cls):
        if "env" in f.metadata:
            assert f.default is not MISSING, f"{cls.__name__}.{f.name}: a variable's field needs a default"
            values[f.name] = f.metadata["parse"](env, f.metadata["env"], f.default)
    return cls(**values)


@dataclass(frozen=True)
class QuotaSettings:
    """Client-side token buckets, per API, project and region, sized like Google's default quotas."""

    run_writes_per_minute: float = field(default=60.0, metadata=_env("IAPRUN_QUOTA_RUN_WRITES_PER_MINUTE", _number))
    """Cloud Run Admin API writes per minute per project and region (setIamPolicy counts as a write)."""
    run_reads_per_minute: float = field(default=1000.0, metadata=_env("IAPRUN_QUOTA_RUN_READS_PER_MINUTE", _number))
    """Cloud Run Admin API reads per minute per project and region."""
    iap_per_minute: float = field(default=600.0, metadata=_env("IAPRUN_QUOTA_IAP_PER_MINUTE", _number))
    """IAP API calls per minute per project (Google publishes no figure; conservative)."""
    crm_per_minute: float = field(default=600.0, metadata=_env("IAPRUN_QUOTA_CRM_PER_MINUTE", _number))
    """Resource Manager reads per minute."""


@dataclass(frozen=True)
class HaSettings:
    """Hot standby and sharding (docs/design.md, "Hot standby and sharding"): which shard this replica serves, and
    the Lease that makes exactly one replica of each shard active."""

    shards: int = field(default=1, metadata=_env("IAPRUN_SHARDS", _integer))
    """How many shards split the objects (1 to 64). Every replica of every shard must be given the same count."""
    shard: int = field(default=0, metadata=_env("IAPRUN_SHARD", _integer))
    """The shard this replica serves (0 to shards - 1); shard 0's active replica also assigns new objects."""
    lease_namespace: str | None = field(default=None, metadata=_env("IAPRUN_LEASE_NAMESPACE", _optional))
    """Namespace of the shards' Leases (coordination.k8s.io); None: no election, this process is the only one."""
    lease_name: str = field(default="iap-run-operator", metadata=_env("IAPRUN_LEASE_NAME", _text))
    """Prefix of the Lease names: ``<lease_name>-shard-<k>``."""
    identity: str = field(default="", metadata=_env("IAPRUN_POD_NAME", _text))
    """This replica's name in the Lease (the chart passes the pod name); empty: host name and process id."""
    lease_duration: float = field(default=15.0, metadata=_env("IAPRUN_LEASE_DURATION_SECONDS", _positive))
    """Seconds a standby waits, from the last renewal it saw, before it takes a Lease over (client-go's default)."""
    renew_deadline: float = field(default=10.0, metadata=_env("IAPRUN_LEASE_RENEW_DEADLINE_SECONDS", _positive))
    """Seconds the active replica may go without a successful renewal before it exits; below ``lease_duration``,
    so it is gone before any standby may take over."""
    retry_period: float = field(default=2.0, metadata=_env("IAPRUN_LEASE_RETRY_SECONDS", _positive))
    """Seconds between renewals (active) and attempts (standby)."""


def _check_ha(ha: HaSettings) -> HaSettings:
    if not 1 <= ha.shards <= MAX_SHARDS:
        raise SettingsError(f"IAPRUN_SHARDS={ha.shards}: must be between 1 and {MAX_SHARDS}")
    if not 0 <= ha.shard < ha.shards:
        raise SettingsError(f"IAPRUN_SHARD={ha.shard}: must be between 0 and IAPRUN_SHARDS - 1 ({ha.shards - 1})")
    if ha.renew_deadline >= ha.lease_duration or ha.retry_period >= ha.renew_deadline:
        raise SettingsError(
            "IAPRUN_LEASE_RETRY_SECONDS < IAPRUN_LEASE_RENEW_DEADLINE_SECONDS < IAPRUN_LEASE_DURATION_SECONDS must "
            f"hold (got {ha.retry_period}, {ha.renew_deadline}, {ha.lease_duration}): the active replica must give "
            "up before a standby may take over"
        )
    if ha.shards > 1 and ha.lease_namespace is None:
        raise SettingsError("IAPRUN_SHARDS > 1 needs IAPRUN_LEASE_NAMESPACE: the shards' Leases fence every hand-off")
    return ha


@dataclass(frozen=True)
class Settings:
    google_api_endpoint: str | None = field(default=None, metadata=_env("IAPRUN_GOOGLE_API_ENDPOINT", _optional))
    """Base URL for every Google API (the local emulator); None means Google with ADC credentials."""
    default_project: str | None = field(default=None, metadata=_env("IAPRUN_DEFAULT_PROJECT", _optional))
    """Project used when neither the spec nor the namespace annotation names one."""
    cluster_id: str = field(default="", metadata=_env("IAPRUN_CLUSTER_ID", _text))
    """Identifies this cluster in ownership marks; defaults to the kube-system namespace uid."""
    drift_interval: float = field(default=600.0, metadata=_env("IAPRUN_DRIFT_INTERVAL_SECONDS", _number))
    """Seconds between drift checks of one object (annotation ``iaprun.dev/drift-interval`` overrides)."""
    min_drift_interval: float = field(default=60.0, metadata=_env("IAPRUN_MIN_DRIFT_INTERVAL_SECONDS", _positive))
    """The shortest drift interval an object may ask for: an annotation below it (or not a finite number) stalls
    the object with InvalidSpec, so no tenant can make the operator check its objects every tick."""
    drift_jitter: float = field(default=0.1, metadata=_env("IAPRUN_DRIFT_JITTER", _number))
    """Fraction of the drift interval used as random jitter, so checks of many objects spread out."""
    timer_tick: float = field(default=10.0, metadata=_env("IAPRUN_TIMER_TICK_SECONDS", _number))
    """How often each object's timer wakes to see whether a drift check or an expiry is due."""
    rescue_grace: float = field(default=60.0, metadata=_env("IAPRUN_RESCUE_GRACE_SECONDS", _number))
    """Seconds past the time kopf owes an object a pass (its first, or a requested come-back) before the object's
    timer runs it, when none is in flight: a safety net for a watch event lost across an API server restart."""
    service_list_max_age: float = field(default=30.0, metadata=_env("IAPRUN_SERVICE_LIST_MAX_AGE_SECONDS", _number))
    """How old a regional ``services.list`` may be to stand in for a drift or resume pass's read of its service
    (one listing serves many objects; a copy that would change anything is read again); 0: each pass reads its
    own."""
    orphan_sweep_interval: float = field(default=600.0, metadata=_env("IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS", _number))
    """Seconds between orphan sweeps (one ``services.list`` per project and region in use); 0 disables."""
    workers: int = field(default=64, metadata=_env("IAPRUN_WORKERS", _integer))
    """Objects reconciled concurrently; also the size of the Google-call thread pool."""
    kube_connections: int = field(default=24, metadata=_env("IAPRUN_KUBE_CONNECTIONS", _integer))
    """Most connections open to the Kubernetes API server at once, watch streams included (``runtime.login``).
    kopf's own session has no cap: a burst of 1,000 objects opened about one TLS connection per request in
    flight, a third of the operator's peak memory (docs/performance.md)."""
    request_timeout: float = field(default=30.0, metadata=_env("IAPRUN_REQUEST_TIMEOUT_SECONDS", _number))
    """Seconds before one Google call is abandoned and retried."""
    metrics_port: int = field(default=8080, metadata=_env("IAPRUN_METRICS_PORT", _integer))
    """Port of the Prometheus metrics endpoint (0 disables it)."""
    watch_namespace: str | None = field(default=None, metadata=_env("IAPRUN_WATCH_NAMESPACE", _optional))
    """Watch only this namespace (None: cluster-wide)."""
    operator_namespace: str = field(default="", metadata=_env("IAPRUN_OPERATOR_NAMESPACE", _text))
    """Namespace of the ConfigMap recording services left untouched at deletion (``ledger``); empty: the pod's
    own namespace (its ServiceAccount's), else ``default``."""
    tenancy: TenancyPolicy = field(default_factory=TenancyPolicy)
    """The platform's tenancy policy; empty allows nothing."""
    operator_service_account: str | None = None
    """The operator's own Google account, never allowed as a runtime identity (None: not known)."""
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    ha: HaSettings = field(default_factory=HaSettings)
    clock_offset: float = field(default=0.0, metadata=_env("IAPRUN_CLOCK_OFFSET_SECONDS", _number))
    """Seconds added to the wall clock when judging accessor expiry (tests align it with the emulator)."""


def _tenancy(env: Mapping[str, str]) -> TenancyPolicy:
    raw: Any = None
    source = "IAPRUN_TENANCY_POLICY"
    try:
        if path := env.get("IAPRUN_TENANCY_POLICY_FILE"):
            source = f"IAPRUN_TENANCY_POLICY_FILE ({path})"
            raw = json.loads(Path(path).read_text() or "null")
        elif text := env.get("IAPRUN_TENANCY_POLICY"):
            raw = json.loads(text)
        return TenancyPolicy.from_dict(raw)
    except (OSError, ValueError) as error:  # JSONDecodeError and TenancyPolicyError are ValueErrors
        kind = "invalid" if isinstance(error, TenancyPolicyError) else "unreadable"
        raise SettingsError(f"{source}: {kind} tenancy policy: {error}") from None


def _operator_account(env: Mapping[str, str]) -> str | None:
    """The operator's own Google account: the setting, else what a credentials file says (best effort).

    Only a credentials file named by GOOGLE_APPLICATION_CREDENTIALS is read (a service account key, an
    impersonation or workload identity federation config): it names the account without a network call. The
    metadata server (GKE Workload Identity) is not asked, so start-up never waits on it; the chart sets the
    variable from the Kubernetes ServiceAccount's ``iam.gke.io/gcp-service-account`` annotation instead.
    """
    if explicit := env.get("IAPRUN_OPERATOR_SERVICE_ACCOUNT", "").strip():
        return explicit.lower()
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if env.get("IAPRUN_GOOGLE_API_ENDPOINT") or not path:
        return None
    try:
        import google.auth

        with warnings.catch_warnings():
            # The generic loader warns about untrusted files; this is the file ADC itself loads at start-up.
            warnings.simplefilter("ignore", DeprecationWarning)
            creds, _ = google.auth.load_credentials_from_file(path)  # type: ignore[no-untyped-call]
        email = getattr(creds, "service_account_email", None)
    except Exception as error:  # best effort: ADC itself reports a broken file when the clients are built
        log.debug("The operator's account could not be read from %s: %s", path, error)
        return None
    return email.lower() if isinstance(email, str) and "@" in email else None


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings; a malformed number or JSON, or a tenancy policy that does not parse
    (``SettingsError``), fails at start-up, not at the first reconcile. Unknown variables are ignored."""
    env = os.environ if env is None else env
    settings: Settings = _from_fields(
        Settings,
        env,
        tenancy=_tenancy(env),
        operator_service_account=_operator_account(env),
        quotas=_from_fields(QuotaSettings, env),
        ha=_check_ha(_from_fields(HaSettings, env)),
    )
    if settings.kube_connections < MIN_KUBE_CONNECTIONS:
        raise SettingsError(
            f"IAPRUN_KUBE_CONNECTIONS={settings.kube_connections}: must be at least {MIN_KUBE_CONNECTIONS} (the watch "
            "streams hold connections of their own; fewer would leave no room for the patches)"
        )
    return settings
