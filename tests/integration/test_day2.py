"""Day-2 controls end to end (issue 16): managementPolicy ObserveOnly and Paused, against the real API server and
the emulator, judged by the object's status and the emulator's request log.

Proves: ObserveOnly with drift in every resource (a service field, the agent's invoker grant, the accessors, a
public binding) lists exactly those changes in status.plan and writes nothing over several passes; switching
back to Full writes exactly what the plan listed, entry for entry (one planner); Paused makes no Google call,
even on a spec change; deleting an object under ObserveOnly or Paused leaves the service, whatever
deletionPolicy says, also across an operator restart (the record in the ConfigMap, not the process's memory,
keeps the orphan sweep off it), and the record goes once the service does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from iaprun_operator.ledger import NAME as LEDGER
from integration.conftest import module_operator
from integration.harness import (
    WRITES,
    OperatorProcess,
    apply,
    calls,
    condition,
    get,
    manifest,
    passes,
    wait_for,
    wait_ready,
)
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
# A region no other module uses: the orphan sweep of this module's operator (every second) meets only its services.
PROJECT, REGION = "demo-project", "europe-north1"
INVOKER, ACCESSOR = "roles/run.invoker", "roles/iap.httpsResourceAccessor"
NEW_IMAGE = "us-docker.pkg.dev/cloudrun/container/hello:drifted"
LEDGER_NAMESPACE = "default"  # where this module's operator keeps the record of left services (ledger.py)


# No shared regional listing for drift passes (max age 0: each pass reads its own service), so that every
# ``run.services.list`` of this module's operator is an orphan sweep's: the restart test counts sweeps by them.
operator = module_operator(
    IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS="1",
    IAPRUN_OPERATOR_NAMESPACE=LEDGER_NAMESPACE,
    IAPRUN_SERVICE_LIST_MAX_AGE_SECONDS="0",
)


def _body(svc: str, **spec: Any) -> dict[str, Any]:
    body = manifest(
        svc,
        region=REGION,
        iap={"accessors": [{"member": "user:alice@example.com"}, {"member": "user:bob@example.com"}]},
        **spec,
    )
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    return body


def _policies(emu: AdminClient, svc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    state = emu.state()
    key = f"{state['projects'][PROJECT]}/{REGION}/{svc}"
    return state["run_policies"].get(key, {}), state["iap_policies"].get(key, {})


def _grants(policy: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (b["role"], m, (b.get("condition") or {}).get("expression", ""))
        for b in policy.get("bindings") or ()
        for m in b.get("members") or ()
    }


def _diff(kind: str, before: dict[str, Any], after: dict[str, Any]) -> set[tuple[str, ...]]:
    """What a policy write did, worked out here from the bodies (not with the operator's code)."""
    old, new = _grants(before), _grants(after)
    return {(kind, r, m, "Grant", c) for r, m, c in new - old} | {(kind, r, m, "Revoke", c) for r, m, c in old - new}


def _plan_entries(plan: dict[str, Any]) -> set[tuple[str, ...]]:
    return {
        (g["policy"], g["role"], g["member"], g["action"], g.get("condition", ""))
        for g in [*plan.get("iam", ()), *plan.get("publicBindings", ())]
    }


def _drift_everything(emu: AdminClient, svc: str, agent: str) -> None:
    """A console user's break-glass: a new image, the agent's grant gone, bob out, mallory in, allUsers invoker."""
    emu.mutate_service(PROJECT, REGION, svc, {"template.containers.0.image": NEW_IMAGE})
    emu.remove_binding(PROJECT, REGION, svc, INVOKER, agent)
    emu.add_binding(PROJECT, REGION, svc, INVOKER, "allUsers")
    emu.remove_binding(PROJECT, REGION, svc, ACCESSOR, "user:bob@example.com", kind="iap")
    emu.add_binding(PROJECT, REGION, svc, ACCESSOR, "user:mallory@example.com", kind="iap")


def test_observe_only_plans_every_drift_writes_nothing_and_full_applies_exactly_the_plan(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    body = _body(svc)
    apply(kubectl, namespace, body)
    ready = wait_ready(kubectl, namespace, svc)
    agent = f"serviceAccount:{ready['status']['iap']['serviceAgent']}"
    body["spec"]["managementPolicy"] = "ObserveOnly"
    apply(kubectl, namespace, body)
    wait_for(lambda: condition(get(kubectl, namespace, svc), "Synced"), timeout=30, what="the Synced condition")
    since = emu.last_seq()
    _drift_everything(emu, svc, agent)
    wait_for(
        lambda: (get(kubectl, namespace, svc)["status"].get("plan") or {}).get("changes") == 5,
        timeout=30,
        what="a plan with the five changes",
    )
    passes(emu, svc, emu.last_seq(), 3)
    assert calls(emu, svc, since=since, methods=WRITES) == [], "ObserveOnly wrote to Google"
    obj = get(kubectl, namespace, svc)
    plan = obj["status"]["plan"]
    assert plan["service"] == {
        "action": "Update",
        "fields": [
            {
                "field": "template.containers[0].image",
                "from": NEW_IMAGE,
                "to": manifest(svc)["spec"]["template"]["containers"][0]["image"],
            }
        ],
    }
    assert _plan_entries(plan) == {
        ("Service", INVOKER, agent, "Grant", ""),
        ("Service", INVOKER, "allUsers", "Revoke", ""),
        ("IAP", ACCESSOR, "user:bob@example.com", "Grant", ""),
        ("IAP", ACCESSOR, "user:mallory@example.com", "Revoke", ""),
    }
    synced = condition(obj, "Synced")
    assert synced["status"] == "False"
    assert "template" in synced["message"]
    assert "user:mallory@example.com" in synced["message"]
    assert condition(obj, "Ready")["status"] == "False"

    # Back to Full: the writes are the plan, entry for entry.
    run_before, iap_before = _policies(emu, svc)
    since = emu.last_seq()
    body["spec"]["managementPolicy"] = "Full"
    apply(kubectl, namespace, body)
    wait_for(lambda: condition(get(kubectl, namespace, svc), "Synced") == {}, timeout=30, what="Synced gone")
    after = wait_ready(kubectl, namespace, svc)
    assert "plan" not in after["status"]
    writes = calls(emu, svc, since=since, methods=WRITES)
    patches = [w for w in writes if w["method"] == "run.services.patch"]
    assert [p["query"].get("updateMask") for p in patches] == ["template"]
    written: set[tuple[str, ...]] = set()
    for write in writes:
        if write["method"] == "run.services.setIamPolicy":
            written |= _diff("Service", run_before, write["body"]["policy"])
        elif write["method"] == "iap.setIamPolicy":
            written |= _diff("IAP", iap_before, write["body"]["policy"])
    assert written == _plan_entries(plan)
    assert len(writes) == 3  # the patch and one write per policy


def test_paused_makes_no_google_call_even_on_a_spec_change(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    body = _body(svc)
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    body["spec"]["managementPolicy"] = "Paused"
    apply(kubectl, namespace, body)
    wait_for(
        lambda: condition(get(kubectl, namespace, svc), "Synced").get("reason") == "Paused",
        timeout=30,
        what="Synced False Paused",
    )
    since = emu.last_seq()
    body["spec"]["template"]["containers"][0]["image"] = NEW_IMAGE
    apply(kubectl, namespace, body)
    wait_for(
        lambda: condition(get(kubectl, namespace, svc), "Synced").get("observedGeneration") == 3,
        timeout=30,
        what="the paused pass of the edited spec",
    )
    assert calls(emu, svc, since=since) == []
    obj = get(kubectl, namespace, svc)
    assert condition(obj, "Synced")["status"] == "False"
    assert condition(obj, "Ready")["status"] == "True", "Ready stays as the last pass before the pause left it"
    assert (emu.service(PROJECT, REGION, svc) or {})["template"]["containers"][0]["image"] != NEW_IMAGE


@pytest.mark.parametrize("policy", ["ObserveOnly", "Paused"])
def test_deletion_under_observe_only_or_paused_leaves_the_service(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str, policy: str
) -> None:
    body = _body(svc, deletionPolicy="Delete")
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    body["spec"]["managementPolicy"] = policy
    apply(kubectl, namespace, body)
    wait_for(lambda: condition(get(kubectl, namespace, svc), "Synced"), timeout=30, what="the Synced condition")
    since = emu.last_seq()
    kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--timeout=60s")
    swept = emu.last_seq()
    wait_for(lambda: len(emu.requests("run.services.list", since=swept)) >= 2, timeout=30, what="two orphan sweeps")
    assert emu.service(PROJECT, REGION, svc) is not None, "the service outlives its object (and the orphan sweep)"
    assert calls(emu, svc, since=since, methods=WRITES) == []
    if policy == "Paused":
        assert calls(emu, svc, since=since) == []


def _ledger(kubectl: Runner) -> dict[str, str]:
    found = kubectl("get", "configmap", LEDGER, "-n", LEDGER_NAMESPACE, "-o", "json", check=False)
    return dict(json.loads(found.stdout).get("data") or {}) if found.returncode == 0 else {}


def _sweeps_of_region(emu: AdminClient, since: int) -> int:
    """Orphan sweeps of the region since ``since``: the module's operator lists services for nothing else."""
    return sum(REGION in r["path"] for r in emu.requests("run.services.list", since=since))


def test_a_service_left_under_paused_survives_an_operator_restart_and_its_record_goes_with_it(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str, emulator_url: str
) -> None:
    """The safety of "deletion under Paused leaves the service" may not live in the operator's memory: after a
    restart, the sweep meets a service marked for an object that is gone, with deletionPolicy Delete stamped on
    it. It must leave it (the finalizer's record in the ConfigMap says why), with no Google call about it at all.
    A neighbour object in the region makes the restarted operator sweep there. Once the service is deleted by
    hand, a sweep removes the record."""
    neighbour = f"{svc}-nb"
    apply(kubectl, namespace, _body(neighbour))
    body = _body(svc, deletionPolicy="Delete")
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    body["spec"]["managementPolicy"] = "Paused"
    apply(kubectl, namespace, body)
    wait_for(lambda: condition(get(kubectl, namespace, svc), "Synced"), timeout=30, what="the Synced condition")
    since = emu.last_seq()
    kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--timeout=60s")
    recorded = [json.loads(raw) for raw in _ledger(kubectl).values()]
    assert {"project": PROJECT, "region": REGION, "service": svc} in [e["service"] for e in recorded]

    operator.stop()
    restarted = emu.last_seq()
    operator.start()
    wait_for(lambda: _sweeps_of_region(emu, restarted) >= 3, timeout=60, what="three sweeps of the restarted operator")
    assert emu.service(PROJECT, REGION, svc) is not None, "the service outlives its object, the restart and the sweep"
    assert calls(emu, svc, since=since) == [], "not a single Google call about the service (Paused)"

    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    run = run_v2.ServicesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator_url),
    )
    run.delete_service(name=f"projects/{PROJECT}/locations/{REGION}/services/{svc}").result(timeout=30)
    wait_for(
        lambda: all(json.loads(raw)["service"]["service"] != svc for raw in _ledger(kubectl).values()),
        timeout=30,
        what="the sweep to remove the record of the deleted service",
    )
    kubectl("delete", "-n", namespace, f"iaprunservice/{neighbour}", "--timeout=60s")
