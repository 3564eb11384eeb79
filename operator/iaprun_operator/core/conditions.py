"""Conditions in the kstatus shape that ``kubectl wait``, Argo CD and Flux read.

- ``Ready`` is always present; True only when Cloud Run reports the service ready *and* every step
  condition matches the spec. Reasons follow Config Connector (UpToDate, Creating, Updating,
  UpdateFailed, DeleteFailed, DependencyNotReady, ManagementConflict) so existing health scripts know them.
- ``Reconciling`` and ``Stalled`` are present only while True (kstatus abnormal-true conditions). Stalled
  reasons include ``ApiNotEnabled`` and ``OrgPolicyDenied`` (prerequisites and organisation policy).
- Step conditions (``ServiceReady``, ``IapEnabled``, ``InvokerGranted``, ``AccessorsSynced``,
  ``IapSettingsSynced``) say which part is not there yet; ``AccessorsCanSignIn`` is advisory (never holds
  Ready back): False names accessors the Google-managed OAuth client will not let sign in.

``lastTransitionTime`` changes only when a condition's status changes, and every condition carries the
generation it was computed for, written in the same patch as ``status.observedGeneration``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
SERVICE_READY = "ServiceReady"
IAP_ENABLED = "IapEnabled"
INVOKER_GRANTED = "InvokerGranted"
ACCESSORS_SYNCED = "AccessorsSynced"
IAP_SETTINGS_SYNCED = "IapSettingsSynced"
ACCESSORS_CAN_SIGN_IN = "AccessorsCanSignIn"
ADVISORY_TYPES = (ACCESSORS_CAN_SIGN_IN,)
"""Reported but not part of Ready: whether people can sign in depends on their directory, not on this object."""
SYNCED = "Synced"
"""Present only under managementPolicy ObserveOnly (the plan's summary) or Paused (issue 16); Full drops it."""
STEP_TYPES = (SERVICE_READY, IAP_ENABLED, INVOKER_GRANTED, ACCESSORS_SYNCED, IAP_SETTINGS_SYNCED, *ADVISORY_TYPES)
ORDER = (READY, RECONCILING, STALLED, SYNCED, *STEP_TYPES)

_MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""


API_NOT_ENABLED = "ApiNotEnabled"
"""Stalled reason: Google says an API the operator needs is not enabled (the message names it, the project and
the ``gcloud services enable`` command)."""
ORG_POLICY_DENIED = "OrgPolicyDenied"
"""Stalled reason: an organisation policy (domain-restricted sharing) refused a policy write naming members."""


@dataclass(frozen=True)
class Failure:
    """Why the object is not progressing: ``stalled`` when only a spec or permission change helps."""

    reason: str
    message: str
    stalled: bool
    recheck: bool = False
    """Stalled on something outside Kubernetes that sends no event when fixed (an API enabled later): the
    object is still looked at again with the retry backoff, so it recovers by itself."""


@dataclass(frozen=True)
class Progress:
    """Work in flight (a Cloud Run operation, a retry after a transient error)."""

    reason: str
    message: str


def summarise(
    steps: Sequence[Condition], *, progress: Progress | None = None, failure: Failure | None = None
) -> list[Condition]:
    """Ready (+ Reconciling/Stalled when True) followed by the step conditions."""
    conditions: list[Condition] = []
    if failure is not None:
        conditions.append(Condition(READY, False, failure.reason, failure.message))
        if failure.stalled:
            conditions.append(Condition(STALLED, True, failure.reason, failure.message))
        else:
            conditions.append(Condition(RECONCILING, True, failure.reason, failure.message))
    elif progress is not None:
        conditions.append(Condition(READY, False, progress.reason, progress.message))
        conditions.append(Condition(RECONCILING, True, progress.reason, progress.message))
    else:
        pending = [s for s in steps if not s.status and s.type not in ADVISORY_TYPES]
        if pending:
            first = pending[0]
            conditions.append(Condition(READY, False, "DependencyNotReady", f"{first.type}: {first.message}"))
        else:
            conditions.append(
                Condition(READY, True, "UpToDate", "The Cloud Run service is ready and protected as declared")
            )
    return conditions + list(steps)


def _status_word(value: bool) -> str:
    return "True" if value else "False"


def render(
    conditions: Sequence[Condition],
    previous: Sequence[Mapping[str, Any]],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """metav1.Condition dicts, keeping ``lastTransitionTime`` of conditions whose status is unchanged.

    Step conditions not mentioned this time keep their previous value (a failure early in the loop says
    nothing new about later steps), but Reconciling/Stalled vanish unless re-asserted.
    """
    before = {str(c.get("type")): c for c in previous}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    out: dict[str, dict[str, Any]] = {}
    for cond in conditions:
        word = _status_word(cond.status)
        old = before.get(cond.type)
        changed = old is None or old.get("status") != word
        out[cond.type] = {
            "type": cond.type,
            "status": word,
            "reason": cond.reason,
            "message": cond.message[:_MAX_MESSAGE],
            "lastTransitionTime": stamp if changed or old is None else old.get("lastTransitionTime", stamp),
            "observedGeneration": generation,
        }
    for kind in STEP_TYPES:
        if kind not in out and kind in before:
            out[kind] = dict(before[kind])
    return [out[t] for t in ORDER if t in out]


def replace(
    previous: Sequence[Mapping[str, Any]], condition: Condition, *, generation: int, now: datetime
) -> list[dict[str, Any]]:
    """``previous`` as it is, with ``condition`` set (a pass that looks at nothing else: Paused)."""
    fresh = render([condition], previous, generation=generation, now=now)
    (rendered,) = (c for c in fresh if c["type"] == condition.type)
    kept = {str(c.get("type")): dict(c) for c in previous if c.get("type") != condition.type}
    kept[condition.type] = rendered
    return [kept[t] for t in ORDER if t in kept]


def find(conditions: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def holds(conditions: Sequence[Mapping[str, Any]], kind: str, generation: int | None = None) -> bool:
    """Whether the condition ``kind`` is True (and, given ``generation``, was set by a pass of that generation)."""
    found = find(conditions, kind)
    if found is None or found.get("status") != "True":
        return False
    return generation is None or found.get("observedGeneration") == generation
