"""The two safety nets for what kopf's event stream cannot see, end to end.

- The orphan sweep: services owned by objects that are gone are finished as their deletion policy says;
  anything the sweep cannot be sure of is left alone. The orphans are made the way they arise, out of band
  with the official Cloud Run client: services carrying this cluster's ownership marks (computed here, not
  by the operator) for objects that do not exist.
- The rescue of overdue passes: an object kopf never runs the reconcile handler for (its event lost) is
  reconciled by its timer after the grace.

The module runs its own operator, sweeping every second with a 3-second grace; what it did is checked in
the API server and in the emulator's state and request log.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from integration.conftest import module_operator
from integration.harness import (
    OperatorProcess,
    apply,
    condition,
    create_marked_service,
    kubectl_json,
    manifest,
    wait_for,
)
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT = "demo-project"
# A region no other test module uses, so the sweep here meets only the services this module made.
REGION = "europe-west1"
CLUSTER = "test-cluster"  # the harness's IAPRUN_CLUSTER_ID


operator = module_operator(IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS="1", IAPRUN_RESCUE_GRACE_SECONDS="3")


def writes_to(emu: AdminClient, service: str, since: int) -> list[str]:
    return [
        r["method"]
        for r in emu.requests(since=since)
        if f"/services/{service}" in r["path"] and r["method"] not in ("run.services.get", "run.services.list")
    ]


def test_orphans_are_finished_as_their_policy_says_and_nothing_else_is_touched(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str
) -> None:
    """Delete-stamped orphan: deleted. Abandon-stamped: marks removed, service and IAP kept. Unstamped,
    another cluster's, a label not matching its annotation, or an object that exists: no write at all."""
    tag = uuid.uuid4().hex[:6]
    live = f"live-{tag}"
    apply(kubectl, namespace, manifest(live, region=REGION, projectID=PROJECT))  # the operator now works here
    wait_for(
        lambda: (
            condition(kubectl_json(kubectl, "get", "-n", namespace, f"iaprunservice/{live}"), "Ready").get("status")
            == "True"
        ),
        timeout=60,
        what="the live object Ready",
    )
    gone = f"{CLUSTER}/{namespace}"
    orphans = {
        "delete": (f"orphan-del-{tag}", f"{gone}/gone-del", "Delete", ""),
        "abandon": (f"orphan-ab-{tag}", f"{gone}/gone-ab", "Abandon", ""),
    }
    untouched = {
        "unstamped": (f"orphan-old-{tag}", f"{gone}/gone-old", None, ""),
        "other cluster": (f"foreign-{tag}", f"another-cluster/{namespace}/gone-x", "Delete", ""),
        "label mismatch": (f"mislabel-{tag}", f"{gone}/gone-y", "Delete", "0123456789abcdef"),
        "owner exists": (f"claimed-{tag}", f"{gone}/{live}", "Delete", ""),
    }
    since = emu.last_seq()
    for service, readable, policy, label in [*orphans.values(), *untouched.values()]:
        create_marked_service(emulator_url, PROJECT, REGION, service, readable, policy=policy, label=label)

    deleted, abandoned = orphans["delete"][0], orphans["abandon"][0]
    wait_for(lambda: emu.service(PROJECT, REGION, deleted) is None, timeout=60, what="the Delete orphan deleted")

    def unmarked() -> dict[str, Any] | None:
        service = emu.service(PROJECT, REGION, abandoned)
        return service if service and "iaprun-owner" not in service.get("labels", {}) else None

    kept = wait_for(unmarked, timeout=60, what="the Abandon orphan's marks removed")
    assert kept["iapEnabled"] is True
    assert kept["labels"] == {"team": "a"}
    # Only the mark that lets the same owner take it back (never a claim of ownership; adoption.md).
    former = hashlib.sha256(orphans["abandon"][1].encode()).hexdigest()[:16]
    assert kept.get("annotations", {}) == {"iaprun.dev/abandoned-by": former}
    # Two more sweeps at least, so "not touched" is not just "not reached yet".
    mark = emu.last_seq()
    wait_for(
        lambda: len([r for r in emu.requests(since=mark) if r["method"] == "run.services.list"]) >= 2,
        timeout=30,
        what="two more sweeps",
    )
    for why, (service, _, _, _) in untouched.items():
        assert emu.service(PROJECT, REGION, service) is not None, why
        assert writes_to(emu, service, since) == [], why
    assert writes_to(emu, live, since) == []
    assert "carries no deletion policy" in operator.log_path.read_text()


def test_an_object_kopf_never_handles_is_reconciled_by_its_timer(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient
) -> None:
    """kopf's progress record says the reconcile handler is to run in an hour, so kopf sleeps on it, just as
    when the event that should start it was lost. The object's timer must reconcile it after the grace: Ready,
    with its service created with IAP on."""
    name = f"asleep-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    progress = {
        "started": now.isoformat(),
        "delayed": (now + timedelta(hours=1)).isoformat(),
        "purpose": "create",
        "retries": 1,
    }
    body = manifest(name, region=REGION, projectID=PROJECT)
    body["metadata"]["annotations"] = {"iaprun.dev/reconcile": json.dumps(progress)}
    apply(kubectl, namespace, body)
    wait_for(
        lambda: (
            condition(kubectl_json(kubectl, "get", "-n", namespace, f"iaprunservice/{name}"), "Ready").get("status")
            == "True"
        ),
        timeout=60,
        what="Ready from the timer's pass",
    )
    service = emu.service(PROJECT, REGION, name)
    assert service is not None
    assert service["iapEnabled"] is True
    log = operator.log_path.read_text()
    assert "reconciling from its timer" in log
    # kopf itself never ran the handler: the pass that made it Ready was the timer's.
    assert not [line for line in log.splitlines() if name in line and "Handler 'reconcile'" in line]
