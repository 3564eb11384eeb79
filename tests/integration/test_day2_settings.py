"""Day-2 controls over the IAP settings (issue 16 x issue 15), against the real API server, the operator process
and the emulator, judged by the object's status and the emulator's request log.

Proves: under ObserveOnly an out-of-band change of a declared settings field is listed in status.plan as exactly
that entry (IAP v1 path, from -> to), counted and summarised, and nothing is written over several passes;
switched to Full, the only write is one updateIapSettings whose mask and value are the plan's entry; a service
with settings made by hand (a custom OAuth client with a secret included) round-trips through ``iaprun export``:
applied, its plan is empty, switched to Full the only write is the adoption's marks (the secret left in place);
``iaprun plan -f`` exits 2 when only a settings field differs, and prints it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gcpemu.admin import AdminClient
from integration.harness import (
    WRITES,
    OperatorProcess,
    apply,
    calls,
    condition,
    get,
    manage_fully,
    manifest,
    passes,
    wait_for,
    wait_ready,
)
from integration.test_day2_cli import exported, iaprun, make_by_hand
from integration.test_iap_settings import out_of_band, stored
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT = "demo-project"
SETTINGS_WRITE = "iap.updateIapSettings"
ALL_WRITES = (*WRITES, SETTINGS_WRITE)
LOGIN_HINT = "accessSettings.oauthSettings.loginHint"
CLIENT = "123-custom.apps.googleusercontent.com"


def _plan(kubectl: Runner, namespace: str, svc: str) -> dict[str, Any]:
    plan: dict[str, Any] = get(kubectl, namespace, svc)["status"].get("plan") or {}
    return plan


def test_observe_only_plans_a_settings_drift_writes_nothing_and_full_writes_exactly_that(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str, svc: str
) -> None:
    settings = {"accessSettings": {"oauthSettings": {"loginHint": "example.com"}}, "applicationSettings": {}}
    settings["applicationSettings"] = {"cookieDomain": "example.com"}
    body = manifest(svc, iap={"accessors": [{"member": "user:alice@example.com"}], "settings": settings})
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    body["spec"]["managementPolicy"] = "ObserveOnly"
    apply(kubectl, namespace, body)
    wait_for(lambda: condition(get(kubectl, namespace, svc), "Synced"), timeout=30, what="the Synced condition")
    assert _plan(kubectl, namespace, svc)["changes"] == 0

    out_of_band(
        emulator_url,
        emu,
        svc,
        "iapSettings." + LOGIN_HINT,
        {"accessSettings": {"oauthSettings": {"loginHint": "evil.example"}}},
    )
    since = emu.last_seq()
    wait_for(lambda: _plan(kubectl, namespace, svc).get("changes") == 1, timeout=30, what="a plan with the change")
    passes(emu, svc, emu.last_seq(), 3)
    assert calls(emu, svc, since=since, methods=ALL_WRITES) == [], "ObserveOnly wrote to Google"
    assert stored(emu, PROJECT, svc)["accessSettings"]["oauthSettings"]["loginHint"] == "evil.example"
    obj = get(kubectl, namespace, svc)
    plan = obj["status"]["plan"]
    assert plan["iapSettings"] == [{"field": LOGIN_HINT, "from": "evil.example", "to": "example.com"}]
    assert plan["service"]["fields"] == []
    assert plan["iam"] == []
    synced = condition(obj, "Synced")
    assert synced["status"] == "False"
    assert f"set IAP settings {LOGIN_HINT}" in synced["message"]
    assert condition(obj, "IapSettingsSynced")["reason"] == "ChangesPending"

    # Back to Full: the one write is the plan's entry, mask and value.
    since = emu.last_seq()
    body["spec"]["managementPolicy"] = "Full"
    apply(kubectl, namespace, body)
    wait_for(lambda: condition(get(kubectl, namespace, svc), "Synced") == {}, timeout=30, what="Synced gone")
    wait_ready(kubectl, namespace, svc)
    wait_for(
        lambda: stored(emu, PROJECT, svc)["accessSettings"]["oauthSettings"]["loginHint"] == "example.com",
        timeout=30,
        what="the plan applied",
    )
    passes(emu, svc, emu.last_seq(), 2)
    writes = calls(emu, svc, since=since, methods=ALL_WRITES)
    assert [(w["method"], w["query"].get("updateMask")) for w in writes] == [
        (SETTINGS_WRITE, "iapSettings." + plan["iapSettings"][0]["field"])
    ]
    assert writes[0]["body"]["accessSettings"]["oauthSettings"]["loginHint"] == plan["iapSettings"][0]["to"]


def _settings_by_hand(emulator_url: str, emu: AdminClient, svc: str) -> None:
    """A custom OAuth client (with its secret), a login hint, reauth and a cookie domain, set in the console."""
    paths = ("oauthSettings.clientId", "oauthSettings.clientSecret", "oauthSettings.loginHint", "reauthSettings")
    mask = ",".join(
        [*(f"iapSettings.accessSettings.{p}" for p in paths), "iapSettings.applicationSettings.cookieDomain"]
    )
    oauth = {"clientId": CLIENT, "clientSecret": "console-secret", "loginHint": "example.com"}
    reauth = {"method": "LOGIN", "maxAge": "3600s", "policyType": "MINIMUM"}
    body = {
        "accessSettings": {"oauthSettings": oauth, "reauthSettings": reauth},
        "applicationSettings": {"cookieDomain": "example.com"},
    }
    out_of_band(emulator_url, emu, svc, mask, body)


def test_export_with_settings_round_trips_and_plan_shows_a_settings_only_change(
    operator: OperatorProcess,
    kubectl: Runner,
    namespace: str,
    emu: AdminClient,
    emulator_url: str,
    svc: str,
    tmp_path: Path,
) -> None:
    make_by_hand(emulator_url, emu, svc)
    _settings_by_hand(emulator_url, emu, svc)
    before = stored(emu, PROJECT, svc)
    assert (
        before["accessSettings"]["oauthSettings"]["clientSecretSha256"] == hashlib.sha256(b"console-secret").hexdigest()
    )
    text = iaprun(emulator_url, "export", "--project", PROJECT, "--region", "asia-northeast1", "--service", svc)
    assert "# NOTE: iap.settings.accessSettings.oauthSettings uses the custom OAuth client" in text.stdout
    doc = exported(emulator_url, svc)
    assert doc["spec"]["iap"]["settings"] == {
        "accessSettings": {
            "oauthSettings": {"clientId": CLIENT, "loginHint": "example.com"},
            "reauthSettings": {"method": "LOGIN", "maxAge": "3600s", "policyType": "MINIMUM"},
        },
        "applicationSettings": {"cookieDomain": "example.com"},
    }

    # iaprun plan -f: 0 as exported, 2 when only a settings field differs.
    path = tmp_path / "svc.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert iaprun(emulator_url, "plan", "-f", str(path)).returncode == 0
    changed = json.loads(json.dumps(doc))
    changed["spec"]["iap"]["settings"]["accessSettings"]["oauthSettings"]["loginHint"] = "other.example"
    path.write_text(yaml.safe_dump(changed))
    planned = iaprun(emulator_url, "plan", "-f", str(path), "-o", "json")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    (entry,) = json.loads(planned.stdout)
    assert entry["plan"]["iapSettings"] == [{"field": LOGIN_HINT, "from": "example.com", "to": "other.example"}]
    assert (entry["plan"]["changes"], entry["plan"]["iam"]) == (1, [])
    printed = iaprun(emulator_url, "plan", "-f", str(path))
    assert printed.returncode == 2
    assert f"~ iapSettings.{LOGIN_HINT}: example.com -> other.example" in printed.stdout

    # export -> apply -> empty plan -> Full -> only the ownership marks written, the settings untouched.
    doc["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    since = emu.last_seq()
    apply(kubectl, namespace, doc)
    wait_for(
        lambda: condition(get(kubectl, namespace, svc), "Synced").get("status") == "True",
        timeout=30,
        what="an empty plan (Synced True)",
    )
    plan = _plan(kubectl, namespace, svc)
    assert (plan["changes"], plan["iapSettings"]) == (0, [])
    assert calls(emu, svc, since=since, methods=ALL_WRITES) == []
    since = emu.last_seq()
    manage_fully(kubectl, namespace, svc)
    passes(emu, svc, emu.last_seq(), 2)
    writes = calls(emu, svc, since=since, methods=ALL_WRITES)
    assert [(w["method"], w["query"].get("updateMask")) for w in writes] == [
        ("run.services.patch", "labels,annotations")
    ], "only the ownership marks are written"
    assert stored(emu, PROJECT, svc) == before, "the settings (the secret too) are left as they were"
