"""`docker build .` on arm64 finds a hash-pinned wheel for every input, as on amd64 (`make image` builds that one).

The Dockerfile's builder installs uv and hatchling with pip ``--require-hashes`` and the runtime with the hashes
``uv export`` takes from uv.lock. On a platform whose wheel hash is missing the build stops, which is how arm64
builds used to fail (only uv's x86_64 hash was pinned). This test asks pip for exactly what the builder would
install on linux/aarch64 (CPython 3.11, glibc 2.36 like Debian bookworm), binary wheels only, hashes required:
it proves a hash is pinned for each and that each matches what the index serves. Needs the package index.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from integration.harness import REPO
from testworld import tools

pytestmark = pytest.mark.slow
REQUIREMENTS = (REPO / "hack" / "uv-requirements.txt", REPO / "hack" / "image" / "build-requirements.txt")


def _pip() -> list[str]:
    return tools._pip_command()  # the interpreter's pip, or the uv bootstrap venv's


def _runtime_requirements(directory: Path) -> Path:
    out = directory / "runtime.txt"
    uv = subprocess.run([str(REPO / "hack" / "bootstrap-uv.sh")], capture_output=True, text=True, check=True)
    command = [uv.stdout.strip(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-header"]
    command += ["--format", "requirements-txt", "-o", str(out)]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return out


def _platforms(arch: str) -> list[str]:
    """What glibc 2.36 (Debian bookworm) runs, spelled out: older pips do not expand manylinux_2_36 themselves."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 16, -1)] + [f"manylinux2014_{arch}", f"linux_{arch}"]
    return [arg for tag in tags for arg in ("--platform", tag)]


@pytest.mark.parametrize("arch", ["aarch64"])  # x86_64: `make image` downloads exactly that
def test_every_build_input_has_a_pinned_wheel_for_the_platform(tmp_path: Path, arch: str) -> None:
    """pip downloads uv, hatchling and every locked runtime package for linux/<arch> with --require-hashes."""
    files = [arg for path in (*REQUIREMENTS, _runtime_requirements(tmp_path)) for arg in ("-r", str(path))]
    command = [*_pip(), "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--require-hashes"]
    command += ["--only-binary=:all:", *_platforms(arch), "--python-version", "3.11", "--implementation", "cp"]
    proc = subprocess.run([*command, *files, "-d", str(tmp_path / "wheels")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = [p.name for p in (tmp_path / "wheels").glob("*.whl")]
    assert any(name.startswith("uv-") and arch in name for name in wheels), wheels
    assert any(name.startswith("grpcio-") and arch in name for name in wheels), wheels
