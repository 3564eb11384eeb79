"""Every knob of the emulator in one typed object, loadable from a JSON/YAML file and patchable at run time.

Each fact that ``gcp-api.md`` marks as unconfirmed (❓) has a field here with the most plausible default;
``docs/emulator.md`` lists them. Tests change knobs through ``PATCH /_emulator/config`` (or
``AdminClient.configure``) and ``reset`` restores the values the emulator was started with.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _default_projects() -> dict[str, str]:
    return {
        "demo-project": "123456789012",
        "test-project": "111111111111",
        "other-project": "222222222222",
    }


def _default_regions() -> dict[str, str]:
    # region -> the short code used in the *.a.run.app host (observed: us-central1 -> uc).
    return {
        "us-central1": "uc",
        "us-east1": "ue",
        "us-east4": "uk",
        "us-west1": "uw",
        "europe-west1": "ew",
        "europe-west4": "ez",
        "europe-north1": "lz",
        "asia-northeast1": "an",
        "asia-east1": "de",
        "australia-southeast1": "ts",
    }


@dataclass
class QuotaLimit:
    """Requests per minute for one API and kind, per project and region (0 = unlimited)."""

    read: int = 0
    write: int = 0


def _default_quota_limits() -> dict[str, QuotaLimit]:
    # Real defaults when enabled: Cloud Run writes 60/min/region (🟡), reads ❓ (chosen 1000),
    # Service Usage reads 240 / writes 60 (✅), CRM reads 600 (✅), IAP ❓ (chosen 600/600).
    return {
        "run.googleapis.com": QuotaLimit(read=1000, write=60),
        "iap.googleapis.com": QuotaLimit(read=600, write=600),
        "serviceusage.googleapis.com": QuotaLimit(read=240, write=60),
        "cloudresourcemanager.googleapis.com": QuotaLimit(read=600, write=600),
    }


@dataclass
class EmulatorConfig:
    """All emulator settings. Field names are the config keys (nested sections use dotted keys in docs)."""

    host: str = "127.0.0.1"
    port: int = 0

    # --- projects (Resource Manager) ---
    projects: dict[str, str] = field(default_factory=_default_projects)
    """Known projects: project ID -> project number."""
    auto_register_projects: bool = False
    """Unknown project IDs are registered on first use with a derived number (else 403 as Google does)."""
    organizations: dict[str, list[str]] = field(default_factory=lambda: {"000000000000": ["example.com"]})
    """Organisation id -> its domains (the first is the primary one, its ``displayName``). The Google-managed
    OAuth client of IAP lets only users of these domains sign in."""
    project_organizations: dict[str, str | None] = field(default_factory=dict)
    """Project ID -> organisation id, or None for a project with no organisation; absent: the default below."""
    default_organization: str | None = "000000000000"

    # --- Secret Manager ---
    secrets: dict[str, list[str]] = field(default_factory=dict)
    """``projects/{id or number}/secrets/{name}`` -> the payloads of its versions 1, 2, ... (``latest`` is the
    last). Read by ``accessSecretVersion`` (the operator reads OAuth client secrets this way)."""

    # --- Cloud Run ---
    regions: dict[str, str] = field(default_factory=_default_regions)
    """Known regions -> host code; an unknown region answers the GFE HTML 404."""
    accept_any_region: bool = False
    operation_delay: float = 0.2
    """Seconds until a create/patch/delete Operation completes (0 = returned already done)."""
    operation_delays: dict[str, float] = field(default_factory=dict)
    """Per-method override, keyed by method id (e.g. ``run.services.create``)."""
    delete_delay: float | None = None
    """Seconds a deleted service stays visible (reconciling) before it disappears; None = operation delay."""
    missing_image_markers: list[str] = field(default_factory=lambda: ["does-not-exist"])
    """An image containing any of these substrings "does not exist" (the revision fails)."""
    missing_images: list[str] = field(default_factory=list)
    """Exact image references that do not exist."""
    startup_probe_failure_markers: list[str] = field(default_factory=lambda: ["fails-startup-probe"])
    """A container whose image, or whose startupProbe ``httpGet.path``, contains one of these fails its startup
    probe: the revision fails and the previous ready revision keeps serving."""
    gpu_accelerators: list[str] = field(default_factory=lambda: ["nvidia-l4", "nvidia-rtx-pro-6000"])
    """Values accepted in ``template.nodeSelector.accelerator``."""
    gpu_regions: list[str] = field(
        default_factory=lambda: ["us-central1", "europe-west1", "europe-west4", "asia-southeast1", "asia-south1"]
    )
    """Regions where Cloud Run offers GPUs (Cloud Run's GPU docs); elsewhere a GPU template gives 400."""
    run_name_project: str = "id"
    """How ``{project}`` is written in service/operation/revision names: ``id``, ``number`` or ``as_given``."""
    stale_etag_status: str = "ABORTED"
    """Status for a stale service etag on patch/delete: ``ABORTED`` (409) or ``FAILED_PRECONDITION`` (400)."""
    validate_only_operation: str = "done"
    """validateOnly answer: ``done`` (Operation done with the would-be Service) or ``pending``."""
    already_exists_message: str = "Resource already exists."
    not_found_message: str = (
        "Resource '{id}' of kind 'SERVICE' in region '{region}' in project '{project}' does not exist."
    )
    operation_not_found_message: str = "Operation '{name}' not found."
    iap_requires_beta: bool = False
    """If True, ``iapEnabled`` needs ``launchStage`` BETA/ALPHA (the preview-era rule; ❓ whether still so)."""
    default_page_size: int = 100
    max_page_size: int = 1000
    default_caller_email: str = "emulator-user@example.com"
    """creator/lastModifier when the request carries no caller identity."""
    default_service_account: str = "{number}-compute@developer.gserviceaccount.com"
    reject_unknown_fields: bool = True
    act_as: dict[str, list[str]] | None = None
    """Who holds ``iam.serviceAccounts.actAs`` on which runtime accounts: caller identity (``X-Emulator-Caller``
    or a token's; ``anonymous`` without one; ``*`` for any other) -> account emails (fnmatch patterns). A
    create/patch whose runtime account (template.serviceAccount, else the default compute account) is not
    covered answers Google's 403. None: not modelled (every caller may act as every account)."""
    secret_accessors: dict[str, list[str]] | None = None
    """Secret Manager access of runtime accounts: ``projects/{id or number}/secrets/{name}`` -> account emails
    (fnmatch) holding secretAccessor. A revision referencing a secret its runtime account cannot read fails
    (a secret missing from the map: nobody can). None: not modelled (every secret readable)."""
    legacy_errors_array: bool = False
    """Add the legacy ``errors: [{message, domain, reason}]`` array to error envelopes."""

    # --- IAM ---
    max_principals: int = 1500
    max_groups: int = 250
    service_agents_exist: bool = False
    """If True every ``service-N@gcp-sa-*`` agent exists without generateServiceIdentity."""
    agent_propagation_delay: float = 0.0
    """Seconds after generateServiceIdentity before the agent may be named in a policy."""
    nonexistent_service_account_markers: list[str] = field(default_factory=lambda: ["does-not-exist"])
    groups: dict[str, list[str]] = field(default_factory=dict)
    """Group membership for the protected URL: ``group:x@y`` -> members (``user:a@y``)."""
    run_iam_conditions: bool = True
    """Whether Cloud Run service policies accept conditional bindings (❓)."""

    # --- IAP ---
    iap_accept_project_id: bool = True
    """Accept a project ID in ``projects/{p}/iap_web/...`` (names are always rendered with the number)."""
    iap_require_service: bool = True
    """IAP IAM calls on a Cloud Run service that does not exist answer 404."""
    iap_allow_all_users: bool = False
    """Whether ``allUsers`` may be bound on an IAP policy (❓; default: rejected with 400)."""
    iap_delete_policy_with_service: bool = True
    unauthenticated_mode: str = "auto"
    """Protected URL without a user: ``auto`` (302 for browsers, 401 otherwise), ``redirect`` or ``401``."""

    # --- control ---
    quotas_enabled: bool = False
    quota_limits: dict[str, QuotaLimit] = field(default_factory=_default_quota_limits)
    quota_retry_after: int = 0
    """Seconds for a ``Retry-After`` header on 429 (0 = none, as Google usually sends none)."""
    latency: dict[str, float] = field(default_factory=dict)
    """Extra seconds per method id pattern (fnmatch; ``*`` = all)."""
    permissions_enabled: bool = False
    permissions: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """caller -> {"allow": [permission patterns], "deny": [...], "deny_projects": [ids]}."""
    permissions_default_allow: bool = True
    """Callers not listed in ``permissions`` are allowed everything."""
    tokens: dict[str, str] = field(default_factory=dict)
    """Bearer token -> caller identity (for ``Authorization: Bearer``)."""
    disabled_apis: dict[str, list[str]] = field(default_factory=dict)
    """project ID or number -> APIs (``run.googleapis.com``) that answer 403 SERVICE_DISABLED for calls whose
    consumer is that project (``serviceusage.consumer``: the resource's project for Cloud Run and IAP, the
    caller's own project for Resource Manager and Service Usage)."""
    caller_projects: dict[str, str] = field(default_factory=dict)
    """caller identity (``anonymous`` without one) -> the project of its credentials, where Google checks that
    Resource Manager and Service Usage are enabled (a ``…@P.iam.gserviceaccount.com`` caller needs no entry)."""
    allowed_policy_member_domains: dict[str, list[str]] = field(default_factory=dict)
    """Domain-restricted sharing (``constraints/iam.allowedPolicyMemberDomains``): project ID or number -> the
    domains whose users, groups and domains may be named in an IAM policy there (Google takes customer IDs; the
    emulator takes their domains). A project not listed has no such policy. See ``gcpemu.orgpolicy``."""
    access_levels: dict[str, list[str]] = field(default_factory=dict)
    """Access levels a test identity meets at the protected URL: ``user:a@b`` ->
    ``accessPolicies/N/accessLevels/NAME``... (``request.auth.access_levels`` in IAM conditions)."""
    request_log_size: int = 100_000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def copy(self) -> EmulatorConfig:
        return copy.deepcopy(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a (partial) dict of changes; unknown keys raise ``KeyError``."""
        names = {f.name: f for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise KeyError(f"unknown config key {key!r}")
            if key == "quota_limits":
                for api, lim in dict(value).items():
                    cur = self.quota_limits.setdefault(api, QuotaLimit())
                    for k, v in dict(lim).items():
                        if k not in ("read", "write"):
                            raise KeyError(f"unknown quota kind {k!r}")
                        setattr(cur, k, int(v))
            else:
                setattr(self, key, copy.deepcopy(value))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorConfig:
        cfg = cls()
        cfg.update(data)
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> EmulatorConfig:
        text = Path(path).read_text()
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text) if text.strip() else {}
        return cls.from_dict(data)
