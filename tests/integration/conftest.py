"""Fixtures for end-to-end tests: the real control plane, the emulator and the operator as processes.

Nothing is mocked: the operator talks to kube-apiserver through kopf and to the emulator through the
official Google clients. One operator and one emulator serve the whole session; each test works in its
own namespace with its own service names, and filters the emulator's request log by path.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess
from integration.harness import REPO, OperatorProcess, open_rule
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    emulator = EmulatorProcess()
    url = emulator.start()
    try:
        yield url
    finally:
        emulator.stop()


@pytest.fixture
def emu(emulator_url: str) -> Iterator[AdminClient]:
    """The emulator's admin client; faults and permission rules a test adds are cleared after it."""
    admin = AdminClient(emulator_url)
    yield admin
    admin.clear_faults()
    admin.disable_permissions()


@pytest.fixture(scope="session")
def crd(kubectl: Runner) -> None:
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/iaprunservices.iaprun.dev")


# Test namespaces carry iaprun.test/owned=true (testworld's namespace fixture) and may use anything but public
# access; one also labelled iaprun.test/public-access=true may use that too. A namespace labelled as tenant "a"
# gets a restricted rule, to test each delegated power (test_tenancy.py); tenant "b" is stricter still.
TENANT_A = {
    "name": "tenant-a",
    "namespaceSelector": {"matchLabels": {"iaprun.test/tenant": "a"}},
    "projects": ["test-project"],
    "regions": ["asia-northeast1"],
    "serviceNames": ["svc-*"],
    "serviceAccounts": ["*@test-project.iam.gserviceaccount.com"],
    "allowDefaultServiceAccount": True,
    "secretProjects": ["test-project"],
    "images": ["us-docker.pkg.dev/cloudrun/container/*"],
    "adoptServiceNames": ["svc-adoptable-*"],
    "accessorDomains": ["example.com"],
}
TENANCY = {
    "rules": [
        open_rule("tests", {"iaprun.test/owned": "true"}),
        open_rule("tests-public", {"iaprun.test/public-access": "true"}, allowPublicAccess=True),
        TENANT_A,
        {
            **TENANT_A,
            "name": "tenant-b",
            "namespaceSelector": {"matchLabels": {"iaprun.test/tenant": "b"}},
            "allowDefaultServiceAccount": False,
            "envValues": "SecretsOnly",
        },
    ]
}


def _tenant(kubectl: Runner, tenant: str) -> Iterator[str]:
    name = f"tenant-{tenant}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, f"iaprun.test/tenant={tenant}")
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def tenant_namespace(kubectl: Runner) -> Iterator[str]:
    """A namespace that only the restricted tenancy rule "tenant-a" selects."""
    yield from _tenant(kubectl, "a")


@pytest.fixture
def strict_namespace(kubectl: Runner) -> Iterator[str]:
    """A namespace that only "tenant-b" selects: tenant-a without the default compute account or literal env."""
    yield from _tenant(kubectl, "b")


@contextlib.contextmanager
def running_operator(
    control_plane: ControlPlane, emulator_url: str, tmp_path_factory: pytest.TempPathFactory, **env: str
) -> Iterator[OperatorProcess]:
    """An operator process as users run it (``python -m iaprun_operator``), with the tenancy policy above
    plus ``env``; stopped on exit."""
    proc = OperatorProcess(
        kubeconfig=str(control_plane.kubeconfig),
        google_endpoint=emulator_url,
        log_dir=tmp_path_factory.mktemp("operator"),
        env={"IAPRUN_TENANCY_POLICY": json.dumps(TENANCY), **env},
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def module_operator(**env: str) -> Callable[..., Iterator[OperatorProcess]]:
    """An ``operator`` fixture for one module that needs other settings: ``operator = module_operator(X="1")``
    runs the module's one operator process with ``env`` on top of the defaults (``running_operator``)."""

    @pytest.fixture(scope="module", name="operator")
    def operator_with_env(
        control_plane: ControlPlane, emulator_url: str, crd: None, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[OperatorProcess]:
        with running_operator(control_plane, emulator_url, tmp_path_factory, **env) as proc:
            yield proc

    return operator_with_env


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, emulator_url: str, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator process per test module. Module scope keeps other modules (the chart's RBAC test runs
    its own operator) free of a second operator acting on their objects; a module needing other settings
    overrides this fixture with ``module_operator(...)`` (or its own ``running_operator``)."""
    with running_operator(control_plane, emulator_url, tmp_path_factory) as proc:
        yield proc


@pytest.fixture
def svc() -> str:
    """A Cloud Run service name unique in the session (the emulator's state is shared)."""
    return f"svc-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _operator_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "operator" in request.fixturenames:
        proc: OperatorProcess = request.getfixturevalue("operator")
        print(f"--- operator log tail ({proc.log_path}) ---\n{proc.log_tail(80)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + report.when, report)
