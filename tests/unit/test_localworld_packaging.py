"""The local world is a package of the dev environment and never of the operator's image.

Proves: in uv.lock, nothing the operator needs at run time (the closure of its ``dependencies``, which is what
the image's ``uv export --no-dev`` installs) reaches ``iaprun-localworld``; the distribution is in the dev
group; and a plain interpreter of the environment, with no PYTHONPATH, imports ``gcpemu``, ``testworld`` and
``bench`` while the test packages beside them (``integration``) stay out of reach.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LOCALWORLD = "iaprun-localworld"


def lock() -> dict[str, dict[str, Any]]:
    packages = tomllib.loads((REPO / "uv.lock").read_text())["package"]
    return {p["name"]: p for p in packages}


def runtime_closure(packages: dict[str, dict[str, Any]], root: str) -> set[str]:
    seen: set[str] = set()
    todo = [d["name"] for d in packages[root].get("dependencies", [])]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(d["name"] for d in packages[name].get("dependencies", []))
    return seen


def test_the_operator_runtime_never_reaches_the_local_world() -> None:
    packages = lock()
    assert LOCALWORLD not in runtime_closure(packages, "iap-run-operator")
    dev = {d["name"] for d in packages["iap-run-operator"]["dev-dependencies"]["dev"]}
    assert LOCALWORLD in dev


def test_the_environment_imports_exactly_the_local_world_packages() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = (
        "import gcpemu, testworld, bench\n"
        "try:\n    import integration\nexcept ImportError:\n    print('ok')\n"
        "else:\n    print('integration importable from', integration.__path__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd="/", capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "ok", out.stdout + out.stderr
