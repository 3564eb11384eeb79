"""The ``iaprun`` CLI end to end (issue 16): ``export`` of services made by hand, and ``plan -f``'s exit codes.

Services are made out of band, through the emulator's Google API (the official run_v2 client) and its policy
admin API: a template with an env var and labels, IAP on, the agent's invoker grant, three accessors, one
under an expiry condition titled by a person (not the operator). Proves: the exported manifest, applied, plans
no change and writes nothing under ObserveOnly; switched to Full, the only write is the adoption's ownership
marks (labels and annotations, one PATCH), with no new revision and no IAM write, and nothing after; ``plan -f``
exits 0 for no change, 2 for changes (listing them), 1 for an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gcpemu.admin import AdminClient
from integration.harness import (
    REPO,
    WRITES,
    OperatorProcess,
    apply,
    calls,
    condition,
    get,
    manage_fully,
    passes,
    wait_for,
)
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT, REGION = "demo-project", "asia-northeast1"
ACCESSOR, INVOKER = "roles/iap.httpsResourceAccessor", "roles/run.invoker"
EXPIRY = 'request.time < timestamp("2030-01-01T00:00:00Z")'


def iaprun(emulator_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as users run it (the console script's entry point), against the emulator."""
    return subprocess.run(
        [sys.executable, "-m", "iaprun_operator.cli", "--endpoint", emulator_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO / "operator"), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def make_by_hand(emulator_url: str, emu: AdminClient, svc: str) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    client = run_v2.ServicesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator_url),
    )
    container = run_v2.Container(
        image="us-docker.pkg.dev/cloudrun/container/hello", env=[run_v2.EnvVar(name="GREETING", value="hi")]
    )
    body = run_v2.Service(
        iap_enabled=True,
        description="made in the console",
        labels={"team": "a"},
        template=run_v2.RevisionTemplate(containers=[container]),
    )
    client.create_service(parent=f"projects/{PROJECT}/locations/{REGION}", service=body, service_id=svc).result(
        timeout=30
    )
    agent = emu.create_service_agent(PROJECT)
    emu.add_binding(PROJECT, REGION, svc, INVOKER, f"serviceAccount:{agent}")
    for member in ("user:alice@example.com", "group:devs@example.com"):
        emu.add_binding(PROJECT, REGION, svc, ACCESSOR, member, kind="iap")
    condition = {"title": "until-2030", "expression": EXPIRY}
    emu.add_binding(PROJECT, REGION, svc, ACCESSOR, "user:bob@example.com", kind="iap", condition=condition)


def exported(emulator_url: str, svc: str) -> dict[str, Any]:
    result = iaprun(emulator_url, "export", "--project", PROJECT, "--region", REGION, "--service", svc)
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = yaml.safe_load(result.stdout)
    return doc


def test_export_of_a_hand_made_service_round_trips_without_a_write_or_a_revision(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str, svc: str
) -> None:
    make_by_hand(emulator_url, emu, svc)
    doc = exported(emulator_url, svc)
    spec = doc["spec"]
    assert (spec["adoption"], spec["managementPolicy"], spec["deletionPolicy"]) == (
        "IfUnowned",
        "ObserveOnly",
        "Abandon",
    )
    assert spec["iap"]["accessors"] == [
        {"member": "group:devs@example.com"},
        {"member": "user:alice@example.com"},
        {"member": "user:bob@example.com", "expires": "2030-01-01T00:00:00Z"},
    ]
    assert spec["template"]["containers"][0]["env"] == [{"name": "GREETING", "value": "hi"}]
    revision = (emu.service(PROJECT, REGION, svc) or {})["latestCreatedRevision"]
    doc["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    since = emu.last_seq()
    apply(kubectl, namespace, doc)
    wait_for(
        lambda: condition(get(kubectl, namespace, svc), "Synced").get("status") == "True",
        timeout=30,
        what="an empty plan (Synced True)",
    )
    plan = get(kubectl, namespace, svc)["status"]["plan"]
    assert plan["changes"] == 0, plan
    assert plan["iam"] == plan["publicBindings"] == []
    assert {f["field"] for f in plan["service"]["fields"]} <= {
        "labels.iaprun-owner",
        "annotations.iaprun.dev/owner",
        "annotations.iaprun.dev/deletion-policy",
    }
    assert calls(emu, svc, since=since, methods=WRITES) == []

    since = emu.last_seq()
    manage_fully(kubectl, namespace, svc)
    writes = calls(emu, svc, since=since, methods=WRITES)
    assert [(w["method"], w["query"].get("updateMask")) for w in writes] == [
        ("run.services.patch", "labels,annotations")
    ], "only the ownership marks are written"
    assert (emu.service(PROJECT, REGION, svc) or {})["latestCreatedRevision"] == revision, "no new revision"
    settled = emu.last_seq()
    passes(emu, svc, settled, 2, timeout=30)
    assert calls(emu, svc, since=settled, methods=WRITES) == []


def test_plan_exit_codes(
    operator: OperatorProcess, emu: AdminClient, emulator_url: str, svc: str, tmp_path: Path
) -> None:
    """0: nothing would change; 2: changes, listed; 1: an error (a spec that does not parse, a missing file)."""
    make_by_hand(emulator_url, emu, svc)
    doc = exported(emulator_url, svc)
    path = tmp_path / "svc.yaml"
    path.write_text(yaml.safe_dump(doc))
    since = emu.last_seq()
    same = iaprun(emulator_url, "plan", "-f", str(path))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no changes" in same.stdout

    doc["spec"]["template"]["containers"][0]["image"] = "us-docker.pkg.dev/cloudrun/container/hello:v2"
    doc["spec"]["iap"]["accessors"] = doc["spec"]["iap"]["accessors"][1:]
    path.write_text(yaml.safe_dump(doc))
    changed = iaprun(emulator_url, "plan", "-f", str(path), "-o", "json")
    assert changed.returncode == 2, changed.stderr
    (entry,) = json.loads(changed.stdout)
    assert [
        f["field"] for f in entry["plan"]["service"]["fields"] if not f["field"].startswith(("labels", "annot"))
    ] == ["template.containers[0].image"]
    assert entry["plan"]["iam"] == [
        {"policy": "IAP", "role": ACCESSOR, "member": "group:devs@example.com", "action": "Revoke"}
    ]
    text = iaprun(emulator_url, "plan", "-f", str(path))
    assert text.returncode == 2
    assert "- IAP roles/iap.httpsResourceAccessor group:devs@example.com" in text.stdout
    assert calls(emu, svc, since=since, methods=WRITES) == [], "plan never writes"

    doc["spec"]["region"] = "nowhere"
    path.write_text(yaml.safe_dump(doc))
    assert iaprun(emulator_url, "plan", "-f", str(path)).returncode == 1
    assert iaprun(emulator_url, "plan", "-f", str(tmp_path / "missing.yaml")).returncode == 1
