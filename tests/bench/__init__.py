"""`make bench`: the operator's performance against the local world (see docs/performance.md).

``python -m bench`` (a package of the local world, tests/pyproject.toml) starts the real control plane, the
emulator and the operator as separate processes, runs the scenarios of issue 9 at the given sizes, prints a table
and writes ``.bench/results.json``. ``tests/bench/test_bench_smoke.py`` runs the same code at tiny sizes.
"""
