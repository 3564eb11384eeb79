"""The object gauges from a real operator: what `/metrics` says about objects as they become Ready and go away.

Proves against the real control plane and the Google emulator: an object reconciled to Ready is counted in
``iaprun_objects{condition="Ready",reason="UpToDate"}``; an object the operator refuses (a tenancy denial)
counts as ``Stalled`` with its reason; deleting them takes them out of the counts; no series names an object;
and ``iaprun_build_info`` carries the version. The chart's alerts and dashboard read exactly these series.
"""

from __future__ import annotations

import re
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from iaprun_operator import __version__
from integration.conftest import running_operator
from integration.harness import OperatorProcess, apply, free_port, manifest, wait_for
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def watched(kubectl: Runner) -> Iterator[str]:
    """The one namespace this module's operator watches, so the counts are this module's objects alone (other
    modules leave objects behind in namespaces a cluster-wide operator would count)."""
    name = f"metrics-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "iaprun.test/owned=true")
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane,
    emulator_url: str,
    crd: None,
    watched: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    with running_operator(
        control_plane,
        emulator_url,
        tmp_path_factory,
        IAPRUN_METRICS_PORT=str(METRICS_PORT),
        IAPRUN_WATCH_NAMESPACE=watched,
    ) as proc:
        yield proc


def objects(condition: str, reason: str) -> float:
    """The current value of iaprun_objects{condition, reason} (0 when the series is absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = rf'^iaprun_objects\{{condition="{condition}",reason="{reason}"\}} (\S+)$'
    match = re.search(pattern, text, flags=re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def scrape() -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10) as response:
        return response.read().decode()


def test_objects_are_counted_by_condition_and_leave_when_deleted(
    operator: OperatorProcess, kubectl: Runner, watched: str, svc: str
) -> None:
    """Ready and Stalled objects are counted under their condition and reason, and no longer once deleted."""
    denied = f"{svc}-public"
    apply(kubectl, watched, manifest(svc))
    kubectl("wait", "-n", watched, f"iaprunservice/{svc}", "--for=condition=Ready", "--timeout=90s")
    wait_for(lambda: objects("Ready", "UpToDate") == 1, timeout=30, what="the Ready count")
    apply(kubectl, watched, manifest(denied, invokerIamDisabled=True))  # the tenancy rule refuses public access
    kubectl("wait", "-n", watched, f"iaprunservice/{denied}", "--for=condition=Stalled", "--timeout=60s")
    wait_for(lambda: objects("Stalled", "PolicyDenied") == 1, timeout=30, what="the Stalled count")
    text = scrape()
    assert svc not in text
    assert 'iaprun_build_info{python="' in text
    assert f'version="{__version__}"}} 1.0' in text
    kubectl("delete", "-n", watched, f"iaprunservice/{svc}", f"iaprunservice/{denied}", "--timeout=90s")
    wait_for(lambda: objects("Ready", "UpToDate") == 0, timeout=30, what="the Ready count to drop")
    assert objects("Stalled", "PolicyDenied") == 0
