"""The operator SIGKILLed at random points of a rollout, an update wave and a delete wave; the control
plane restarted mid-run; and the two crash windows that matter most, hit on purpose.

After each kill the operator is started again (as a Deployment would); the final state must pass the
invariant checker: no duplicate service, no leaked one, no lost binding, nothing opened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from chaos.conftest import FULL
from chaos.world import (
    DEFAULT_PROJECT,
    REGION,
    WAVES,
    ChaosWorld,
    Figures,
    abandoned_keys,
    fleet,
    names,
)
from integration.harness import wait_for
from testworld.cluster import ControlPlane

pytestmark = pytest.mark.integration
FigureMaker = Callable[[str, int], Figures]


def kill_after_writes(world: ChaosWorld, fig: Figures, count: int) -> None:
    """SIGKILL the operator once it has made ``count`` more Google writes (or the wave ran out of work:
    then at that point), and start it again."""
    world.await_writes(count)
    world.kill_operator()
    fig.kills += 1
    world.restart_operator()


def test_sigkill_at_random_points_loses_nothing(world: ChaosWorld, chaos_size: int, figures: FigureMaker) -> None:
    """>= 10 SIGKILLs at full size (3 reduced), spread over the rollout, update and delete waves, each
    after a random number of Google writes; every wave converges and the invariants hold."""
    n = chaos_size
    kills = {"rollout": 4, "update": 3, "delete": 3} if FULL else {"rollout": 1, "update": 1, "delete": 1}
    fig = figures("operator SIGKILLed at random points", n)
    ns = world.namespaces[0]
    bodies = fleet(n)
    expected_writes = {"rollout": 3 * n, "update": 2 * n, "delete": n}
    world.start_operator()
    for wave in WAVES:
        started = time.monotonic()
        world.start_wave(ns, bodies, wave)
        share = max(1, expected_writes[wave] // (kills[wave] + 1))
        for _ in range(kills[wave]):
            kill_after_writes(world, fig, world.rng.randint(1, share))
        world.wait_wave(ns, names(bodies), wave, timeout=240)
        fig.waves[wave] = time.monotonic() - started
        world.assert_invariants(fig, abandoned=abandoned_keys(world, bodies) if wave == "delete" else ())
    world.assert_operator_alive()
    assert world.operator_errors() == []


def test_killed_between_create_and_status_then_deleted_leaks_nothing(world: ChaosWorld, figures: FigureMaker) -> None:
    """The worst crash window: the service was created, the operator dies before it records that in
    status, and the object is deleted while no operator runs. The restarted operator must still find the
    service by its ownership mark and delete it (no leak)."""
    fig = figures("SIGKILL after create, object deleted meanwhile", 1)
    ns = world.namespaces[0]
    world.start_operator()
    hang = world.emu.hang("run.services.getIamPolicy", seconds=30, count=1)
    world.apply(ns, fleet(1))
    wait_for(
        lambda: any(r["id"] == hang and r["fired"] for r in world.emu.faults()), timeout=60, what="the pass to hang"
    )
    assert world.emu.service(DEFAULT_PROJECT, REGION, "chaos-000") is not None
    assert not (world.get(ns, "chaos-000").get("status") or {}).get("externalRef")
    world.kill_operator()
    fig.kills += 1
    world.emu.clear_faults()
    world.delete_all(ns)
    world.restart_operator()
    world.wait_gone(ns, ["chaos-000"], timeout=60)
    world.assert_invariants(fig)
    assert world.emu.service(DEFAULT_PROJECT, REGION, "chaos-000") is None


def test_control_plane_restart_mid_run_converges(
    world: ChaosWorld, chaos_size: int, figures: FigureMaker, control_plane: ControlPlane
) -> None:
    """kube-apiserver (and etcd) restarted on the same data in the middle of the rollout, of the update
    wave and of the delete wave (the rollout only at the reduced size): the operator's watches reconnect
    and every wave converges."""
    n = chaos_size
    fig = figures("control-plane restart mid-wave", n)
    ns = world.namespaces[0]
    bodies = fleet(n)
    # A restart costs ~30 s of etcd + kube-apiserver start on 2 cores: one (mid-rollout) at the reduced size.
    restart_in = ("rollout", "update", "delete") if FULL else ("rollout",)
    world.start_operator()
    for wave in WAVES:
        started = time.monotonic()
        since = world.emu.last_seq()
        world.start_wave(ns, bodies, wave)
        if wave in restart_in:
            wait_for(lambda s=since: world.operator_writes(s) >= max(1, n // 3), timeout=60, what="the wave under way")
            control_plane.restart()
            fig.kills += 1
        world.wait_wave(ns, names(bodies), wave, timeout=240)
        fig.waves[wave] = time.monotonic() - started
        world.assert_invariants(fig, abandoned=abandoned_keys(world, bodies) if wave == "delete" else ())
    world.assert_operator_alive()
    fig.notes = "kills = control-plane restarts"


def test_killed_between_additive_grant_and_status_access_is_still_revoked(
    world: ChaosWorld, figures: FigureMaker
) -> None:
    """Additive mode: the operator grants bob and dies before the status write that follows the grant (an
    admission policy holds that write off, so the kill lands in the window every time); bob is removed from
    the spec meanwhile. After the restart bob must lose access: the operator granted it. (Before the fix
    the ledger of members the operator added was only written with that status, so bob looked foreign for
    ever and kept access.)"""
    fig = figures("SIGKILL between an Additive grant and its status", 1)
    ns = world.namespaces[0]
    world.start_operator()
    manifest = {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": "additive"},
        "spec": {
            "region": REGION,
            "template": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]},
            "iap": {"accessorsPolicy": "Additive", "accessors": [{"member": "user:alice@example.com"}]},
        },
    }
    world.apply(ns, [manifest])
    world.wait_ready(ns, ["additive"], timeout=60)
    key = world.key(DEFAULT_PROJECT, "additive")

    def members() -> set[str]:
        policy = world.emu.state()["iap_policies"].get(key) or {}
        return {m for b in policy.get("bindings", ()) for m in b.get("members", ())}

    policy_name = f"chaos-lose-ledger-{ns}"[:60]
    block = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy_name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["iaprun.dev"],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": ["iaprunservices", "iaprunservices/status"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!(has(object.status) && has(object.status.iap) && "
                        "has(object.status.iap.accessors) && "
                        "object.status.iap.accessors.exists(a, a.member == 'user:bob@example.com'))",
                        "message": "chaos: this status write is lost",
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy_name},
            "spec": {
                "policyName": policy_name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
            },
        },
    ]
    world.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": block}))
    probe = json.dumps({"status": {"iap": {"accessors": [{"member": "user:bob@example.com"}]}}})

    def enforced() -> bool:
        """The policy is active once a server-side dry run of the write it forbids is refused."""
        result = world.kubectl(
            "patch",
            "-n",
            ns,
            "iaprunservices/additive",
            "--subresource=status",
            "--type=merge",
            "--dry-run=server",
            "-p",
            probe,
            check=False,
        )
        return result.returncode != 0 and "lost" in result.stderr

    try:
        wait_for(enforced, timeout=30, interval=0.2, what="the admission policy to be enforced")
        manifest["spec"]["iap"]["accessors"].append({"member": "user:bob@example.com"})
        world.apply(ns, [manifest])
        wait_for(lambda: "user:bob@example.com" in members(), timeout=60, interval=0.2, what="bob granted")
        # The status write after the grant is held off by the policy: the operator dies in that window.
        world.kill_operator()
        fig.kills += 1
    finally:
        world.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy_name)
    manifest["spec"]["iap"]["accessors"] = [{"member": "user:alice@example.com"}]
    world.apply(ns, [manifest])
    world.restart_operator()
    world.wait_ready(ns, ["additive"], timeout=60)
    world.assert_invariants(fig)
    assert "user:bob@example.com" not in members(), "bob keeps the access the operator granted"
