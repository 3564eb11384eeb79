"""Conditional IAP grants made outside the operator, end to end: never widened, and reported when removed.

A person may pass IAP only under an access level someone else bound (``condition``). Declaring that person in
an ``Additive`` object leaves the conditional binding exactly as it was and grants nothing unconditional;
switching the object to ``Authoritative`` replaces it with the declared grant and says so in a Warning Event
naming the member, the condition's title and its expression.
"""

from __future__ import annotations

from typing import Any

import pytest

from gcpemu.admin import AdminClient
from integration.harness import OperatorProcess, apply, condition, converged, manifest, wait_ready
from integration.test_reconcile import PROJECT, REGION
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
ACCESSOR = "roles/iap.httpsResourceAccessor"
ALICE, BOB = "user:alice@example.com", "user:bob@example.com"
ACCESS_LEVEL = {
    "title": "corp-device",
    "expression": "'accessPolicies/1/accessLevels/corp' in request.auth.access_levels",
}


def grants(emu: AdminClient, svc: str) -> set[tuple[str, str]]:
    state = emu.state()
    key = f"{state['projects'][PROJECT]}/{REGION}/{svc}"
    policy: dict[str, Any] = state["iap_policies"].get(key) or {}
    return {
        (m, (b.get("condition") or {}).get("expression", ""))
        for b in policy.get("bindings") or ()
        if b["role"] == ACCESSOR
        for m in b["members"]
    }


def test_additive_never_widens_a_conditional_grant_and_authoritative_reports_removing_it(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    body = manifest(svc, iap={"accessors": [{"member": BOB}], "accessorsPolicy": "Additive"})
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    emu.add_binding(PROJECT, REGION, svc, ACCESSOR, ALICE, kind="iap", condition=ACCESS_LEVEL)

    body["spec"]["iap"]["accessors"] = [{"member": BOB}, {"member": ALICE}]
    apply(kubectl, namespace, body)
    obj = converged(kubectl, namespace, svc, 2)
    assert grants(emu, svc) == {(BOB, ""), (ALICE, ACCESS_LEVEL["expression"])}
    assert "kept as is" in condition(obj, "AccessorsSynced")["message"]
    assert obj["status"]["iap"]["addedMembers"] == [BOB]

    body["spec"]["iap"]["accessorsPolicy"] = "Authoritative"
    apply(kubectl, namespace, body)
    converged(kubectl, namespace, svc, 3)
    assert grants(emu, svc) == {(BOB, ""), (ALICE, "")}
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "reason=ForeignBindingRemoved").stdout
    assert "corp-device" in events
    assert ALICE in events
    assert "accessLevels/corp" in events
