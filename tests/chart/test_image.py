"""The operator's image, built for real by `make image` (buildah, chroot isolation, vfs storage, a local Debian base
and offline wheels from uv.lock), and run as users run it.

Proves: the image's configuration (numeric non-root user, the venv entrypoint); what runs in it (uid 65532,
``--help`` and ``--version`` through the entrypoint); what is absent from it (compilers, build tools, caches,
the build context); and that the operator from the image, with the chart's ServiceAccount token, reconciles an
IapRunService to Ready against the real control plane and the Google emulator (``buildah run`` shares the
host's network in chroot isolation, so loopback reaches both). Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chart.conftest import Release
from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess
from integration.harness import REPO, apply, free_port, manifest, wait_for
from testworld import tools
from testworld.fixtures import Runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ENTRYPOINT = ["/opt/venv/bin/iap-run-operator"]


def buildah(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """buildah on the project's own storage (where `make image` put the image), as hack/image/build.sh runs it."""
    root = Path(os.environ.get("IAPRUN_BUILDAH_ROOT") or tools.cache_dir() / "buildah")
    command = ["buildah", "--root", str(root / "root"), "--runroot", str(root / "runroot"), "--storage-driver", "vfs"]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def image() -> str:
    """`make image` (a cache hit when nothing changed); its last line is the image name."""
    if shutil.which("buildah") is None and os.geteuid() != 0:
        pytest.skip("buildah is not installed and installing it (apt-get) needs root")
    proc = subprocess.run(["make", "-s", "image"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"make image failed:\n{proc.stderr[-4000:]}"
    return proc.stdout.strip().splitlines()[-1]


def _working_container(image: str) -> Iterator[str]:
    name = buildah("from", "--pull=false", "--name", f"iaprun-test-{uuid.uuid4().hex[:8]}", image).stdout.strip()
    yield name
    buildah("rm", name, check=False)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    """A working container of the image for the tests that only look (vfs copies the whole image per container)."""
    yield from _working_container(image)


@pytest.fixture
def fresh_container(image: str) -> Iterator[str]:
    """A working container of the image of its own (the operator test configures its environment)."""
    yield from _working_container(image)


def run_in(container: str, *command: str, volumes: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    mounts = [arg for volume in volumes for arg in ("--volume", volume)]
    return buildah("run", "--isolation", "chroot", *mounts, container, "--", *command)


def test_image_config_is_non_root_with_the_venv_entrypoint(image: str) -> None:
    """The image declares a numeric non-root user and the venv's console script as its entrypoint."""
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["Labels"]["dev.iaprun.inputs"]


def test_entrypoint_runs_as_non_root_and_answers_help(container: str) -> None:
    """In the container the process is uid/gid 65532, and the entrypoint's --help and --version work."""
    assert run_in(container, "id", "-u").stdout.strip() == "65532"
    assert run_in(container, "id", "-g").stdout.strip() == "65532"
    assert "usage: iap-run-operator" in run_in(container, *ENTRYPOINT, "--help").stdout
    assert run_in(container, *ENTRYPOINT, "--version").stdout.strip() == "iap-run-operator 0.1.0"


def test_any_uid_has_a_user_name(container: str) -> None:
    """kopf names itself after the user (getpass.getuser()); a pod may pick another uid than the image's, which has
    no passwd entry, and the name must still resolve."""
    command = ("/opt/venv/bin/python", "-c", "import getpass; print(getpass.getuser())")
    assert run_in(container, *command).stdout.strip() == "nonroot"
    other = buildah("run", "--isolation", "chroot", "--user", "10001:10001", container, "--", *command)
    assert other.stdout.strip() == "nonroot"


def test_final_image_has_no_compilers_build_tools_or_caches(container: str) -> None:
    """Only the runtime venv was copied from the builder: no compiler, no uv/hatchling, no wheels, no sources, no
    package caches; the venv is at the builder's path (/opt/venv) and runs the base image's python."""
    script = (
        "for tool in gcc cc c++ make uv pip; do command -v $tool; done; "
        "ls -d /opt/buildtools /wheels /src /root/.cache /tmp/dist /var/cache/apt/archives/*.deb 2>/dev/null; "
        "ls /var/lib/apt/lists | grep -v -e '^lock$' -e '^partial$'; true"
    )
    assert run_in(container, "sh", "-c", script).stdout.strip() == ""
    prefix = run_in(container, "/opt/venv/bin/python", "-c", "import sys, iaprun_operator; print(sys.prefix)")
    assert prefix.stdout.strip() == "/opt/venv"


def test_image_ships_only_what_runs_and_its_package_list(container: str) -> None:
    """Three discovery documents (the ones the operator builds clients from), no kubernetes.aio, and the package
    list (Debian and Python packages, as locked) with the hash-pinned requirements it was installed from."""
    site = "/opt/venv/lib/python3.11/site-packages"
    documents = run_in(container, "ls", f"{site}/googleapiclient/discovery_cache/documents").stdout.split()
    kept = (REPO / "hack" / "image" / "discovery-documents.txt").read_text().splitlines()
    assert sorted(documents) == sorted(f"{line}.json" for line in kept if line and not line.startswith("#"))
    assert run_in(container, "sh", "-c", f"ls -d {site}/kubernetes/aio 2>/dev/null; true").stdout == ""
    packages = run_in(container, "cat", "/usr/share/iap-run-operator/packages.txt").stdout.splitlines()
    assert any(line.startswith("deb python3.11 ") for line in packages)
    assert "pypi iap-run-operator 0.1.0" in packages
    assert any(line.startswith("pypi kopf ") for line in packages)
    requirements = run_in(container, "cat", "/usr/share/iap-run-operator/requirements.txt").stdout
    assert "--hash=sha256:" in requirements


def _readable_copy(kubeconfig: Path, directory: Path) -> Path:
    """The operator runs as uid 65532: give it a copy of the kubeconfig it may read."""
    copy = directory / "kubeconfig"
    shutil.copyfile(kubeconfig, copy)
    copy.chmod(0o644)
    return copy


# Runs a command in the image's root filesystem as a kubelet would with the chart's securityContext: a private
# mount namespace, the root read-only, a tmpfs at /tmp (the chart's emptyDir), the host's /dev and a /proc, and the
# image's user. Arguments: rootfs, kubeconfig, user[:group], command...
READ_ONLY_ROOT = r"""
set -eu
root=$1; kubeconfig=$2; user=$3; shift 3
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
cp "$kubeconfig" "$root/tmp/kubeconfig"
chmod 0444 "$root/tmp/kubeconfig"
exec chroot --userspec="$user" "$root" "$@"
"""


class ImageOperator:
    """The image's entrypoint, in its own process group, either through `buildah run` (chroot isolation, host
    network) or chrooted into the mounted image with a read-only root (see READ_ONLY_ROOT)."""

    def __init__(self, image: str, container: str, kubeconfig: Path, google_endpoint: str, log_path: Path) -> None:
        self.image, self.container, self.kubeconfig, self.log_path = image, container, kubeconfig, log_path
        self.env = {
            "IAPRUN_GOOGLE_API_ENDPOINT": google_endpoint,
            "IAPRUN_DEFAULT_PROJECT": "demo-project",
            "IAPRUN_METRICS_PORT": "0",
            "IAPRUN_TIMER_TICK_SECONDS": "1",
            "IAPRUN_CLUSTER_ID": "test-cluster",
            "IAPRUN_TENANCY_POLICY": '{"singleTenant": true}',
        }
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.mounted = False

    def start(self, *, read_only_root: bool) -> ImageOperator:
        config = json.loads(buildah("inspect", "--type", "image", self.image).stdout)["OCIv1"]["config"]
        args = ["--log-format=json", f"--liveness=http://127.0.0.1:{self.port}/healthz"]
        if read_only_root:
            rootfs = buildah("mount", self.container).stdout.strip()
            self.mounted = True
            image_env = dict(item.split("=", 1) for item in config["Env"])
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT, "sh"]
            command += [rootfs, str(self.kubeconfig), config["User"], *config["Entrypoint"], *args]
            env = {**image_env, **self.env, "KUBECONFIG": "/tmp/kubeconfig"}
        else:
            env_args = [
                arg
                for k, v in {**self.env, "KUBECONFIG": "/etc/iaprun/kubeconfig"}.items()
                for arg in ("--env", f"{k}={v}")
            ]
            buildah("config", *env_args, self.container)
            root = Path(os.environ.get("IAPRUN_BUILDAH_ROOT") or tools.cache_dir() / "buildah")
            command = [
                *("buildah", "--root", str(root / "root"), "--runroot", str(root / "runroot")),
                *("--storage-driver", "vfs", "run", "--isolation", "chroot", "--network", "host"),
                *("--volume", f"{self.kubeconfig}:/etc/iaprun/kubeconfig:ro"),
                *(self.container, "--", *config["Entrypoint"], *args),
            ]
            env = dict(os.environ)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_for(self._alive, timeout=90, what=f"the image's operator liveness (log: {self.log_path})")
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"operator exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.mounted:
            buildah("umount", self.container, check=False)


@pytest.fixture
def image_operator(image: str, fresh_container: str, tmp_path: Path) -> Iterator[Any]:
    started: list[ImageOperator] = []

    def start(kubeconfig: Path, google_endpoint: str, *, read_only_root: bool) -> ImageOperator:
        kubeconfig = _readable_copy(kubeconfig, tmp_path)
        operator = ImageOperator(image, fresh_container, kubeconfig, google_endpoint, tmp_path / "op.log")
        started.append(operator)
        return operator.start(read_only_root=read_only_root)

    yield start
    for operator in started:
        operator.stop()


@pytest.mark.parametrize("how", ["buildah-run", "read-only-root"])
def test_operator_from_the_image_reconciles_to_ready(
    image_operator: Any,
    release: Release,
    kubectl: Runner,
    namespace: str,
    sa_kubeconfig: Any,
    gcp_emulator_process: EmulatorProcess,
    forget_objects: list[tuple[str, str]],
    how: str,
) -> None:
    """helm install, then the image's entrypoint with the chart ServiceAccount's token reconciles an object to Ready
    (the Cloud Run service exists, with IAP on, in the emulator) and finalises its deletion; both with `buildah run`
    and chrooted into the image with a read-only root and only /tmp writable, as the chart runs it."""
    release.install("--set", "tenancy.singleTenant=true")
    url = gcp_emulator_process.base_url
    kubeconfig = sa_kubeconfig(namespace, release.fullname)
    operator = image_operator(kubeconfig, url, read_only_root=how == "read-only-root")
    name = f"img-{uuid.uuid4().hex[:6]}"
    forget_objects.append((namespace, name))
    apply(kubectl, namespace, manifest(name))
    ready = kubectl(
        "wait", "-n", namespace, f"iaprunservice/{name}", "--for=condition=Ready", "--timeout=90s", check=False
    )
    assert ready.returncode == 0, f"{ready.stderr}\n--- operator log ---\n{operator.log_path.read_text()[-3000:]}"
    service = AdminClient(url).service("demo-project", "asia-northeast1", name)
    assert service is not None
    assert service["iapEnabled"] is True
    kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--timeout=90s")
    assert AdminClient(url).service("demo-project", "asia-northeast1", name) is None
