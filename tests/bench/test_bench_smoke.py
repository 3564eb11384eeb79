"""The benchmark at tiny sizes: every scenario runs and the results file has its fields.

A smoke test only: timings are the benchmark's business (``make bench``), never a test's. The one
behavioural assertion is the steady state's: a drift pass over converged objects writes nothing, those with
every Cloud Run field set included.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench.driver import FIELDS, SCENARIOS, Sizes, run
from testworld.cluster import ControlPlane

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMOKE = Sizes(
    scale_out=6,
    quota_bound=5,
    reaction_changes=2,
    steady_passes=3,
    all_fields=2,
    latency=0.01,
    operation_delay=0.3,
    drift_interval=1.0,
    timer_tick=0.5,
    idle_window=0.5,
    timeout=120.0,
    quota_default=4,
    sweep=(3, 6),
    sharded=6,
    shards=2,
    sharded_drift_interval=1.0,
    failover=6,
    failover_lease=3.0,
)


def test_every_scenario_runs_and_reports_its_fields(control_plane: ControlPlane, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    plot = tmp_path / "sweep.png"
    run(dataclasses.replace(SMOKE, plot=str(plot)), out, plane=control_plane, log_dir=tmp_path / "logs")

    written = json.loads(out.read_text())
    assert written["complete"] is True  # rows are saved after each scenario, the whole file marked complete at the end
    rows = {row["scenario"]: row for row in written["results"]}
    assert set(rows) == set(SCENARIOS)
    for row in rows.values():
        assert set(FIELDS) <= set(row), f"{row['scenario']} lacks {set(FIELDS) - set(row)}"
        assert row.get("skipped") or row["operator_peak_rss_mb"] > 0
    assert [r["n"] for r in written["results"] if r["scenario"] == "size-sweep"] == [3, 6]
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert rows["quota-bound-default"]["quota_429s"] == 0
    assert rows["quota-bound"]["ratio"] is not None
    assert rows["scale-out"]["google_calls_per_object_create"] > 0
    assert rows["reaction"]["reaction_p50_seconds"] is not None
    assert rows["steady"]["steady_writes"] == 0
    assert rows["steady"]["all_fields_objects"] == 2
    assert rows["steady"]["steady_writes_all_fields"] == 0
    assert rows["steady"]["steady_reads_per_object_per_pass"] > 0
    assert rows["failover"]["failover_seconds"] is not None
    assert rows["failover"]["violations"] == 0
    sharded = rows["sharded-10k"]
    assert "skipped" not in sharded
    assert len(sharded["per_shard_peak_rss_mb"]) == sharded["shards"] == 2
    assert sharded["steady_writes"] == 0
