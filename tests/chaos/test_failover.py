"""Hot standby under fire: two replicas electing their active one with a Lease, the active one SIGKILLed mid-wave.

Each wave (rollout, update, delete) kills the active replica after a random number of its Google writes (twice
per wave at full size, once reduced), and starts the killed one again as a standby, as its Deployment would. The
standby takes over after the Lease duration; every wave converges and the invariant checker finds no violation.
Proves also what the invariants alone do not: no service is created twice (no double write across the
takeover) and the killed replica made no call after its kill (calls that *started* later are the new active's).
The takeover times (kill -> first Google call of the new active replica) are in the figures' notes.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable

import pytest

from chaos.conftest import FULL
from chaos.world import WAVES, ChaosWorld, Figures, abandoned_keys, fleet, names
from testworld.operator_process import ShardReplicas, fail_over

pytestmark = pytest.mark.integration
FigureMaker = Callable[[str, int], Figures]


def kill_active_after_writes(world: ChaosWorld, replicas: ShardReplicas, count: int) -> float | None:
    """SIGKILL the active replica once it made ``count`` more Google writes (or the wave went quiet first);
    returns the seconds until the new active replica's first Google call (None: it had nothing left to do)."""
    world.await_writes(count)
    return fail_over(replicas, world.emu, timeout=60)


def double_creates(world: ChaosWorld, since: int) -> list[str]:
    created = Counter(
        str(r["query"].get("serviceId"))
        for r in world.operator_requests("run.services.create", since=since)
        if r["status"] == 200
    )
    return sorted(service for service, times in created.items() if times > 1)


def test_killing_the_active_replica_hands_over_to_the_standby(
    world: ChaosWorld, chaos_size: int, figures: FigureMaker
) -> None:
    n = chaos_size
    kills = 2 if FULL else 1
    fig = figures("two replicas, the active one SIGKILLed", n)
    ns = world.namespaces[0]
    bodies = fleet(n)
    expected_writes = {"rollout": 3 * n, "update": 2 * n, "delete": n}
    replicas = world.start_replicas(2)
    since, takeovers = world.emu.last_seq(), list[float]()
    for wave in WAVES:
        started = time.monotonic()
        world.start_wave(ns, bodies, wave)
        share = max(1, expected_writes[wave] // (kills + 1))
        for _ in range(kills):
            if (takeover := kill_active_after_writes(world, replicas, world.rng.randint(1, share))) is not None:
                takeovers.append(takeover)
            fig.kills += 1
        world.wait_wave(ns, names(bodies), wave, timeout=240)
        fig.waves[wave] = time.monotonic() - started
        world.assert_invariants(fig, abandoned=abandoned_keys(world, bodies) if wave == "delete" else ())
    fig.notes = (
        f"takeover (kill -> first Google call) median {statistics.median(takeovers):.1f} s, max {max(takeovers):.1f} s"
    )
    assert double_creates(world, since) == []
    assert all(member.running() for member in replicas.members.values())
    assert world.operator_errors() == []
