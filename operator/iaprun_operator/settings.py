"""Operator settings: one object, read once from the environment (the Helm chart sets these).

Every knob has a default that is right for production on GKE; tests and the demo override a few
(``IAPRUN_GOOGLE_API_ENDPOINT`` points all Google clients at the local emulator).
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iaprun_operator.core.tenancy import TenancyPolicy, TenancyPolicyError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuotaSettings:
    """Client-side token buckets, per API, project and region, sized like Google's default quotas."""

    run_writes_per_minute: float = 60.0
    """Cloud Run Admin API writes per minute per project and region (setIamPolicy counts as a write)."""
    run_reads_per_minute: float = 1000.0
    """Cloud Run Admin API reads per minute per project and region."""
    iap_per_minute: float = 600.0
    """IAP API calls per minute per project (Google publishes no figure; conservative)."""
    crm_per_minute: float = 600.0
    """Resource Manager reads per minute."""


@dataclass(frozen=True)
class Settings:
    google_api_endpoint: str | None = None
    """Base URL for every Google API (the local emulator); None means Google with ADC credentials."""
    default_project: str | None = None
    """Project used when neither the spec nor the namespace annotation names one."""
    cluster_id: str = ""
    """Identifies this cluster in ownership marks; defaults to the kube-system namespace uid."""
    drift_interval: float = 600.0
    """Seconds between drift checks of one object (annotation ``iaprun.dev/drift-interval`` overrides)."""
    min_drift_interval: float = 60.0
    """The shortest drift interval an object may ask for: an annotation below it (or not a finite number) stalls
    the object with InvalidSpec, so no tenant can make the operator check its objects every tick."""
    drift_jitter: float = 0.1
    """Fraction of the drift interval used as random jitter, so checks of many objects spread out."""
    timer_tick: float = 10.0
    """How often each object's timer wakes to see whether a drift check or an expiry is due."""
    rescue_grace: float = 60.0
    """Seconds past the time kopf owes an object a pass (its first, or a requested come-back) before the object's
    timer runs it, when none is in flight: a safety net for a watch event lost across an API server restart."""
    orphan_sweep_interval: float = 600.0
    """Seconds between orphan sweeps (one ``services.list`` per project and region in use); 0 disables."""
    workers: int = 64
    """Objects reconciled concurrently; also the size of the Google-call thread pool."""
    request_timeout: float = 30.0
    """Seconds before one Google call is abandoned and retried."""
    metrics_port: int = 8080
    """Port of the Prometheus metrics endpoint (0 disables it)."""
    watch_namespace: str | None = None
    """Watch only this namespace (None: cluster-wide)."""
    tenancy: TenancyPolicy = field(default_factory=TenancyPolicy)
    """The platform's tenancy policy; empty allows nothing."""
    operator_service_account: str | None = None
    """The operator's own Google account, never allowed as a runtime identity (None: not known)."""
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    clock_offset: float = 0.0
    """Seconds added to the wall clock when judging accessor expiry (tests align it with the emulator)."""


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    return float(raw) if raw not in (None, "") else default


class SettingsError(ValueError):
    """A setting cannot be used; the operator refuses to start and says which and why."""


def _positive(env: Mapping[str, str], key: str, default: float) -> float:
    try:
        value = _float(env, key, default)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{key}={env.get(key)!r}: must be a positive number of seconds")
    return value


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
    quotas = QuotaSettings(
        run_writes_per_minute=_float(env, "IAPRUN_QUOTA_RUN_WRITES_PER_MINUTE", 60.0),
        run_reads_per_minute=_float(env, "IAPRUN_QUOTA_RUN_READS_PER_MINUTE", 1000.0),
        iap_per_minute=_float(env, "IAPRUN_QUOTA_IAP_PER_MINUTE", 600.0),
        crm_per_minute=_float(env, "IAPRUN_QUOTA_CRM_PER_MINUTE", 600.0),
    )
    return Settings(
        google_api_endpoint=env.get("IAPRUN_GOOGLE_API_ENDPOINT") or None,
        default_project=env.get("IAPRUN_DEFAULT_PROJECT") or None,
        cluster_id=env.get("IAPRUN_CLUSTER_ID", ""),
        drift_interval=_float(env, "IAPRUN_DRIFT_INTERVAL_SECONDS", 600.0),
        min_drift_interval=_positive(env, "IAPRUN_MIN_DRIFT_INTERVAL_SECONDS", 60.0),
        drift_jitter=_float(env, "IAPRUN_DRIFT_JITTER", 0.1),
        timer_tick=_float(env, "IAPRUN_TIMER_TICK_SECONDS", 10.0),
        rescue_grace=_float(env, "IAPRUN_RESCUE_GRACE_SECONDS", 60.0),
        orphan_sweep_interval=_float(env, "IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS", 600.0),
        workers=int(_float(env, "IAPRUN_WORKERS", 64)),
        request_timeout=_float(env, "IAPRUN_REQUEST_TIMEOUT_SECONDS", 30.0),
        metrics_port=int(_float(env, "IAPRUN_METRICS_PORT", 8080)),
        watch_namespace=env.get("IAPRUN_WATCH_NAMESPACE") or None,
        tenancy=_tenancy(env),
        operator_service_account=_operator_account(env),
        quotas=quotas,
        clock_offset=_float(env, "IAPRUN_CLOCK_OFFSET_SECONDS", 0.0),
    )
