"""Fixtures of the chaos suite: size, a dedicated emulator, a world per test, and the figures report.

- ``IAPRUN_CHAOS_SIZE``: objects per rollout (default 10: the reduced size ``make test`` runs;
  ``make chaos`` sets 100).
- ``IAPRUN_CHAOS_SEED``: seed of the random kill points and hostile inputs (default: random, printed).
- ``IAPRUN_CHAOS_REPORT``: write the figures of the run as JSON to this path (``make chaos`` does).
- ``IAPRUN_CHAOS_TIMEOUT``: bound of one wave's convergence (default 240 s at 50 objects, scaled with N);
  lower it when proving that a test fails without the operator's handling.

The emulator is this module's own process (reset before each test), so its state and request log hold
only what the chaos tests did and the invariant checker can look at "every service anywhere".
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from chaos.world import ChaosWorld, Figures
from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess
from integration.harness import REPO
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration

SIZE = int(os.environ.get("IAPRUN_CHAOS_SIZE") or 10)
SEED = int(os.environ.get("IAPRUN_CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
FULL = SIZE >= 100
RESULTS: list[Figures] = []


@pytest.fixture(scope="session")
def chaos_size() -> int:
    return SIZE


@pytest.fixture(scope="session")
def chaos_crd(kubectl: Runner) -> None:
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/iaprunservices.iaprun.dev")


@pytest.fixture(scope="session")
def chaos_emulator() -> Iterator[str]:
    emulator = EmulatorProcess()
    url = emulator.start()
    try:
        yield url
    finally:
        emulator.stop()


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    kube_admin: Any,
    kubectl: Runner,
    chaos_emulator: str,
    chaos_crd: None,
    tmp_path: Path,
) -> Iterator[ChaosWorld]:
    """A fresh emulator world, one namespace, no operator yet (the test starts it with its settings)."""
    from kubernetes import client

    admin = AdminClient(chaos_emulator, timeout=30)
    admin.reset()
    seed = SEED + sum(map(ord, request.node.name))
    w = ChaosWorld(
        kubectl=kubectl,
        custom=client.CustomObjectsApi(kube_admin),
        core=client.CoreV1Api(kube_admin),
        emu=admin,
        emulator_url=chaos_emulator,
        control_plane=control_plane,
        log_dir=tmp_path,
        rng=random.Random(seed),
    )
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    w.namespace(f"{base}-{uuid.uuid4().hex[:5]}")
    try:
        yield w
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for proc in w.operators[-2:]:
                print(f"--- operator log tail ({proc.log_path}) ---\n{proc.log_tail(60)}")
        w.close()


@pytest.fixture
def figures() -> Any:
    """``figures(scenario, objects)`` -> a ``Figures`` the test fills in; reported at the end of the run."""

    def make(scenario: str, objects: int) -> Figures:
        fig = Figures(scenario=scenario, objects=objects)
        RESULTS.append(fig)
        return fig

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + report.when, report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section(f"chaos figures (size {SIZE}, seed {SEED})")
    tr.write_line(f"{'scenario':<44} {'objects':>7} {'faults':>7} {'kills':>5} {'violations':>10}  waves (s)")
    for f in RESULTS:
        waves = ", ".join(f"{k} {v:.1f}" for k, v in f.waves.items())
        tr.write_line(f"{f.scenario:<44} {f.objects:>7} {f.faults:>7} {f.kills:>5} {f.violations:>10}  {waves}")
        if f.notes:
            tr.write_line(f"{'':<44} {f.notes}")
    path = os.environ.get("IAPRUN_CHAOS_REPORT")
    if path:
        Path(path).write_text(
            json.dumps({"size": SIZE, "seed": SEED, "results": [asdict(f) for f in RESULTS]}, indent=2) + "\n"
        )
        tr.write_line(f"figures written to {path}")
