"""What Cloud Run reports about a service the pass did not write: ServiceReady and IapEnabled conditions.

Part of the service step (``steps.service``), kept apart so each module reads on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError
from iaprun_operator.core.model import Spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.results import Event, ObjectView
from iaprun_operator.steps.common import StepOutcome


@dataclass
class ServiceOutcome(StepOutcome):
    proceed: bool = False
    """The service exists and is this object's: its IAM can be kept right in this pass."""
    revision_failure: cond.Failure | None = None
    """Cloud Run reports the latest revision failed (already announced; the IAM steps still run)."""
    error: GoogleError | None = None
    """A Google call failed; what the outcome holds was settled before it."""


def readiness(ref: ServiceRef, obj: ObjectView, observed: Mapping[str, Any], out: ServiceOutcome) -> None:
    """ServiceReady as Cloud Run reports it, for a service the pass did not write."""
    terminal = observed.get("terminalCondition") or {}
    state = terminal.get("state", "")
    if observed.get("reconciling"):
        out.progress = cond.Progress("Updating", f"Cloud Run is rolling out {ref.name}")
        out.conditions.append(
            cond.Condition(cond.SERVICE_READY, False, "Reconciling", "Cloud Run is rolling out a revision")
        )
    elif state == "CONDITION_FAILED":
        reason = _camel(str(terminal.get("reason") or terminal.get("revisionReason") or "RevisionFailed"))
        message = str(terminal.get("message") or "Cloud Run reports the service failed")
        out.conditions.append(cond.Condition(cond.SERVICE_READY, False, reason, message))
        if obj.status.get("latestCreatedRevision") != observed.get("latestCreatedRevision"):
            out.events.append(Event.warning(reason, message))
        # The service exists, so its IAM is still kept right while the revision is broken.
        out.revision_failure = cond.Failure(reason, message, stalled=True)
    elif state == "CONDITION_SUCCEEDED":
        out.conditions.append(cond.Condition(cond.SERVICE_READY, True, "Ready", "Cloud Run reports the service ready"))
    else:
        out.progress = cond.Progress("Updating", f"Cloud Run reports {state or 'no state'} for {ref.name}")
        out.conditions.append(
            cond.Condition(cond.SERVICE_READY, False, "Pending", f"Cloud Run state {state or 'unknown'}")
        )


def iap_condition(spec: Spec, observed: bool, *, pending: bool) -> cond.Condition:
    if pending or observed != spec.iap.enabled:
        return cond.Condition(cond.IAP_ENABLED, False, "Updating", f"Setting iapEnabled to {spec.iap.enabled}")
    if spec.iap.enabled:
        return cond.Condition(cond.IAP_ENABLED, True, "Enabled", "IAP is enabled on the service")
    return cond.Condition(cond.IAP_ENABLED, True, "Disabled", "IAP is disabled as declared (invoker IAM still applies)")


def _camel(reason: str) -> str:
    if reason.isupper() or "_" in reason:
        return "".join(part.capitalize() for part in reason.lower().split("_"))
    return reason
