"""Small helpers for the integration tests to drive the operator with kubectl and the Google clients.

The operator process itself (``OperatorProcess``) and the waits it needs live in ``testworld.operator_process``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

# The operator process and its helpers live in the test world package (shared with the bench and `make demo`);
# re-exported here for the tests that import them from the harness.
from testworld.operator_process import OPERATOR_ACCOUNT as OPERATOR_ACCOUNT
from testworld.operator_process import REPO as REPO
from testworld.operator_process import OperatorProcess as OperatorProcess
from testworld.operator_process import free_port as free_port
from testworld.operator_process import open_rule as open_rule
from testworld.operator_process import wait_for as wait_for

KIND = "iaprunservices.iaprun.dev"


def manifest(name: str, *, image: str = "us-docker.pkg.dev/cloudrun/container/hello", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": name},
        "spec": {
            "region": "asia-northeast1",
            "template": {"containers": [{"image": image}]},
            **spec,
        },
    }
    return body


def kubectl_json(kubectl: Callable[..., subprocess.CompletedProcess[str]], *args: str) -> Any:
    result = kubectl(*args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def apply(kubectl: Callable[..., Any], namespace: str, body: Mapping[str, Any]) -> None:
    result = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    assert result.returncode == 0, result.stderr


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return {}


def create_service(
    emulator_url: str,
    project: str,
    region: str,
    service: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> None:
    """A service deployed out of band (IAP on, the hello image), as ``gcloud run deploy --iap`` or Terraform would
    leave it, with the official run_v2 client; waited for."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    client = run_v2.ServicesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator_url),
    )
    body = run_v2.Service(
        iap_enabled=True,
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        template=run_v2.RevisionTemplate(
            containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")]
        ),
    )
    operation = client.create_service(parent=f"projects/{project}/locations/{region}", service=body, service_id=service)
    operation.result(timeout=30)


def create_marked_service(
    emulator_url: str, project: str, region: str, service: str, readable: str, *, policy: str | None, label: str = ""
) -> None:
    """A service carrying ownership marks for ``readable`` (``<cluster>/<namespace>/<name>``) and, if given, the
    deletion-policy stamp, made out of band with the official client. The marks are computed here, not by the
    operator's helpers, so a bug there cannot hide itself."""
    import hashlib

    annotations = {"iaprun.dev/owner": readable}
    if policy is not None:
        annotations["iaprun.dev/deletion-policy"] = policy
    labels = {"iaprun-owner": label or hashlib.sha256(readable.encode()).hexdigest()[:16], "team": "a"}
    create_service(emulator_url, project, region, service, labels=labels, annotations=annotations)
