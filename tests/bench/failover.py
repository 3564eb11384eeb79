"""The ``failover`` scenario: how long a shard goes without an active replica, and that nothing is lost meanwhile.

Two replicas of one shard elect their active one with a Lease (the operator's production timings unless the sizes
say otherwise). N objects are rolled out; once the active replica has made about half of the rollout's Google
writes it is SIGKILLed, and the time to the new active replica's first Google call is ``failover_seconds`` (the
Lease duration, a standby's wait for a silent holder, plus kopf's start-up). Then the new active one is stopped
with SIGTERM (a rolling update): it releases the Lease, and ``handover_seconds`` is the same measure. The
invariant checker of the chaos campaign (``testworld.invariants``) judges the converged world: ``violations``
counts its findings plus any service created twice.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from testworld import invariants
from testworld.operator_process import HA_ENV, ShardReplicas, fail_over, open_rule, wait_for

if TYPE_CHECKING:
    from bench.driver import Bench

CLUSTER = "bench-cluster"


def _replicas(bench: Bench, namespace: str, lease: float) -> ShardReplicas:
    tick = str(bench.sizes.timer_tick)
    policy = {"rules": [open_rule("bench", {"iaprun.test/bench": "true"})]}
    timings = (
        HA_ENV
        if lease <= 3
        else {
            "IAPRUN_LEASE_DURATION_SECONDS": str(lease),
            "IAPRUN_LEASE_RENEW_DEADLINE_SECONDS": str(lease * 2 / 3),
            "IAPRUN_LEASE_RETRY_SECONDS": str(lease * 2 / 15),
        }
    )
    env = {
        "IAPRUN_WATCH_NAMESPACE": namespace,
        "IAPRUN_TIMER_TICK_SECONDS": tick,
        "IAPRUN_DRIFT_INTERVAL_SECONDS": "3600",
        "IAPRUN_CLUSTER_ID": CLUSTER,
        "IAPRUN_TENANCY_POLICY": json.dumps(policy),
        "IAPRUN_QUOTA_RUN_WRITES_PER_MINUTE": "1000000",
        **timings,
    }
    return ShardReplicas(
        kubeconfig=str(bench.w.plane.kubeconfig),
        google_endpoint=bench.w.emulator.base_url,
        log_dir=bench.w.log_dir,
        lease_namespace=namespace,
        env=env,
    )


def _writes(bench: Bench, since: int) -> int:
    return sum(1 for e in bench.admin.requests(since=since) if e["method"] == "run.services.create")


def failover(bench: Bench) -> dict[str, Any]:
    from bench.driver import ProcMeter, ReadyWatcher, empty_row, manifest, say

    n, lease = bench.sizes.failover, bench.sizes.failover_lease
    row = empty_row("failover", n)
    ns = bench.namespace("bench-failover")
    say(f"failover: {n} objects, two replicas, Lease {lease:g} s; the active one SIGKILLed mid-rollout")
    bench.emulator_for(quota=None)
    replicas = _replicas(bench, ns, lease).start()
    watcher = ReadyWatcher(bench.w.kube, ns)
    names = [f"f-{i:04d}" for i in range(n)]
    try:
        since = bench.admin.last_seq()
        started = time.time()
        bench.w.kube.create(ns, [manifest(name, bench.sizes.accessors) for name in names], bench.sizes.create_threads)
        wait_for(lambda: _writes(bench, since) >= n // 2, timeout=bench.sizes.timeout, what="half the creates")
        failover_seconds = fail_over(replicas, bench.admin, timeout=bench.sizes.timeout)
        say(f"failover: the new active replica called Google {_seconds(failover_seconds)} after the kill")
        finished = watcher.wait_ready(names, timeout=bench.sizes.timeout)
        handover_seconds = fail_over(replicas, bench.admin, graceful=True, timeout=bench.sizes.timeout)
        say(f"failover: after a SIGTERM, the standby called Google {_seconds(handover_seconds)} later")
        watcher.wait_ready(names, timeout=bench.sizes.timeout)
        world = invariants.collect(bench.w.kube.custom, bench.w.kube.core, bench.admin, [ns])
        found = invariants.check(world, cluster_id=CLUSTER, default_project="demo-project", tenancy=policy_of(replicas))
        creates = Counter(
            str((e.get("query") or {}).get("serviceId"))
            for e in bench.admin.requests("run.services.create", since=since)
            if e["status"] == 200
        )
        doubled = sorted(s for s, times in creates.items() if times > 1)
        for violation in found:
            say(f"failover: violation {violation}")
        active = replicas.members[replicas.active()].proc
        assert active is not None
        row.update(
            converge_seconds=round(finished - started, 2),
            failover_seconds=None if failover_seconds is None else round(failover_seconds, 2),
            handover_seconds=None if handover_seconds is None else round(handover_seconds, 2),
            lease_duration_seconds=lease,
            operator_peak_rss_mb=round(ProcMeter(active.pid).peak_rss_mb(), 1),
            violations=len(found) + len(doubled),
            double_creates=doubled,
        )
    finally:
        watcher.stop()
        replicas.stop()
    return row


def policy_of(replicas: ShardReplicas) -> Any:
    member = next(iter(replicas.members.values()))
    return json.loads(member.extra_env["IAPRUN_TENANCY_POLICY"])


def _seconds(value: float | None) -> str:
    return "never (nothing to do)" if value is None else f"{value:.1f} s"
