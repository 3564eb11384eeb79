"""The IAP settings of the service's IAP resource, who can sign in, and ``status.access``.

``observe`` reads the settings (``getIapSettings``) and the values of the secrets the spec names, ``plan`` is
``core.iapsettings.plan_settings`` (the declared fields that differ, the owned fields no longer declared),
``apply`` writes exactly those with an update mask, ``outcome`` reports: ``IapSettingsSynced``, the advisory
``AccessorsCanSignIn`` (accessors the Google-managed OAuth client will not let in), and ``status.access``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.iapsettings import (
    SettingsPlan,
    access_status,
    access_urls,
    cannot_sign_in,
    people,
    plan_settings,
)
from iaprun_operator.core.model import Spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.ports import GooglePorts
from iaprun_operator.results import Event, ObjectView
from iaprun_operator.steps.common import StepOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    settings: Mapping[str, Any]
    secrets: Mapping[str, str]
    """Mask path of each declared client secret -> its value (never logged, never in status)."""


class SecretUnavailableError(Exception):
    def __init__(self, failure: cond.Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def observe(google: GooglePorts, spec: Spec, ref: ServiceRef, resource: str) -> Observed:
    settings = await google.iap.get_settings(resource, ref.project)
    return Observed(settings, await read_secrets(google, spec, ref))


async def read_secrets(google: GooglePorts, spec: Spec, ref: ServiceRef) -> dict[str, str]:
    """The value of each client secret the spec names; ``SecretUnavailableError`` when one cannot be read."""
    secrets: dict[str, str] = {}
    for path, secret in (spec.iap.settings.secrets if spec.iap.settings else {}).items():
        version = secret.resolve(ref.project)
        try:
            secrets[path] = await google.secrets.access(version, ref.project)
        except GoogleError as error:
            if error.kind not in (Kind.PERMISSION, Kind.NOT_FOUND, Kind.INVALID, Kind.FAILED_PRECONDITION):
                raise
            message = f"cannot read the OAuth client secret {version} for {path}: {error.message}"
            raise SecretUnavailableError(cond.Failure("SecretUnavailable", message, stalled=True)) from None
    return secrets


def managed_fields(obj: ObjectView) -> list[str]:
    """The settings leaves the object owns (``status.iapSettings.managedFields``): the step's ledger."""
    return list((obj.status.get("iapSettings") or {}).get("managedFields") or ())


def plan(observed: Observed, spec: Spec, ledger: Sequence[str]) -> SettingsPlan:
    return plan_settings(observed.settings, spec.iap.settings, ledger, observed.secrets)


async def apply(google: GooglePorts, decided: SettingsPlan, ref: ServiceRef, resource: str) -> Mapping[str, Any] | None:
    """Write the plan; the settings Google answered with, or None when nothing was written."""
    if not decided.write:
        return None
    return await google.iap.update_settings(resource, ref.project, decided.body, decided.wire_mask)


async def run(
    google: GooglePorts, obj: ObjectView, spec: Spec, ref: ServiceRef, number: str, status: Mapping[str, Any]
) -> StepOutcome:
    """The step. ``status``: what the pass has found so far (the service's URLs)."""
    ledger = managed_fields(obj)
    if not spec.iap.enabled and spec.iap.settings is None and not ledger:
        return StepOutcome(
            conditions=[
                cond.Condition(cond.IAP_SETTINGS_SYNCED, True, "NotDeclared", "IAP is off; no settings declared")
            ]
        )
    if spec.iap.settings is None and not ledger and _known(obj):
        # Nothing to manage: the settings were read for this generation; a steady pass reads no more (the
        # conditions keep their value), so an object without settings costs no extra read per drift pass.
        return StepOutcome(status={"access": known_access(obj, status)})
    resource = ref.iap_resource(number)
    try:
        observed = await observe(google, spec, ref, resource)
    except SecretUnavailableError as error:
        return StepOutcome(
            conditions=[cond.Condition(cond.IAP_SETTINGS_SYNCED, False, error.failure.reason, error.failure.message)],
            failure=error.failure,
        )
    except GoogleError as error:
        if error.kind is not Kind.PERMISSION or spec.iap.settings is not None or ledger:
            raise
        # Nothing to manage: an account without the settings permission (an install from before settings
        # existed) keeps working; only what the settings would tell is not reported.
        message = f"no IAP settings declared; they cannot be read ({error.message})"
        return StepOutcome(
            conditions=[cond.Condition(cond.IAP_SETTINGS_SYNCED, True, "NotDeclared", message)],
            status={"access": {"urls": access_urls(status)}},
        )
    decided = plan(observed, spec, ledger)
    written = await apply(google, decided, ref, resource)
    out = outcome(decided, written or observed.settings)
    out.status["access"] = access_status(status, written or observed.settings)
    if spec.iap.enabled:
        await _sign_in(google, obj, spec, ref, out)
    return out


def _known(obj: ObjectView) -> bool:
    """Whether a pass of this generation read the settings and reported what they say."""
    access = obj.status.get("access")
    return (
        cond.holds(obj.status.get("conditions") or (), cond.IAP_SETTINGS_SYNCED, obj.generation)
        and isinstance(access, Mapping)
        and "googleManagedClient" in access
    )


def known_access(obj: ObjectView, status: Mapping[str, Any]) -> dict[str, Any]:
    """status.access from what an earlier pass read of the settings, with the service's current URLs."""
    known = obj.status.get("access")
    if not isinstance(known, Mapping) or "googleManagedClient" not in known:
        return {"urls": access_urls(status)}
    oauth: dict[str, Any] = {} if known.get("googleManagedClient", True) else {"clientId": known.get("audience")}
    oauth["programmaticClients"] = list(known.get("programmaticClients") or ())
    return access_status(status, {"accessSettings": {"oauthSettings": oauth}})


def refresh_access(obj: ObjectView, status: dict[str, Any]) -> None:
    """A pass that does not read the settings (polling a rollout) still reports the service's current URLs."""
    if isinstance(obj.status.get("access"), Mapping):
        status["access"] = known_access(obj, status)


def outcome(decided: SettingsPlan, settings: Mapping[str, Any]) -> StepOutcome:
    out = StepOutcome(status={"iapSettings": {"managedFields": list(decided.ledger)}})
    if decided.record_first:
        fields = ", ".join(c.path for c in decided.changes)
        out.conditions.append(cond.Condition(cond.IAP_SETTINGS_SYNCED, False, "Updating", f"setting {fields}"))
        out.progress = cond.Progress("Updating", f"setting IAP settings {fields}")
        return out
    if decided.write:
        out.events.append(
            Event.normal("IapSettingsUpdated", "IAP settings: " + "; ".join(c.describe() for c in decided.changes))
        )
    count = len(decided.ledger)
    message = f"{count} IAP setting(s) as declared" if count else "no IAP settings declared"
    out.conditions.append(cond.Condition(cond.IAP_SETTINGS_SYNCED, True, "Synced", message))
    return out


async def _sign_in(google: GooglePorts, obj: ObjectView, spec: Spec, ref: ServiceRef, out: StepOutcome) -> None:
    """AccessorsCanSignIn: with the Google-managed client, only the organisation's identities can sign in."""
    if not out.status["access"]["googleManagedClient"]:
        out.conditions.append(
            cond.Condition(cond.ACCESSORS_CAN_SIGN_IN, True, "CustomOAuthClient", "IAP uses a custom OAuth client")
        )
        return
    members = [a.member for a in spec.iap.accessors]
    try:
        domains = await google.organizations.domains(ref.project) if people(members) else ()
    except GoogleError as error:
        log.info("cannot tell who can sign in to %s: %s", ref.name, error.message)
        return  # the condition keeps what an earlier pass found; nothing is claimed without knowing
    outside = cannot_sign_in(members, domains)
    if not outside:
        message = "the accessors are identities of the project's organisation (Google-managed OAuth client)"
        out.conditions.append(cond.Condition(cond.ACCESSORS_CAN_SIGN_IN, True, "InsideOrganization", message))
        return
    reason = "NoOrganization" if domains is None else "OutsideOrganization"
    where = (
        f"project {ref.project} has no organisation"
        if domains is None
        else f"they are outside the organisation's domain ({', '.join(domains) or 'unknown'})"
    )
    message = (
        f"{', '.join(outside)} cannot sign in: IAP uses the Google-managed OAuth client and {where}; "
        "configure a custom OAuth client in spec.iap.settings.accessSettings.oauthSettings"
    )
    out.conditions.append(cond.Condition(cond.ACCESSORS_CAN_SIGN_IN, False, reason, message))
    before = cond.find(obj.status.get("conditions") or (), cond.ACCESSORS_CAN_SIGN_IN) or {}
    if (before.get("status"), before.get("message")) != ("False", message):
        out.events.append(Event.warning("AccessorsCannotSignIn", message))
