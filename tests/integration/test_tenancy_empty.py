"""Deny by default: an operator given no tenancy policy reconciles nothing, and says so at start-up.

Real control plane, real operator process started with an empty IAPRUN_TENANCY_POLICY (this module's own
``operator``), emulator; no mocks.
"""

from __future__ import annotations

import json

import pytest

from gcpemu.admin import AdminClient
from integration.conftest import module_operator
from integration.harness import OperatorProcess, apply, condition, kubectl_json, manifest, wait_for
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration


operator = module_operator(IAPRUN_TENANCY_POLICY="")


def test_an_empty_policy_denies_everything_before_any_google_call(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """A plain object in a test namespace (which the usual test policy opens) is Stalled/PolicyDenied, no call."""
    since = emu.last_seq()
    apply(kubectl, namespace, manifest(svc))

    def stalled() -> dict[str, str]:
        return dict(condition(kubectl_json(kubectl, "get", "-n", namespace, f"iaprunservice/{svc}"), "Stalled"))

    found = wait_for(stalled, timeout=60, what="Stalled")
    assert (found["reason"], found["message"]) == (
        "PolicyDenied",
        f'namespace "{namespace}" may not use the operator: no tenancy rule selects it',
    )
    assert [r for r in emu.requests(since=since) if svc in json.dumps([r["path"], r.get("query"), r.get("body")])] == []
    log = [json.loads(line) for line in operator.log_path.read_text().splitlines() if line.startswith("{")]
    warned = [e for e in log if e.get("message", "").startswith("tenancy policy is empty: nothing is allowed")]
    assert [e["severity"] for e in warned] == ["warn"]
