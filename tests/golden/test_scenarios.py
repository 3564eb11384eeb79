"""Every golden scenario's request log equals its committed file (tests/golden/logs/<scenario>.log).

Proves that what the operator sends to Google (method, path, query, body) in each scenario is exactly what
was last reviewed: a request added, removed or changed fails with a diff. ``make golden`` rewrites them.
"""

from __future__ import annotations

import inspect

import pytest

from golden import golden
from golden.scenarios import SCENARIOS
from golden.world import World


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_sends_what_its_golden_log_says(world: World, name: str) -> None:
    run = SCENARIOS[name]
    await run(world)
    problem = golden.check(name, world.render(name, inspect.getdoc(run) or ""))
    if problem:
        pytest.fail(problem, pytrace=False)


def test_every_committed_log_has_a_scenario() -> None:
    """A scenario renamed or removed leaves no stale log behind that nobody checks."""
    committed = {p.stem for p in golden.LOGS.glob("*.log")}
    assert committed <= set(SCENARIOS), f"logs without a scenario: {sorted(committed - set(SCENARIOS))}"
