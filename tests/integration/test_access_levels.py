"""Access levels on accessors end to end: one IAM condition Google accepts, kept by both modes, judged at the URL.

An accessor with ``accessLevels`` (and optionally ``expires``) is granted under ONE condition in IAP's documented
form, which the emulator parses with a real CEL implementation; the protected URL then lets the person in only
while meeting one of the levels and before the expiry. Switching between Authoritative and Additive leaves the
bindings exactly as they are: no policy write.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from integration.harness import OperatorProcess, apply, converged, manifest, wait_ready
from integration.test_access import visit
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT, REGION = "test-project", "asia-northeast1"
ACCESSOR = "roles/iap.httpsResourceAccessor"
CORP = "accessPolicies/1/accessLevels/corp"
LAB = "accessPolicies/1/accessLevels/lab"
ALICE, BOB, CAROL = "user:alice@example.com", "user:bob@example.com", "user:carol@example.com"


@pytest.fixture
def levels(emu: AdminClient) -> Iterator[AdminClient]:
    """The emulator; the access levels a test gives its identities, and its clock, are restored after."""
    before = emu.config()["access_levels"]
    yield emu
    emu.configure(access_levels=before)
    emu.reset_clock()


def accessor_bindings(emu: AdminClient, svc: str) -> dict[str, tuple[str, str]]:
    """member -> (condition title, expression) of the service's accessor bindings ("" when unconditional)."""
    state = emu.state()
    policy: dict[str, Any] = state["iap_policies"].get(f"{state['projects'][PROJECT]}/{REGION}/{svc}") or {}
    return {
        m: ((b.get("condition") or {}).get("title", ""), (b.get("condition") or {}).get("expression", ""))
        for b in policy.get("bindings") or ()
        if b["role"] == ACCESSOR
        for m in b["members"]
    }


def test_access_levels_grant_one_condition_kept_by_both_modes_and_enforced_at_the_url(
    operator: OperatorProcess,
    kubectl: Runner,
    namespace: str,
    levels: AdminClient,
    emulator_url: str,
    svc: str,
) -> None:
    """alice needs corp or lab; bob needs corp until an hour from now; carol needs nothing. Each is let in or
    kept out at the URL exactly as that says; mode switches make no policy write."""
    emu = levels
    until = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    accessors = [
        {"member": ALICE, "accessLevels": [LAB, CORP]},
        {"member": BOB, "accessLevels": [CORP], "expires": stamp},
        {"member": CAROL},
    ]
    body = manifest(svc, projectID=PROJECT, iap={"accessors": accessors, "accessorsPolicy": "Additive"})
    apply(kubectl, namespace, body)
    obj = wait_ready(kubectl, namespace, svc)

    assert accessor_bindings(emu, svc) == {
        ALICE: ("iaprun-access", f'("{CORP}" in request.auth.access_levels || "{LAB}" in request.auth.access_levels)'),
        BOB: ("iaprun-access", f'"{CORP}" in request.auth.access_levels && request.time < timestamp("{stamp}")'),
        CAROL: ("", ""),
    }
    assert {a["member"]: a.get("accessLevels") for a in obj["status"]["iap"]["accessors"]} == {
        ALICE: [CORP, LAB],
        BOB: [CORP],
        CAROL: None,
    }

    url = obj["status"]["url"]
    assert [visit(emulator_url, url, who) for who in (ALICE, BOB, CAROL)] == [403, 403, 200]
    emu.set_access_levels(ALICE, [LAB])
    emu.set_access_levels(BOB, [CORP])
    assert [visit(emulator_url, url, who) for who in (ALICE, BOB)] == [200, 200]
    emu.set_access_levels(ALICE, ["accessPolicies/1/accessLevels/other"])
    assert visit(emulator_url, url, ALICE) == 403
    emu.advance_clock(2 * 3600)  # past bob's expiry at the URL (the operator's own clock has not moved)
    assert visit(emulator_url, url, BOB) == 403
    emu.reset_clock()

    mark = emu.last_seq()
    body["spec"]["iap"]["accessorsPolicy"] = "Authoritative"
    apply(kubectl, namespace, body)
    converged(kubectl, namespace, svc, 2)
    body["spec"]["iap"]["accessorsPolicy"] = "Additive"
    apply(kubectl, namespace, body)
    converged(kubectl, namespace, svc, 3)
    assert [r for r in emu.requests("iap.setIamPolicy", since=mark) if svc in r["path"]] == []
    assert accessor_bindings(emu, svc)[BOB][1].endswith(f'request.time < timestamp("{stamp}")')


def test_dropping_an_access_level_rewrites_only_that_members_condition(
    operator: OperatorProcess, kubectl: Runner, namespace: str, levels: AdminClient, emulator_url: str, svc: str
) -> None:
    """Removing the levels of an accessor grants it unconditionally in one write, and it gets in without any."""
    emu = levels
    body = manifest(svc, projectID=PROJECT, iap={"accessors": [{"member": ALICE, "accessLevels": [CORP]}]})
    apply(kubectl, namespace, body)
    obj = wait_ready(kubectl, namespace, svc)
    assert visit(emulator_url, obj["status"]["url"], ALICE) == 403
    mark = emu.last_seq()
    body["spec"]["iap"]["accessors"] = [{"member": ALICE}]
    apply(kubectl, namespace, body)
    converged(kubectl, namespace, svc, 2)
    assert accessor_bindings(emu, svc) == {ALICE: ("", "")}
    assert len([r for r in emu.requests("iap.setIamPolicy", since=mark) if svc in r["path"]]) == 1
    assert visit(emulator_url, obj["status"]["url"], ALICE) == 200
