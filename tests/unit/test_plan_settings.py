"""The plan's IAP settings entries (issue 16 x issue 15): the settings step's own decision, rendered, read-only.

Proves: an ``ObserveOnly`` pass lists each IAP settings field a ``Full`` pass would write (IAP v1 path, from ->
to), a field the object owns but no longer declares as cleared, a client secret only as ``(secret)`` (its value
appears nowhere in status), counts them in ``changes`` and the ``Synced`` summary, and the entries are exactly
``steps.iapsettings.plan``'s changes (one planner); it only reads (a fake that fails on any write, the settings
update included); an object that declares no settings and owns none reads no settings; a service about to be
created is planned against no settings; a secret that cannot be read is reported, not guessed; ``Paused`` reads
nothing, settings included; ``iaprun plan`` prints the entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from iaprun_operator import planner
from iaprun_operator.cli.planning import OPEN_POLICY, _text
from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.model import parse_spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.service import desired_service, template_hash
from iaprun_operator.reconcile import reconcile
from iaprun_operator.results import ObjectView
from iaprun_operator.settings import Settings
from iaprun_operator.steps import iapsettings
from unit import test_plan as plan_fake

NOW = datetime(2026, 12, 1, tzinfo=UTC)
REF = ServiceRef("demo-project", "asia-northeast1", "hello")
OPEN = Settings(tenancy=OPEN_POLICY)
CLIENT = "123-custom.apps.googleusercontent.com"
SECRET_VALUE = "s3cret-value-never-shown"
OAUTH = {"clientId": CLIENT, "clientSecretSource": {"secretKeyRef": {"secret": "iap-oauth"}}, "loginHint": "a.example"}
SPEC: dict[str, Any] = {
    "projectID": "demo-project",
    "region": "asia-northeast1",
    "template": {"containers": [{"image": "hello"}]},
    "iap": {
        "accessors": [{"member": "user:alice@example.com"}],
        "settings": {
            "accessSettings": {"oauthSettings": OAUTH, "corsSettings": {"allowHttpOptions": True}},
            "applicationSettings": {"cookieDomain": "example.com"},
        },
    },
    "managementPolicy": "ObserveOnly",
}
AGENT = "serviceAccount:service-123@gcp-sa-iap.iam.gserviceaccount.com"
IN_PLACE = {  # the service's policies exactly as the spec declares them: only the settings differ
    "run": {"bindings": [{"role": "roles/run.invoker", "members": [AGENT]}]},
    "iap": {"bindings": [{"role": "roles/iap.httpsResourceAccessor", "members": ["user:alice@example.com"]}]},
}
DRIFTED = {
    "accessSettings": {
        "oauthSettings": {"clientId": CLIENT, "clientSecretSha256": "0" * 64, "loginHint": "evil.example"},
        "corsSettings": {"allowHttpOptions": True},
        "gcipSettings": {"loginPageUri": "https://owned.example/login"},
    },
    "applicationSettings": {"cookieDomain": "example.com"},
}


def read_only(
    service: Mapping[str, Any] | None, settings: Mapping[str, Any], secret: Any = SECRET_VALUE
) -> plan_fake.ReadOnly:
    """The planner's read-only Google (``test_plan.ReadOnly``) with the policies as declared, ``settings`` read."""
    return plan_fake.ReadOnly(service, IN_PLACE["run"], IN_PLACE["iap"], settings, secret)


def _obj(spec: Mapping[str, Any], managed: list[str] | None = None) -> ObjectView:
    status: dict[str, Any] = {"templateHash": template_hash(parse_spec(spec, name="hello"))}
    if managed is not None:
        status["iapSettings"] = {"managedFields": managed}
    return ObjectView("team-a", "hello", 4, spec, status, "c1")


def _service(spec: Mapping[str, Any]) -> dict[str, Any]:
    service = desired_service(parse_spec(spec, name="hello"), _obj(spec).owner)
    service["terminalCondition"] = {"state": "CONDITION_SUCCEEDED"}
    return service


OWNED = [
    "accessSettings.corsSettings.allowHttpOptions",
    "accessSettings.gcipSettings.loginPageUri",  # declared once, no longer: a Full pass clears it
    "accessSettings.oauthSettings.clientId",
    "accessSettings.oauthSettings.clientSecret",
    "accessSettings.oauthSettings.loginHint",
    "applicationSettings.cookieDomain",
]


async def test_observe_only_lists_the_settings_changes_with_secrets_masked_and_writes_nothing() -> None:
    google: Any = read_only(_service(SPEC), DRIFTED)
    result = await reconcile(_obj(SPEC, OWNED), google, OPEN, NOW)
    assert "iap.getIapSettings" in google.calls
    assert "secrets.access projects/demo-project/secrets/iap-oauth/versions/latest" in google.calls
    plan = result.status["plan"]
    assert plan["iapSettings"] == [
        {"field": "accessSettings.oauthSettings.loginHint", "from": "evil.example", "to": "a.example"},
        {"field": "accessSettings.oauthSettings.clientSecret", "from": "(secret)", "to": "(secret)"},
        {"field": "accessSettings.gcipSettings.loginPageUri", "from": "https://owned.example/login", "to": "(unset)"},
    ]
    assert plan["changes"] == 3
    assert plan["service"]["fields"] == []
    assert plan["iam"] == []
    assert SECRET_VALUE not in json.dumps(result.status), "a client secret's value never reaches status"
    synced = cond.find(result.status["conditions"], cond.SYNCED) or {}
    assert synced["status"] == "False"
    assert "set IAP settings accessSettings.oauthSettings.loginHint" in synced["message"]
    pending = cond.find(result.status["conditions"], cond.IAP_SETTINGS_SYNCED) or {}
    assert (pending["status"], pending["reason"]) == ("False", "ChangesPending")
    assert "iapSettings" not in result.status, "an ObserveOnly pass leaves the settings ledger as it was"


async def test_the_entries_are_the_settings_steps_own_decision() -> None:
    """One planner: the plan shows ``steps.iapsettings.plan``'s changes, in its order, nothing computed apart."""
    google: Any = read_only(_service(SPEC), DRIFTED)
    spec = parse_spec(SPEC, name="hello")
    seen = await planner.plan(google, _obj(SPEC, OWNED), spec, REF, OPEN, NOW)
    observed = iapsettings.Observed(DRIFTED, {"accessSettings.oauthSettings.clientSecret": SECRET_VALUE})
    assert seen.plan.settings == iapsettings.plan(observed, spec, OWNED).changes


async def test_settings_as_declared_plan_nothing_and_say_so() -> None:
    as_declared = {
        "accessSettings": {
            "oauthSettings": {
                "clientId": CLIENT,
                "clientSecretSha256": hashlib.sha256(SECRET_VALUE.encode()).hexdigest(),
                "loginHint": "a.example",
            },
            "corsSettings": {"allowHttpOptions": True},
        },
        "applicationSettings": {"cookieDomain": "example.com"},
    }
    google: Any = read_only(_service(SPEC), as_declared)
    result = await reconcile(_obj(SPEC), google, OPEN, NOW)
    assert result.status["plan"]["changes"] == 0
    assert result.status["plan"]["iapSettings"] == []
    synced = cond.find(result.status["conditions"], cond.IAP_SETTINGS_SYNCED) or {}
    assert (synced["status"], synced["reason"]) == ("True", "AsDeclared")


async def test_no_settings_declared_nor_owned_reads_no_settings() -> None:
    spec = {**SPEC, "iap": {"accessors": SPEC["iap"]["accessors"]}}
    google: Any = read_only(_service(spec), DRIFTED)
    result = await reconcile(_obj(spec), google, OPEN, NOW)
    assert "iap.getIapSettings" not in google.calls
    assert result.status["plan"]["iapSettings"] == []
    assert cond.find(result.status["conditions"], cond.IAP_SETTINGS_SYNCED) is None


async def test_a_service_to_create_is_planned_against_no_settings() -> None:
    google: Any = read_only(None, DRIFTED)
    seen = await planner.plan(google, _obj(SPEC), parse_spec(SPEC, name="hello"), REF, OPEN, NOW)
    assert "iap.getIapSettings" not in google.calls, "a service that does not exist has no settings to read"
    assert [(c.path, c.before) for c in seen.plan.settings] == [
        ("accessSettings.corsSettings.allowHttpOptions", None),
        ("accessSettings.oauthSettings.clientId", None),
        ("accessSettings.oauthSettings.loginHint", None),
        ("applicationSettings.cookieDomain", None),
        ("accessSettings.oauthSettings.clientSecret", None),
    ]
    assert "iapSettings.accessSettings.oauthSettings.clientSecret: (unset) -> (secret)" in "\n".join(
        _text(seen.plan)
    ), "iaprun plan prints each settings entry"


async def test_an_unreadable_secret_is_reported_not_guessed() -> None:
    denied = GoogleError(Kind.PERMISSION, "Permission denied on secret", api="secretmanager", method="access")
    google: Any = read_only(_service(SPEC), DRIFTED, secret=denied)
    result = await reconcile(_obj(SPEC, OWNED), google, OPEN, NOW)
    assert result.status["plan"]["iapSettings"] == []
    assert any("IAP settings not planned" in note for note in result.status["plan"]["notes"])
    unplanned = cond.find(result.status["conditions"], cond.IAP_SETTINGS_SYNCED) or {}
    assert (unplanned["status"], unplanned["reason"]) == ("False", "SecretUnavailable")


async def test_paused_reads_nothing_settings_included() -> None:
    google: Any = read_only(_service(SPEC), DRIFTED)
    await reconcile(_obj({**SPEC, "managementPolicy": "Paused"}, OWNED), google, OPEN, NOW)
    assert google.calls == []
