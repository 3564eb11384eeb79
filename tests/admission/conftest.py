"""Fixtures for admission tests: the IapRunService CRD installed on the real control plane.

The CRD is applied once per test module (and waited for until Established); objects go in the
per-test namespace from ``testworld.fixtures``. Nothing is mocked: the API server evaluates the
schema, the defaults and the CEL rules exactly as it would in a cluster.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
CRD_NAME = "iaprunservices.iaprun.dev"

Apply = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="module")
def iaprun_crd(kubectl: Any) -> str:
    """Apply crds/ and wait until the API server serves the kind; returns the CRD's name."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return CRD_NAME


@pytest.fixture
def apply(iaprun_crd: str, kubectl: Any, namespace: str) -> Apply:
    """Apply one manifest (a dict) into the test's namespace with strict server-side field validation.

    Returns the finished kubectl process whatever its exit code, so tests can assert on rejections.
    Client-side ``kubectl apply`` is used on purpose: a create is a plain POST (so list-map duplicates
    are reported by validation, not by the apply merge), and an update is a merge patch computed from
    the last-applied annotation (so removing a field really removes it).
    """

    def run(manifest: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = kubectl(
            "apply",
            "--validate=strict",
            "-n",
            namespace,
            *extra,
            "-f",
            "-",
            input=json.dumps(manifest),
            check=False,
        )
        return result

    return run
