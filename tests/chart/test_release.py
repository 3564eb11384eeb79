"""`make release` end to end, against a real OCI registry started locally, then installs from it.

The registry is the CNCF distribution registry (github.com/distribution/distribution/v3/cmd/registry), built from
its Go module at a pinned version and cached like the control plane (testworld.tools.registry_path), serving
plain HTTP on a free loopback port with its storage in the test's temporary directory.

Proves: `make release REGISTRY=127.0.0.1:PORT/iaprun` pushes the image and the chart; the registry serves the
image under the digest the release recorded; `helm install oci://.../charts/iap-run-operator --version VERSION`
into the local control plane creates a Deployment running that image **by digest**; and `helm upgrade` from the
previous chart version (pushed to the same registry) to this one keeps the CRD and the users' IapRunService
objects as the same objects (same uids, same specs), Ready, with no Google write by the operator resuming after
it. No kubelet runs here, so no pod starts: the operator runs as a process beside the release, stopped before
the upgrade and started after it, as `strategy: Recreate` does with its pod.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart.conftest import CHART, CRD_NAME, adopt_crd
from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess
from integration.harness import REPO, OperatorProcess, apply, free_port, kubectl_json, manifest, wait_for
from testworld import tools
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
PREVIOUS = "0.0.1"  # the "previous release" the upgrade test starts from


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OCI registry on 127.0.0.1:PORT (host:port)."""
    if shutil.which("buildah") is None and os.geteuid() != 0:
        pytest.skip("buildah is not installed and installing it (apt-get) needs root")
    binary = tools.registry_path()
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    with (root / "registry.log").open("ab") as log:
        proc = subprocess.Popen([str(binary), "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/v2/")[0] == 200, timeout=30, what="the registry's /v2/")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), b""
    except OSError:
        return 0, {}, b""


@pytest.fixture(scope="module")
def released(registry: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`make release REGISTRY=<registry>/iaprun`, its outputs in a temporary directory; the release record."""
    dist = tmp_path_factory.mktemp("dist")
    command = ["make", "-s", "release", f"REGISTRY={registry}/iaprun", f"DIST={dist}", f"CHANGELOG={dist}/CHANGELOG.md"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, f"make release failed:\n{proc.stderr[-6000:]}"
    record: dict[str, Any] = json.loads((dist / f"release-{_version()}.json").read_text())
    record["dist"] = str(dist)
    return record


def _version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["version"])


def test_release_pushes_the_image_the_record_names(registry: str, released: dict[str, Any]) -> None:
    """The registry serves REGISTRY/iaprun/iap-run-operator:VERSION under the digest in the release record."""
    version = _version()
    assert released["image"] == f"{registry}/iaprun/iap-run-operator:{version}"
    url = f"http://{registry}/v2/iaprun/iap-run-operator/manifests/{version}"
    status, headers, body = _get(url, {"Accept": MANIFEST_TYPES})
    assert status == 200
    assert headers["Docker-Content-Digest"] == released["image_digest"]
    assert json.loads(body)["layers"]
    by_digest = f"http://{registry}/v2/iaprun/iap-run-operator/manifests/{released['image_digest']}"
    assert _get(by_digest, {"Accept": MANIFEST_TYPES})[0] == 200


def test_release_writes_package_list_record_and_changelog(released: dict[str, Any]) -> None:
    """The image's package list (Debian and Python, locked), the record, and a CHANGELOG template naming both."""
    packages = Path(released["packages"]).read_text().splitlines()
    assert any(line.startswith("deb python3.11 ") for line in packages)
    assert any(line.startswith("pypi kopf 1.") for line in packages)
    assert any(line.startswith("pypi iap-run-operator ") for line in packages)
    changelog = (Path(released["dist"]) / "CHANGELOG.md").read_text()
    assert f"## {_version()} - " in changelog
    assert released["image_digest"] in changelog


def test_helm_install_from_the_registry_runs_the_image_by_digest(
    helm: Runner, kubectl: Runner, namespace: str, registry: str, released: dict[str, Any]
) -> None:
    """`helm install oci://.../charts/iap-run-operator --version VERSION` with no values: the Deployment runs
    REGISTRY/iaprun/iap-run-operator@sha256:<the pushed digest>, and the chart is the released version."""
    name = "released"
    adopt_crd(kubectl, name, namespace)
    chart = f"oci://{registry}/iaprun/charts/iap-run-operator"
    helm(
        "install", name, chart, "--version", _version(), "--plain-http", "--namespace", namespace,
        *_confined(namespace), timeout=300,
    )  # fmt: skip
    try:
        deployment = kubectl_json(kubectl, "get", "deployment", "-n", namespace, f"{name}-iap-run-operator")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{registry}/iaprun/iap-run-operator@{released['image_digest']}"
        labels = deployment["metadata"]["labels"]
        assert labels["helm.sh/chart"] == f"iap-run-operator-{_version()}"
        assert labels["app.kubernetes.io/version"] == _version()
    finally:
        helm("uninstall", name, "--namespace", namespace, check=False)


def _confined(namespace: str) -> list[str]:
    """A single-team policy whose admission policy judges only the test's namespace (it is cluster-scoped)."""
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    return [
        "--set",
        "tenancy.singleTenant=true",
        "--set-json",
        f"admissionPolicy.namespaceSelector={json.dumps(selector)}",
    ]


def _push_previous_chart(registry: str, directory: Path) -> None:
    """The chart as the previous release shipped it (version PREVIOUS, image by tag), pushed to the registry."""
    helm = str(tools.helm_path())
    subprocess.run([helm, "package", str(CHART), "--version", PREVIOUS, "-d", str(directory)], check=True)
    package = directory / f"iap-run-operator-{PREVIOUS}.tgz"
    push = [helm, "push", str(package), f"oci://{registry}/iaprun/charts", "--plain-http"]
    subprocess.run(push, check=True, capture_output=True)


# What changes a Google resource (the IAP agent's generateServiceIdentity is a get-or-create, asked once per
# project by every new operator process, as in tests/integration/test_reconcile.py).
WRITES = ("run.services.create", "run.services.patch", "run.services.delete", "run.services.setIamPolicy")
WRITES += ("iap.setIamPolicy",)


def _writes(emu: AdminClient, since: int) -> list[str]:
    return [r["method"] for r in emu.requests(since=since) if r["method"] in WRITES]


def test_upgrade_from_the_previous_release_keeps_objects_ready_with_no_google_write(
    helm: Runner,
    kubectl: Runner,
    control_plane: ControlPlane,
    namespace: str,
    registry: str,
    released: dict[str, Any],
    gcp_emulator_process: EmulatorProcess,
    tmp_path: Path,
) -> None:
    """Install PREVIOUS from the registry; an operator (a process: no kubelet runs pods here) reconciles an
    IapRunService to Ready and stops, as the old pod does under `Recreate`; `helm upgrade` to VERSION; the operator
    starts again. The CRD and the object are the same objects (uids, spec), the Deployment now runs the released
    image by digest, and the resumed operator re-reads the service and makes **no** Google write."""
    _push_previous_chart(registry, tmp_path)
    name, svc = "upgraded", f"up-{uuid.uuid4().hex[:6]}"
    chart = f"oci://{registry}/iaprun/charts/iap-run-operator"
    emu = AdminClient(gcp_emulator_process.base_url)

    def operator() -> OperatorProcess:
        env = {"IAPRUN_CLUSTER_ID": "release-test", "IAPRUN_TENANCY_POLICY": json.dumps({"singleTenant": True})}
        return OperatorProcess(
            kubeconfig=str(control_plane.kubeconfig),
            google_endpoint=gcp_emulator_process.base_url,
            log_dir=tmp_path,
            env=env,
        ).start()

    adopt_crd(kubectl, name, namespace)
    confined = _confined(namespace)
    helm(
        "install", name, chart, "--version", PREVIOUS, "--plain-http", "--namespace", namespace, *confined,
        timeout=300,
    )  # fmt: skip
    body = manifest(svc)
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    old = operator()
    try:
        apply(kubectl, namespace, body)
        kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=90s")
        old.stop()
        before = kubectl_json(kubectl, "get", "iaprunservice", "-n", namespace, svc)
        crd_uid = kubectl_json(kubectl, "get", "crd", CRD_NAME)["metadata"]["uid"]
        helm(
            "upgrade", name, chart, "--version", _version(), "--plain-http", "--namespace", namespace, *confined,
            timeout=300,
        )  # fmt: skip
        since = emu.last_seq()
        new = operator()
        try:
            # A resume pass reads the service itself, or takes it from the region's listing (one listing serves
            # every object whose service it only confirms).
            wait_for(
                lambda: (
                    any(svc in r["path"] for r in emu.requests("run.services.get", since=since))
                    or bool(emu.requests("run.services.list", since=since))
                ),
                timeout=60,
                what="the upgraded operator's first look at the service",
            )
            kubectl("wait", "-n", namespace, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=60s")
            assert _writes(emu, since) == []
        finally:
            new.stop()
        after = kubectl_json(kubectl, "get", "iaprunservice", "-n", namespace, svc)
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert after["spec"] == before["spec"]
        assert kubectl_json(kubectl, "get", "crd", CRD_NAME)["metadata"]["uid"] == crd_uid
        deployment = kubectl_json(kubectl, "get", "deployment", "-n", namespace, f"{name}-iap-run-operator")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{registry}/iaprun/iap-run-operator@{released['image_digest']}"
        history = json.loads(helm("history", name, "--namespace", namespace, "-o", "json").stdout)
        assert [h["chart"] for h in history] == [f"iap-run-operator-{PREVIOUS}", f"iap-run-operator-{_version()}"]
    finally:
        old.stop()
        patch = '{"metadata":{"finalizers":null}}'
        kubectl("patch", "-n", namespace, f"iaprunservice/{svc}", "--type=merge", "-p", patch, check=False)
        kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--wait=false", check=False)
        helm("uninstall", name, "--namespace", namespace, check=False)
