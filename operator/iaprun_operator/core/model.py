"""The typed model of an IapRunService spec, parsed and re-validated from the object body.

The API server already enforces the CRD schema and CEL rules; the operator validates again because an
object may predate a CRD upgrade, and because the fail-closed rules (never a public accessor) must hold
even if the CRD were installed without them. Anything invalid becomes ``InvalidSpecError`` before any Google
call is made.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from iaprun_operator.core import surface
from iaprun_operator.core.iapsettings import IapSettingsSpec, SettingsError, parse_settings
from iaprun_operator.core.surface import InvalidSpecError as InvalidSpecError

SERVICE_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")
PROJECT_ID_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]+(-[a-z]+)+[0-9]+$")
_EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
MEMBER_RE = re.compile(
    rf"^(?:(?:user|group|serviceAccount):{_EMAIL}"
    r"|domain:[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|principal://iam\.googleapis\.com/[!-~]+"
    r"|principalSet://iam\.googleapis\.com/[!-~]+)$"
)
PUBLIC_MEMBERS = frozenset({"allusers", "allauthenticatedusers"})
ACCESS_LEVEL_RE = re.compile(r"^accessPolicies/[0-9]+/accessLevels/[A-Za-z][A-Za-z0-9_]{0,49}$")
"""An Access Context Manager level's name (its short name: a letter, then letters, digits and _; 50 at most)."""
MAX_ACCESS_LEVELS = 5
MAX_ACCESSORS_WITH_LEVELS = 10
"""The CRD's bounds: they keep the largest spec inside what kubectl apply and kopf can store (test_spec_budget)."""

INGRESS = (
    "INGRESS_TRAFFIC_ALL",
    "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "INGRESS_TRAFFIC_NONE",
)
LAUNCH_STAGES = ("GA", "BETA", "ALPHA")
SERVICE_FIELDS = ("binaryAuthorization", "customAudiences", "defaultUriDisabled", "scaling", "traffic")
"""Optional Cloud Run v2 Service fields the spec passes through as declared (v2 JSON); Google may fill in or
normalise their values, so they are diffed on what is declared (core.service)."""


class AccessorsPolicy(Enum):
    AUTHORITATIVE = "Authoritative"
    ADDITIVE = "Additive"


class PublicInvokerPolicy(Enum):
    REMOVE = "Remove"
    REPORT = "Report"


class DeletionPolicy(Enum):
    DELETE = "Delete"
    ABANDON = "Abandon"


class Adoption(Enum):
    NEVER = "Never"
    IF_UNOWNED = "IfUnowned"


class ManagementPolicy(Enum):
    """How far the operator may act on the service (issue 16, docs/day-2.md)."""

    FULL = "Full"
    """Observe, plan and apply: the reconcile pass as it always was."""
    OBSERVE_ONLY = "ObserveOnly"
    """Observe and plan only: status carries the plan; no Google write, ever."""
    PAUSED = "Paused"
    """No Google call at all; status says the object is paused."""


@dataclass(frozen=True)
class Accessor:
    """One principal that may pass IAP, optionally until ``expires`` and only under ``access_levels``."""

    member: str
    expires: datetime | None = None
    access_levels: tuple[str, ...] = ()
    """Access Context Manager levels (``accessPolicies/N/accessLevels/NAME``); the member passes IAP only while
    meeting one of them (``request.auth.access_levels``)."""


@dataclass(frozen=True)
class IapSpec:
    enabled: bool = True
    accessors: tuple[Accessor, ...] = ()
    policy: AccessorsPolicy = AccessorsPolicy.AUTHORITATIVE
    public_invoker: PublicInvokerPolicy = PublicInvokerPolicy.REMOVE
    settings: IapSettingsSpec | None = None
    """``spec.iap.settings`` (core.iapsettings); None: the object manages no IAP settings."""


@dataclass(frozen=True)
class Spec:
    """What one IapRunService asks for, in the operator's own terms."""

    region: str
    service_name: str
    template: Mapping[str, Any]
    project_id: str | None = None
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    """The user's annotations on the service (system and ``iaprun.dev/`` keys refused)."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """The declared ``SERVICE_FIELDS``, as v2 JSON; an absent key is not declared."""
    ingress: str = "INGRESS_TRAFFIC_ALL"
    launch_stage: str | None = None
    iap: IapSpec = IapSpec()
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    adoption: Adoption = Adoption.NEVER
    management_policy: ManagementPolicy = ManagementPolicy.FULL
    invoker_iam_disabled: bool = False
    """Cloud Run's "allow public access" (service-level ``invokerIamDisabled``): the run.invoker IAM check is
    skipped (public when IAP is off); the tenancy policy must allow it."""


def normalise_member(member: str) -> str:
    """IAM compares emails case-insensitively and stores them lower-cased; so do we."""
    kind, sep, rest = member.partition(":")
    if sep and kind in {"user", "group", "serviceAccount", "domain"}:
        return f"{kind}:{rest.lower()}"
    return member


def is_public_member(member: str) -> bool:
    return member.strip().lower() in PUBLIC_MEMBERS


def parse_timestamp(value: str) -> datetime:
    """RFC 3339 as Kubernetes writes it (``Z`` suffix allowed); always timezone-aware UTC.

    Anything that is not such a time in the range Google and Python can both represent (year 1 to 9999 in UTC:
    ``0001-01-01T00:00:00+14:00`` is not) raises ``ValueError``, never ``OverflowError``.
    """
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the years 1 to 9999 in UTC") from None


def _enum(value: Any, kind: type[Enum], where: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(e.value) for e in kind)
        raise InvalidSpecError(f"{where}: {value!r} is not one of {allowed}") from None


def _flag(spec: Mapping[str, Any], key: str) -> bool:
    value = spec.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidSpecError(f"spec.{key}: {value!r} is not true or false")
    return value


def _parse_accessors(raw: Any) -> tuple[Accessor, ...]:
    accessors: list[Accessor] = []
    seen: set[str] = set()
    for index, item in enumerate(raw or ()):
        where = f"spec.iap.accessors[{index}]"
        member = str(item.get("member", ""))
        if is_public_member(member):
            raise InvalidSpecError(f"{where}.member: {member!r} would make the service public; it is never allowed")
        if not MEMBER_RE.match(member):
            raise InvalidSpecError(f"{where}.member: {member!r} is not a supported IAM member")
        member = normalise_member(member)
        if member in seen:
            raise InvalidSpecError(f"{where}.member: {member!r} is listed twice")
        seen.add(member)
        expires_raw = item.get("expires")
        try:
            expires = parse_timestamp(str(expires_raw)) if expires_raw else None
        except ValueError:
            raise InvalidSpecError(f"{where}.expires: {expires_raw!r} is not an RFC 3339 timestamp") from None
        accessors.append(Accessor(member=member, expires=expires, access_levels=_access_levels(item, where)))
    if sum(1 for a in accessors if a.access_levels) > MAX_ACCESSORS_WITH_LEVELS:
        raise InvalidSpecError(
            f"spec.iap.accessors: at most {MAX_ACCESSORS_WITH_LEVELS} accessors may carry accessLevels (grant a "
            "group under the access levels instead of many members)"
        )
    return tuple(accessors)


def _access_levels(item: Mapping[str, Any], where: str) -> tuple[str, ...]:
    raw = item.get("accessLevels") or ()
    if not isinstance(raw, list | tuple) or len(raw) > MAX_ACCESS_LEVELS:
        raise InvalidSpecError(f"{where}.accessLevels: a list of at most {MAX_ACCESS_LEVELS} access level names")
    for level in raw:
        if not isinstance(level, str) or not ACCESS_LEVEL_RE.match(level):
            raise InvalidSpecError(
                f"{where}.accessLevels: {level!r} is not an access level name (accessPolicies/NUMBER/accessLevels/NAME)"
            )
    return tuple(sorted(set(raw)))


# ------------------------------------------------------------------------------------------- spec.iap.settings


def _parse_iap_settings(raw: Any) -> IapSettingsSpec | None:
    try:
        return parse_settings(raw)
    except SettingsError as error:
        raise InvalidSpecError(str(error)) from None


def _cloud_run_template(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's template is Cloud Run v2's RevisionTemplate as it is; only checked, never renamed."""
    template = copy.deepcopy(dict(raw))
    surface.check_template(template)
    return template


def _service_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The declared optional v2 Service fields, checked where Google would refuse them."""
    fields = {key: copy.deepcopy(spec[key]) for key in SERVICE_FIELDS if spec.get(key) is not None}
    surface.check_scaling(fields.get("scaling") or {}, "spec.scaling")
    surface.check_traffic(fields.get("traffic") or ())
    if not isinstance(fields.get("defaultUriDisabled", False), bool):
        raise InvalidSpecError(f"spec.defaultUriDisabled: {fields['defaultUriDisabled']!r} is not true or false")
    if not all(isinstance(a, str) and a for a in fields.get("customAudiences") or ()):
        raise InvalidSpecError("spec.customAudiences: every audience is a non-empty string")
    return fields


def parse_spec(spec: Mapping[str, Any], *, name: str) -> Spec:
    """Parse ``spec`` of the object called ``name``; raise ``InvalidSpecError`` with a precise message.

    Nothing else escapes: a value of a type the schema does not allow (possible when the CRD was installed
    without its schema, or predates it) is an ``InvalidSpecError`` too, so no spec can crash the loop.
    """
    try:
        return _parse_spec(spec, name=name)
    except InvalidSpecError:
        raise
    except (TypeError, AttributeError, ValueError, KeyError, OverflowError, RecursionError) as error:
        raise InvalidSpecError(
            f"spec: a field has a value of a type or form the schema does not allow ({error})"
        ) from None


def _parse_spec(spec: Mapping[str, Any], *, name: str) -> Spec:
    region = str(spec.get("region", ""))
    if not REGION_RE.match(region):
        raise InvalidSpecError(f"spec.region: {region!r} is not a Cloud Run region such as asia-northeast1")
    service_name = str(spec.get("serviceName") or name)
    if not SERVICE_NAME_RE.match(service_name):
        raise InvalidSpecError(
            f"serviceName {service_name!r}: Cloud Run service names are lowercase letters, digits and "
            "hyphens, begin with a letter, do not end with a hyphen, and have at most 49 characters"
        )
    project_id = spec.get("projectID")
    if project_id is not None and not PROJECT_ID_RE.match(str(project_id)):
        raise InvalidSpecError(f"spec.projectID: {project_id!r} is not a Google Cloud project ID")
    labels = surface.check_labels(spec.get("labels") or {}, "spec.labels")
    annotations = surface.check_annotations(spec.get("annotations") or {}, "spec.annotations")
    ingress = spec.get("ingress") or "INGRESS_TRAFFIC_ALL"
    if ingress not in INGRESS:
        raise InvalidSpecError(f"spec.ingress: {ingress!r} is not one of {', '.join(INGRESS)}")
    launch_stage = spec.get("launchStage")
    if launch_stage is not None and launch_stage not in LAUNCH_STAGES:
        raise InvalidSpecError(f"spec.launchStage: {launch_stage!r} is not one of {', '.join(LAUNCH_STAGES)}")
    iap_raw = spec.get("iap") or {}
    iap = IapSpec(
        enabled=bool(iap_raw.get("enabled", True)),
        accessors=_parse_accessors(iap_raw.get("accessors")),
        policy=_enum(iap_raw.get("accessorsPolicy", "Authoritative"), AccessorsPolicy, "spec.iap.accessorsPolicy"),
        public_invoker=_enum(
            iap_raw.get("publicInvokerBindings", "Remove"),
            PublicInvokerPolicy,
            "spec.iap.publicInvokerBindings",
        ),
        settings=_parse_iap_settings(iap_raw.get("settings")),
    )
    return Spec(
        region=region,
        service_name=service_name,
        template=_cloud_run_template(spec.get("template") or {}),
        project_id=str(project_id) if project_id is not None else None,
        description=str(spec.get("description", "")),
        labels=labels,
        annotations=annotations,
        fields=_service_fields(spec),
        ingress=ingress,
        launch_stage=launch_stage,
        iap=iap,
        deletion_policy=_enum(spec.get("deletionPolicy", "Delete"), DeletionPolicy, "spec.deletionPolicy"),
        adoption=_enum(spec.get("adoption", "Never"), Adoption, "spec.adoption"),
        invoker_iam_disabled=_flag(spec, "invokerIamDisabled"),
        management_policy=_enum(spec.get("managementPolicy", "Full"), ManagementPolicy, "spec.managementPolicy"),
    )


def management_policy(spec: Any) -> ManagementPolicy:
    """The spec's management policy read on its own, for deletion: a spec that no longer parses as a whole still
    says whether the operator may touch the service. An unreadable value reads as the most careful one (Paused)."""
    if not isinstance(spec, Mapping):
        return ManagementPolicy.FULL  # no spec to speak of: deletion goes on as it always did
    try:
        return ManagementPolicy(spec.get("managementPolicy") or ManagementPolicy.FULL.value)
    except (ValueError, TypeError):
        return ManagementPolicy.PAUSED
