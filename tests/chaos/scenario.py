"""The three waves every fault scenario runs: rollout of N objects, an update wave, a delete wave.

Each wave is applied with the fault in place (``Fault.begin(wave)``), the fault ends by itself or is
lifted by ``Fault.end(wave)``, and the wave is done when every object has converged; then the invariant
checker runs. The time from apply to convergence is recorded per wave.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.world import WAVES, ChaosWorld, Figures, abandoned_keys, fleet, names


@dataclass
class Fault:
    """What to do around each wave; the default does nothing (the baseline)."""

    begin: Callable[[str], None] = lambda wave: None
    during: Callable[[str], None] = lambda wave: None
    """Called after the wave was applied, before waiting (e.g. revoke, then restore)."""
    end: Callable[[str], None] = lambda wave: None
    converge_timeout: float = float(os.environ.get("IAPRUN_CHAOS_TIMEOUT") or 240)
    """Bound of one wave's convergence at 50 objects (scaled up with N): a failure, not a measurement."""
    counted: list[int] = field(default_factory=list)


def run_waves(world: ChaosWorld, fig: Figures, fault: Fault, *, n: int, project: str | None = None) -> None:
    ns = world.namespaces[0]
    bodies = fleet(n, project=project)
    wanted = names(bodies)
    abandoned = abandoned_keys(world, bodies)
    timeout = fault.converge_timeout * max(1.0, n / 50)
    for wave in WAVES:
        fault.begin(wave)
        started = time.monotonic()
        world.start_wave(ns, bodies, wave)
        fault.during(wave)
        world.wait_wave(ns, wanted, wave, timeout=timeout, what=f"{n} objects Ready after the {wave} wave")
        fig.waves[wave] = time.monotonic() - started
        fault.end(wave)
        world.assert_invariants(fig, abandoned=abandoned if wave == "delete" else ())
    world.assert_operator_alive()
    assert world.operator_errors() == []
