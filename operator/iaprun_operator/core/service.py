"""Desired Cloud Run v2 Service from a spec, and the minimal update between desired and observed.

Both sides are v2 JSON dicts (camelCase, enums by name) so that they compare directly with what the
API returns. Cloud Run fills many server-side defaults into the template (ports, resources, probes,
scaling, timeout), so the template is compared in two ways:

- a hash of the desired template (kept in status as ``templateHash``) tells whether the *spec* changed
  since the last successful apply: then the template is written, whatever Cloud Run reports;
- otherwise the observed template must contain every value the spec declares (subset comparison after
  normalising quantities): a mismatch is out-of-band drift and the template is written back.

The optional service-level fields (``SERVICE_FIELDS``: traffic, scaling, ...) work the same way, one
fingerprint per declared field kept in ``status.applied.fields``: a field whose fingerprint is recorded but
which the spec no longer declares is written empty once (Google then restores its default), so removing a
field from the spec removes it from the service. The user's annotation keys are recorded too
(``status.applied.annotations``): other tools' annotations are kept, the ones the spec dropped are removed.

A field the spec does not declare is left to Cloud Run; that is what makes steady state write-free.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from iaprun_operator.core.model import SERVICE_FIELDS, Spec
from iaprun_operator.core.names import (
    ABANDONED_BY_ANNOTATION,
    DELETION_POLICY_ANNOTATION,
    OWNER_ANNOTATION,
    OWNER_LABEL,
    Owner,
)
from iaprun_operator.core.surface import TRAFFIC_LATEST, TRAFFIC_REVISION

# Label keys that Google itself may put on a service; the operator never removes them.
_SYSTEM_LABEL_PREFIXES = ("goog-", "cloud.googleapis.com", "run.googleapis.com")


def _fingerprint(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def template_hash(spec: Spec) -> str:
    """A short fingerprint of what the spec asks for the template (and its launch stage)."""
    return _fingerprint([spec.template, spec.launch_stage])


def field_hashes(spec: Spec) -> dict[str, str]:
    """A fingerprint of each declared optional service-level field (``status.applied.fields``)."""
    return {name: _fingerprint(value) for name, value in spec.fields.items()}


def applied_status(spec: Spec, previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``status.applied`` after writing (or confirming) ``spec``, as a merge patch over ``previous``.

    None when there is nothing to record and nothing was; a field no longer declared is patched away.
    """
    fields: dict[str, str | None] = dict(field_hashes(spec))
    old_fields = dict((previous or {}).get("fields") or {})
    if not fields and not spec.annotations and not old_fields and not (previous or {}).get("annotations"):
        return None
    fields.update({name: None for name in old_fields if name not in fields})
    return {"fields": fields or None, "annotations": sorted(spec.annotations) or None}


def ownership(service: Mapping[str, Any]) -> str | None:
    """The owner label on an observed service, or None when nobody claims it."""
    labels = service.get("labels") or {}
    value = labels.get(OWNER_LABEL)
    return str(value) if value else None


def desired_labels(spec: Spec, owner: Owner | None, observed: Mapping[str, Any] | None) -> dict[str, str]:
    kept = {k: v for k, v in ((observed or {}).get("labels") or {}).items() if k.startswith(_SYSTEM_LABEL_PREFIXES)}
    labels = {**kept, **spec.labels}
    if owner is not None:
        labels[OWNER_LABEL] = owner.label
    return labels


_OPERATOR_ANNOTATIONS = (OWNER_ANNOTATION, DELETION_POLICY_ANNOTATION, ABANDONED_BY_ANNOTATION)


def desired_annotations(
    spec: Spec, owner: Owner | None, observed: Mapping[str, Any] | None, applied: Sequence[str] = ()
) -> dict[str, str]:
    """Other tools' annotations are kept; managed are the operator's own keys (the readable owner and the
    deletion policy, what the orphan sweep honours if the object goes without its finalizer) and the spec's,
    including the ones it declared before (``applied``) and no longer does, which are removed."""
    managed = set(_OPERATOR_ANNOTATIONS) | set(applied)
    annotations = {k: v for k, v in ((observed or {}).get("annotations") or {}).items() if k not in managed}
    annotations.update(spec.annotations)
    if owner is not None:
        annotations[OWNER_ANNOTATION] = owner.readable
        annotations[DELETION_POLICY_ANNOTATION] = spec.deletion_policy.value
    return annotations


def desired_service(
    spec: Spec, owner: Owner | None, observed: Mapping[str, Any] | None = None, applied: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The v2 Service body the operator writes (create body, or patch body with a mask); ``applied`` is
    ``status.applied`` (what the operator wrote before)."""
    service: dict[str, Any] = {
        **{name: copy.deepcopy(value) for name, value in spec.fields.items()},
        "labels": desired_labels(spec, owner, observed),
        "annotations": desired_annotations(spec, owner, observed, (applied or {}).get("annotations") or ()),
        "ingress": spec.ingress,
        "iapEnabled": spec.iap.enabled,
        # Always written, false unless the spec asks: a service the operator creates or adopts is never
        # public by Cloud Run's "allow public access" switch without the spec saying so.
        "invokerIamDisabled": spec.invoker_iam_disabled,
        "template": dict(spec.template),
    }
    if spec.description:
        service["description"] = spec.description
    if spec.launch_stage:
        service["launchStage"] = spec.launch_stage
    return service


_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)s$")
_QUANTITIES = frozenset({"cpu", "memory", "sizeLimit", "nvidia.com/gpu"})


def _normalise_scalar(key: str, value: Any) -> Any:
    """Cloud Run may spell an equal value differently: "1000m" CPU is "1", int64 comes as a string."""
    if isinstance(value, bool) or value is None:
        return value
    text = str(value)
    if key in _QUANTITIES:
        # Kubernetes' own quantity grammar: "1000m" is "1", "1Gi" is "1024Mi"; not a quantity: compared as is.
        with contextlib.suppress(ValueError):
            return float(parse_quantity(text))  # type: ignore[no-untyped-call]
    if m := _DURATION_RE.match(text):
        return float(m.group(1))
    if isinstance(value, int | float):
        return float(value)
    if re.fullmatch(r"-?\d+", text):
        return float(text)
    return value


def _is_empty(value: Any) -> bool:
    return value in (None, False, 0, "", [], {})


def contains(want: Any, have: Any, key: str = "") -> bool:
    """True when ``have`` holds every value ``want`` declares (server defaults in ``have`` are fine)."""
    if isinstance(want, Mapping):
        if have is None:
            return all(_is_empty(v) for v in want.values())
        if not isinstance(have, Mapping):
            return False
        return all(contains(v, have.get(k), k) for k, v in want.items())
    if isinstance(want, list):
        have_list = have or []
        if not isinstance(have_list, list) or len(have_list) != len(want):
            return False
        return all(contains(w, h, key) for w, h in zip(want, have_list, strict=True))
    if have is None:
        return _is_empty(want)
    return bool(_normalise_scalar(key, want) == _normalise_scalar(key, have))


@dataclass(frozen=True)
class ServiceUpdate:
    """The fields to write (``updateMask`` paths in camelCase) and why, for Events and logs."""

    mask: tuple[str, ...]
    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.mask)


def _traffic_key(target: Mapping[str, Any]) -> tuple[str, str, float, str]:
    """A traffic target as Google normalises it: the type implied by a revision, percent 0 left out."""
    revision = str(target.get("revision") or "")
    kind = str(target.get("type") or (TRAFFIC_REVISION if revision else TRAFFIC_LATEST))
    return kind, revision, float(target.get("percent") or 0), str(target.get("tag") or "")


def same_field(name: str, want: Any, have: Any) -> bool:
    """Whether the observed value of service-level field ``name`` holds the declared one."""
    if name == "traffic":
        return sorted(map(_traffic_key, want or ())) == sorted(map(_traffic_key, have or ()))
    return contains(want, have, name)


_DEFAULT_TRAFFIC = [{"type": TRAFFIC_LATEST, "percent": 100}]


def _is_default(name: str, have: Any) -> bool:
    """Whether an observed value is what Google shows for a field nobody set (nothing to remove)."""
    return contains(have, None, name) or (name == "traffic" and same_field(name, _DEFAULT_TRAFFIC, have))


def _plan_fields(
    desired: Mapping[str, Any], observed: Mapping[str, Any], applied: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(field, reason) for each optional service-level field to write: changed in the spec, drifted, or
    declared before and removed from the spec while the service still has a value."""
    out: list[tuple[str, str]] = []
    for name in SERVICE_FIELDS:
        if name in desired:
            if applied.get(name) != _fingerprint(desired[name]):
                out.append((name, f"the spec's {name} changed"))
            elif not same_field(name, desired[name], observed.get(name)):
                out.append((name, f"{name} was changed outside the operator"))
        elif name in applied and not _is_default(name, observed.get(name)):
            out.append((name, f"{name} was removed from the spec"))
    return out


def plan_update(
    desired: Mapping[str, Any],
    observed: Mapping[str, Any],
    *,
    applied_hash: str | None,
    desired_hash: str,
    applied_fields: Mapping[str, str] | None = None,
) -> ServiceUpdate:
    """Which top-level fields differ between desired and observed; empty when nothing needs writing.

    ``applied_fields`` is ``status.applied.fields``: the fingerprint of each optional field last written."""
    mask: list[str] = []
    reasons: list[str] = []

    def differs(path: str, why: str) -> None:
        mask.append(path)
        reasons.append(why)

    if dict(observed.get("labels") or {}) != dict(desired.get("labels") or {}):
        differs("labels", "labels differ")
    have, want = dict(observed.get("annotations") or {}), dict(desired.get("annotations") or {})
    # A service from before the deletion-policy mark is not written for the mark alone (no write when
    # nothing the user asked for changed); it gets the mark with the next write that happens anyway.
    unmarked = DELETION_POLICY_ANNOTATION not in have
    if have != want and not (unmarked and have == {k: v for k, v in want.items() if k != DELETION_POLICY_ANNOTATION}):
        differs("annotations", "the operator's annotations differ")
    if str(observed.get("description") or "") != str(desired.get("description") or ""):
        differs("description", "description differs")
    observed_ingress = observed.get("ingress") or "INGRESS_TRAFFIC_UNSPECIFIED"
    if observed_ingress not in ("INGRESS_TRAFFIC_UNSPECIFIED", desired["ingress"]):
        differs("ingress", f"ingress is {observed_ingress}, want {desired['ingress']}")
    if bool(observed.get("iapEnabled")) != bool(desired["iapEnabled"]):
        differs("iapEnabled", f"iapEnabled is {bool(observed.get('iapEnabled'))}, want {desired['iapEnabled']}")
    have_disabled, want_disabled = bool(observed.get("invokerIamDisabled")), bool(desired.get("invokerIamDisabled"))
    if have_disabled != want_disabled:
        differs("invokerIamDisabled", f"invokerIamDisabled is {have_disabled}, want {want_disabled}")
    # No hash: this object never wrote the template (it adopts the service, or status was lost). The template is
    # then written only when the service does not hold what the spec declares: adopting a service as exported
    # (``iaprun export``) rolls no new revision.
    if applied_hash is not None and applied_hash != desired_hash:
        differs("template", "the spec's template changed")
    elif not contains(desired["template"], observed.get("template")):
        differs("template", "the template was changed outside the operator")
    if "template" in mask and "launchStage" in desired:
        mask.append("launchStage")
    for name, why in _plan_fields(desired, observed, applied_fields or {}):
        differs(name, why)
    if mask and unmarked and "annotations" not in mask and DELETION_POLICY_ANNOTATION in want:
        mask.append("annotations")
    return ServiceUpdate(mask=tuple(mask), reasons=tuple(reasons))


def without_owner(observed: Mapping[str, Any]) -> dict[str, Any]:
    """Labels and annotations of an abandoned service: the operator's marks removed, and the owner label it
    had left as ``iaprun.dev/abandoned-by`` (so that owner, and only it, may take the service back)."""
    labels = {k: v for k, v in (observed.get("labels") or {}).items() if k != OWNER_LABEL}
    annotations = {k: v for k, v in (observed.get("annotations") or {}).items() if k not in _OPERATOR_ANNOTATIONS}
    if owner := ownership(observed):
        annotations[ABANDONED_BY_ANNOTATION] = owner
    return {"labels": labels, "annotations": annotations}


def abandoned_by(service: Mapping[str, Any]) -> str | None:
    """The owner label of the object that abandoned ``service``, if one did."""
    value = (service.get("annotations") or {}).get(ABANDONED_BY_ANNOTATION)
    return str(value) if value else None


_TRAFFIC_STATUS_KEYS = ("type", "revision", "percent", "tag", "uri")


def observed_status(observed: Mapping[str, Any]) -> dict[str, Any]:
    """What users look for, as Google reports it: revisions, URLs and where the traffic goes (tag URLs too).

    A value Google stops reporting is removed (None in the merge patch), never left stale."""
    status: dict[str, Any] = {
        key: observed.get(key) or None for key in ("latestReadyRevision", "latestCreatedRevision", "urls")
    }
    status["url"] = observed.get("uri") or None
    traffic = [
        {key: target[key] for key in _TRAFFIC_STATUS_KEYS if target.get(key) not in (None, "")}
        for target in observed.get("trafficStatuses") or ()
    ]
    status["traffic"] = traffic or None
    return {key: value for key, value in status.items() if value is not None or key != "url"}


def listing_confirms(status: Mapping[str, Any], listed: Mapping[str, Any]) -> bool:
    """Whether a listed copy of the service says nothing the object's status does not already say."""
    settled = not listed.get("reconciling") and (listed.get("terminalCondition") or {}).get("state") == (
        "CONDITION_SUCCEEDED"
    )
    return settled and all(status.get(key) == value for key, value in observed_status(listed).items())
