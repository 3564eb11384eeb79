"""Fixtures for the chart and image tests: rendering with the pinned helm, installing into the real control plane.

Rendering needs no cluster (``render`` runs ``helm template`` with the pinned helm 4). Installing uses the
``helm``/``kubectl`` fixtures bound to the session's control plane. The CRD is cluster-scoped and shared by the
whole session (other suites apply ``crds/`` with kubectl), so before each install an existing CRD is handed to
the new release with Helm's documented adoption metadata; nothing deletes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.harness import REPO
from testworld import tools
from testworld.fixtures import Runner

CHART = REPO / "charts" / "iap-run-operator"
VALUES_MAX = Path(__file__).with_name("values-max.yaml")
CRD_NAME = "iaprunservices.iaprun.dev"

Manifest = dict[str, Any]


class HelmFailedError(AssertionError):
    """helm exited non-zero; ``stderr`` says why."""

    def __init__(self, args: list[str], proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        self.stderr = proc.stderr


@pytest.fixture(scope="session")
def helm_offline(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The pinned helm, with no cluster and a private home: for lint and template."""
    binary = tools.helm_path()
    home = tmp_path_factory.mktemp("helm-offline-home")
    env = {
        **os.environ,
        **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")},
        "KUBECONFIG": str(home / "no-cluster"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0:
            raise HelmFailedError(list(args), proc)
        return proc

    return run


@pytest.fixture(scope="session")
def render(helm_offline: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., list[Manifest]]:
    """``render("--set", "a=b", values=[file])`` -> the manifests ``helm template`` produces (namespace ``ops``)."""

    def run(*args: str, values: tuple[Path, ...] = ()) -> list[Manifest]:
        files = [arg for path in values for arg in ("-f", str(path))]
        out = helm_offline("template", "rel", str(CHART), "--namespace", "ops", *files, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    return run


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]


def only(manifests: list[Manifest], kind: str) -> Manifest:
    found = find(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every combination a list of RBAC rules grants."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def adopt_crd(kubectl: Runner, release: str, namespace: str) -> None:
    """Hand an existing CRD to ``release`` (Helm adopts objects that carry its ownership metadata)."""
    if kubectl("get", "crd", CRD_NAME, check=False).returncode != 0:
        return
    kubectl(
        "annotate",
        "--overwrite",
        "crd",
        CRD_NAME,
        f"meta.helm.sh/release-name={release}",
        f"meta.helm.sh/release-namespace={namespace}",
    )
    kubectl("label", "--overwrite", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm")


class Release:
    """One helm release of the chart in a test's namespace; uninstalled at the end if still there."""

    def __init__(self, helm: Runner, kubectl: Runner, namespace: str) -> None:
        self.helm, self.kubectl, self.namespace = helm, kubectl, namespace
        self.name = f"irs-{uuid.uuid4().hex[:6]}"
        self.installed = False

    @property
    def fullname(self) -> str:
        return f"{self.name}-iap-run-operator"

    @property
    def confined(self) -> list[str]:
        """Values that confine the release's admission policy to the test's namespace: the policy is
        cluster-scoped, and the chart's deny-by-default one would refuse other tests' objects meanwhile."""
        selector = {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}}
        return ["--set-json", f"admissionPolicy.namespaceSelector={json.dumps(selector)}"]

    def install(self, *args: str) -> subprocess.CompletedProcess[str]:
        adopt_crd(self.kubectl, self.name, self.namespace)
        proc = self.helm("install", self.name, str(CHART), "--namespace", self.namespace, *self.confined, *args)
        self.installed = True
        return proc

    def upgrade(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.helm("upgrade", self.name, str(CHART), "--namespace", self.namespace, *args)

    def uninstall(self) -> subprocess.CompletedProcess[str]:
        proc = self.helm("uninstall", self.name, "--namespace", self.namespace)
        self.installed = False
        return proc


@pytest.fixture
def release(helm: Runner, kubectl: Runner, namespace: str) -> Iterator[Release]:
    rel = Release(helm, kubectl, namespace)
    yield rel
    if rel.installed:
        helm("uninstall", rel.name, "--namespace", namespace, check=False)


@pytest.fixture
def forget_objects(kubectl: Runner) -> Iterator[list[tuple[str, str]]]:
    """IapRunService objects (namespace, name) to remove after the test even if no operator runs any more.

    Finalizers are dropped first, so the objects never outlive their test namespace waiting for an operator
    (a later suite's cluster-wide operator would otherwise inherit them). Their emulated services stay.
    """
    objects: list[tuple[str, str]] = []
    yield objects
    for namespace, name in objects:
        patch = '{"metadata":{"finalizers":null}}'
        kubectl("patch", "-n", namespace, f"iaprunservice/{name}", "--type=merge", "-p", patch, check=False)
        kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--wait=false", check=False)
