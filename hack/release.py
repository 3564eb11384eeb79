"""Release: package the chart, build the image, push both to an OCI registry, write a CHANGELOG entry template.

``make release REGISTRY=registry.example.com/platform`` runs this. The version comes from one place,
``pyproject.toml`` (``[project] version``); Chart.yaml's version and appVersion and the package's ``__version__``
must already agree with it (the release refuses otherwise; tests/unit/test_release.py keeps them in step).

1. ``make image`` builds ``localhost/iap-run-operator:VERSION`` (buildah; hack/image/build.sh) and writes its
   package list (Debian and Python packages, locked) to ``DIST/iap-run-operator-VERSION.packages.txt``;
2. the image is pushed to ``REGISTRY/iap-run-operator:VERSION`` and its digest read back;
3. the chart is packaged with its default image set to ``REGISTRY/iap-run-operator@sha256:...`` (so
   ``helm install oci://REGISTRY/charts/iap-run-operator --version VERSION`` runs exactly the pushed image) and
   pushed to ``oci://REGISTRY/charts``;
4. ``DIST/release-VERSION.json`` records what was pushed, and CHANGELOG.md gets a ``## VERSION`` entry template
   (left alone if it already has one).

Registries on a loopback address (127.0.0.1, localhost, [::1]) are spoken to over plain HTTP, like the test's
local registry; any other over HTTPS, with the credentials of ``buildah login`` / ``helm registry login``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "iap-run-operator"
IMAGE_NAME = "iap-run-operator"
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$")


class ReleaseError(RuntimeError):
    """The release cannot go on (versions disagree, a push failed, ...)."""


@dataclass(frozen=True)
class Released:
    version: str
    image: str  # REGISTRY/iap-run-operator:VERSION
    image_digest: str  # sha256:...
    chart: str  # oci://REGISTRY/charts/iap-run-operator
    chart_digest: str
    packages: str  # the package list file


def project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def version_mismatches(version: str) -> list[str]:
    """Places that must carry the project's version and do not."""
    chart = (CHART / "Chart.yaml").read_text()
    package = (REPO / "operator" / "iaprun_operator" / "__init__.py").read_text()
    found = {
        "charts/iap-run-operator/Chart.yaml version": _field(r"^version:\s*\"?([^\"\s]+)", chart),
        "charts/iap-run-operator/Chart.yaml appVersion": _field(r"^appVersion:\s*\"?([^\"\s]+)", chart),
        "operator/iaprun_operator/__init__.py __version__": _field(r"^__version__\s*=\s*\"([^\"]+)\"", package),
    }
    return [
        f"{where} is {value!r}, pyproject.toml says {version!r}" for where, value in found.items() if value != version
    ]


def _field(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, flags=re.MULTILINE)
    return match.group(1) if match else None


def plain_http(registry: str) -> bool:
    return bool(LOOPBACK.match(registry.split("/", 1)[0]))


def _run(*command: str, env: dict[str, str] | None = None) -> str:
    print(f"[release] $ {' '.join(command)}", file=sys.stderr, flush=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ReleaseError(f"{command[0]} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def build_image(dist: Path, version: str) -> tuple[str, Path]:
    packages = dist / f"{IMAGE_NAME}-{version}.packages.txt"
    env = {**os.environ, "IAPRUN_IMAGE_PACKAGES": str(packages)}
    image = _run(str(REPO / "hack" / "image" / "build.sh"), env=env).strip().splitlines()[-1]
    return image, packages


def buildah_command() -> list[str]:
    """buildah on the storage hack/image/build.sh builds into."""
    cache = Path(os.environ.get("IAPRUN_CACHE") or Path.home() / ".cache" / "iap-run-operator")
    root = Path(os.environ.get("IAPRUN_BUILDAH_ROOT") or cache / "buildah")
    return ["buildah", "--root", str(root / "root"), "--runroot", str(root / "runroot"), "--storage-driver", "vfs"]


def push_image(local: str, registry: str, version: str, dist: Path) -> tuple[str, str]:
    target = f"{registry}/{IMAGE_NAME}:{version}"
    digest_file = dist / f"{IMAGE_NAME}-{version}.digest"
    tls = ["--tls-verify=false"] if plain_http(registry) else []
    _run(*buildah_command(), "push", *tls, "--digestfile", str(digest_file), local, f"docker://{target}")
    digest = digest_file.read_text().strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ReleaseError(f"buildah push wrote no digest: {digest!r}")
    return target, digest


def package_chart(registry: str, version: str, digest: str, dist: Path) -> Path:
    """The chart, its default image pointing at the pushed one by digest, packaged as VERSION."""
    with tempfile.TemporaryDirectory(prefix="chart-") as tmp:
        chart = Path(tmp) / CHART.name
        shutil.copytree(CHART, chart)
        values = chart / "values.yaml"
        values.write_text(pinned_values(values.read_text(), f"{registry}/{IMAGE_NAME}", digest))
        helm = helm_binary()
        _run(helm, "lint", "--strict", str(chart))
        _run(helm, "package", str(chart), "--version", version, "--app-version", version, "--destination", str(dist))
    return dist / f"{CHART.name}-{version}.tgz"


def pinned_values(text: str, repository: str, digest: str) -> str:
    """values.yaml with image.repository and image.digest set (comments and everything else unchanged)."""
    out, count = re.subn(r"(?m)^(  repository: ).*$", lambda m: f"{m.group(1)}{repository}", text, count=1)
    out, count2 = re.subn(r'(?m)^(  digest: )"".*$', lambda m: f'{m.group(1)}"{digest}"', out, count=1)
    if (count, count2) != (1, 1):
        raise ReleaseError("values.yaml: image.repository or image.digest not found where expected")
    return out


def helm_binary() -> str:
    from testworld import tools  # the project's pinned, verified helm (the local world package, make venv)

    return str(tools.helm_path())


def push_chart(package: Path, registry: str) -> tuple[str, str]:
    flags = ["--plain-http"] if plain_http(registry) else []
    proc = subprocess.run(
        [helm_binary(), "push", str(package), f"oci://{registry}/charts", *flags], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise ReleaseError(f"helm push exited {proc.returncode}:\n{proc.stderr}")
    output = proc.stdout + proc.stderr
    digest = re.search(r"Digest:\s*(sha256:[0-9a-f]{64})", output)
    if digest is None:
        raise ReleaseError(f"helm push printed no digest:\n{output}")
    return f"oci://{registry}/charts/{CHART.name}", digest.group(1)


def changelog_entry(released: Released, today: datetime.date) -> str:
    return f"""## {released.version} - {today.isoformat()}

<!-- Fill in before announcing; delete the headings that stay empty. -->

### Added

### Changed

### Fixed

### Upgrade notes

<!-- CRD changes, renamed values, anything `helm upgrade` users must do first (docs/helm.md, Upgrade). -->

### Artifacts

- Chart: `helm install iap-run-operator {released.chart} --version {released.version}` (`{released.chart_digest}`)
- Image: `{released.image.rsplit(":", 1)[0]}@{released.image_digest}` (tag `{released.version}`)
- Packages in the image: `{Path(released.packages).name}`

"""


def write_changelog(path: Path, released: Released, today: datetime.date) -> bool:
    """Prepend the entry template unless the changelog already has a section for this version."""
    text = path.read_text() if path.exists() else "# Changelog\n\n"
    if re.search(rf"(?m)^## {re.escape(released.version)}\b", text):
        return False
    head, sep, rest = text.partition("\n## ")
    body = f"{head.rstrip()}\n\n{changelog_entry(released, today)}" + (f"## {rest}" if sep else "")
    path.write_text(body.rstrip() + "\n")
    return True


def release(registry: str, dist: Path, changelog: Path) -> Released:
    version = project_version()
    if problems := version_mismatches(version):
        raise ReleaseError("versions disagree:\n  " + "\n  ".join(problems))
    registry = registry.rstrip("/")
    dist.mkdir(parents=True, exist_ok=True)
    local, packages = build_image(dist, version)
    image, digest = push_image(local, registry, version, dist)
    package = package_chart(registry, version, digest, dist)
    chart, chart_digest = push_chart(package, registry)
    released = Released(version, image, digest, chart, chart_digest, str(packages))
    (dist / f"release-{version}.json").write_text(json.dumps(asdict(released), indent=2) + "\n")
    write_changelog(changelog, released, datetime.datetime.now(datetime.UTC).date())
    return released


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--registry", required=True, help="e.g. registry.example.com/platform or 127.0.0.1:5000/x")
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="where the artefacts go (default dist/)")
    parser.add_argument("--changelog", type=Path, default=REPO / "CHANGELOG.md")
    args = parser.parse_args(argv)
    try:
        released = release(args.registry, args.dist, args.changelog)
    except ReleaseError as e:
        print(f"release: {e}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(released), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
