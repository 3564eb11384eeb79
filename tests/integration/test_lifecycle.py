"""Lifecycle edges end to end: deletion across an operator restart, a project's first use of IAP (the
agent not usable yet), the namespace's default project, and the Prometheus endpoint.

This module runs its own operator (with metrics on), so stopping and starting it affects no other module.
"""

from __future__ import annotations

import urllib.request
import uuid

import pytest

from gcpemu.admin import AdminClient
from integration.conftest import module_operator
from integration.harness import OperatorProcess, apply, condition, free_port, get, manifest, wait_for
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
METRICS_PORT = free_port()


operator = module_operator(IAPRUN_METRICS_PORT=str(METRICS_PORT))


def test_deletion_completes_after_an_operator_restart(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """The operator is stopped while an object is being deleted; the object stays (finalizer) and the
    service stays; after a restart the deletion completes and the service is gone."""
    apply(kubectl, namespace, manifest(svc))
    kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")
    operator.stop()
    try:
        kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--wait=false")
        obj = get(kubectl, namespace, svc)
        assert obj["metadata"]["deletionTimestamp"]  # type: ignore[index]
        assert emu.service("demo-project", "asia-northeast1", svc) is not None
    finally:
        operator.start()
    kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=delete", "--timeout=60s")
    wait_for(lambda: emu.service("demo-project", "asia-northeast1", svc) is None, timeout=30, what="service gone")


def test_first_use_of_iap_waits_for_the_service_agent(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """In a project where the IAP agent was just created and is not usable yet, the invoker grant fails
    the way Google fails it; the object says ServiceAgentNotReady (Reconciling, not Stalled) and becomes
    Ready once the agent propagates."""
    project = f"fresh-{uuid.uuid4().hex[:8]}"
    original = emu.config()
    emu.configure(
        projects={**original["projects"], project: "4" + str(uuid.uuid4().int)[:11]}, agent_propagation_delay=4.0
    )
    try:
        apply(kubectl, namespace, manifest(svc, projectID=project))
        waiting = wait_for(
            lambda: (
                condition(get(kubectl, namespace, svc), "InvokerGranted").get("reason") == "ServiceAgentNotReady"
                and get(kubectl, namespace, svc)
            ),
            timeout=30,
            what="agent wait",
        )
        assert condition(waiting, "Reconciling")["status"] == "True"
        assert condition(waiting, "Stalled") == {}
        kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=90s")
    finally:
        emu.configure(agent_propagation_delay=original["agent_propagation_delay"])


def test_namespace_default_project_is_used(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """Without spec.projectID the namespace annotation iaprun.dev/default-project decides the project."""
    kubectl("annotate", "namespace", namespace, "iaprun.dev/default-project=test-project")
    apply(kubectl, namespace, manifest(svc))
    kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")
    assert get(kubectl, namespace, svc)["status"]["projectID"] == "test-project"  # type: ignore[index]
    assert emu.service("test-project", "asia-northeast1", svc) is not None


def test_metrics_endpoint_reports_reconciles_and_google_requests(
    operator: OperatorProcess, kubectl: Runner, namespace: str, svc: str
) -> None:
    """Prometheus metrics on their own port: reconcile totals by result, Google requests by API/method/code."""
    apply(kubectl, namespace, manifest(svc))
    kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'iaprun_reconcile_total{result="settled"}' in text
    assert 'iaprun_google_requests_total{api="run",code="200",method="services.get"}' in text
    assert "iaprun_reconcile_duration_seconds_bucket" in text
