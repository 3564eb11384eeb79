"""``python -m bench``: run the benchmark (``make bench`` runs it at full size) and print the table."""

from __future__ import annotations

import argparse
import compileall
import sys
import sysconfig
from pathlib import Path

from bench.driver import SCENARIOS, Sizes, run, table
from testworld.operator_process import REPO


def parse(argv: list[str] | None) -> tuple[Sizes, Path]:
    d = Sizes()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--scale-out", type=int, default=d.scale_out, help="objects in scale-out/reaction/steady")
    p.add_argument("--quota-bound", type=int, default=d.quota_bound, help="objects in the quota-bound run")
    p.add_argument("--failover", type=int, default=d.failover, help="objects in the failover run")
    p.add_argument("--failover-lease", type=float, default=d.failover_lease, help="Lease duration (s) in failover")
    p.add_argument("--reaction-changes", type=int, default=d.reaction_changes)
    p.add_argument("--steady-passes", type=int, default=d.steady_passes)
    p.add_argument("--all-fields", type=int, default=d.all_fields, help="steady objects with every field set")
    p.add_argument("--latency", type=float, default=d.latency, help="seconds added to every Google call")
    p.add_argument("--operation-delay", type=float, default=d.operation_delay, help="seconds per Cloud Run operation")
    p.add_argument("--quota", type=int, default=d.quota_per_minute, help="Cloud Run writes per minute (quota-bound)")
    p.add_argument("--drift-interval", type=float, default=d.drift_interval, help="steady drift interval (s)")
    p.add_argument("--timer-tick", type=float, default=d.timer_tick, help="IAPRUN_TIMER_TICK_SECONDS")
    p.add_argument("--idle-window", type=float, default=d.idle_window, help="seconds of idle CPU sampling")
    p.add_argument("--timeout", type=float, default=d.timeout, help="bound on any single wait (s)")
    p.add_argument("--quota-default", type=int, default=d.quota_default, help="objects at Google's default quota")
    p.add_argument(
        "--size", default=",".join(map(str, d.sweep)), help="fleet sizes of the size sweep (comma-separated)"
    )
    p.add_argument("--plot", default=d.plot, help="PNG the size sweep draws ('' for none)")
    p.add_argument("--sharded", type=int, default=d.sharded, help="objects in the sharded run")
    p.add_argument("--shards", type=int, default=d.shards, help="operator processes (shards) in the sharded run")
    p.add_argument(
        "--sharded-drift", type=float, default=d.sharded_drift_interval, help="drift interval (s) of its steady pass"
    )
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--operator-src", default="", help="measure the operator package under this directory instead")
    p.add_argument("--out", type=Path, default=REPO / ".bench" / "results.json")
    a = p.parse_args(argv)
    chosen = tuple("steady" if s == "steady-state" else s for s in a.scenarios.split(",") if s)  # the old name
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    sizes = Sizes(
        scale_out=a.scale_out,
        quota_bound=a.quota_bound,
        failover=a.failover,
        failover_lease=a.failover_lease,
        reaction_changes=a.reaction_changes,
        steady_passes=a.steady_passes,
        all_fields=a.all_fields,
        latency=a.latency,
        operation_delay=a.operation_delay,
        quota_per_minute=a.quota,
        drift_interval=a.drift_interval,
        timer_tick=a.timer_tick,
        idle_window=a.idle_window,
        timeout=a.timeout,
        quota_default=a.quota_default,
        sweep=tuple(int(x) for x in a.size.split(",") if x),
        plot=a.plot,
        sharded=a.sharded,
        shards=a.shards,
        sharded_drift_interval=a.sharded_drift,
        operator_src=str(Path(a.operator_src).resolve()) if a.operator_src else "",
        scenarios=chosen,
    )
    return sizes, a.out


def compile_like_the_image(operator_src: str) -> None:
    """Byte-compile the environment the operator runs from, as the image's is (``UV_COMPILE_BYTECODE=1``).

    Without ``.pyc`` files every operator start compiles its imports from source (about 1.5 s of CPU, and
    ``PYTHONDONTWRITEBYTECODE`` on this machine keeps it from being cached), which the image never pays: the
    bench would charge the operator for it on every start. Up-to-date files are skipped, so a second run is quick.
    """
    paths = sysconfig.get_paths()
    for where in dict.fromkeys([paths["purelib"], paths["platlib"], operator_src or str(REPO / "operator")]):
        compileall.compile_dir(where, quiet=2, workers=0)


def main(argv: list[str] | None = None) -> int:
    sizes, out = parse(argv)
    compile_like_the_image(sizes.operator_src)
    result = run(sizes, out)
    print(table(result["results"]))
    print(f"\n{out} ({result['wall_seconds']:.0f}s, {result['machine']['cpus']} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
