"""Small helpers for the integration tests to drive the operator with kubectl and the Google clients.

The operator process itself (``OperatorProcess``) and the waits it needs live in ``testworld.operator_process``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from gcpemu.admin import AdminClient

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


def get(kubectl: Callable[..., Any], namespace: str, name: str) -> dict[str, Any]:
    """The IapRunService ``name`` as the API server has it now."""
    obj: dict[str, Any] = kubectl_json(kubectl, "get", "-n", namespace, f"iaprunservice/{name}")
    return obj


def wait_ready(kubectl: Callable[..., Any], namespace: str, name: str, timeout: int = 60) -> dict[str, Any]:
    """Wait (``kubectl wait``) for the object's Ready condition; the object then."""
    kubectl("wait", "-n", namespace, f"iaprunservice/{name}", "--for=condition=Ready", f"--timeout={timeout}s")
    return get(kubectl, namespace, name)


def converged(kubectl: Callable[..., Any], namespace: str, name: str, generation: int) -> dict[str, Any]:
    """Wait until the operator has observed ``generation`` of the object and it is Ready; the object then."""
    wait_for(
        lambda: get(kubectl, namespace, name)["status"].get("observedGeneration") == generation,
        timeout=30,
        what=f"observedGeneration {generation}",
    )
    return wait_ready(kubectl, namespace, name)


def manage_fully(kubectl: Callable[..., Any], namespace: str, name: str) -> dict[str, Any]:
    """Switch an ObserveOnly object to ``managementPolicy: Full`` and wait for its Synced condition to go and
    for Ready; the object then."""
    patch = '{"spec":{"managementPolicy":"Full"}}'
    kubectl("patch", "-n", namespace, f"iaprunservice/{name}", "--type=merge", "-p", patch)
    wait_for(lambda: condition(get(kubectl, namespace, name), "Synced") == {}, timeout=30, what="Synced gone")
    return wait_ready(kubectl, namespace, name)


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


WRITES = (
    "run.services.create",
    "run.services.patch",
    "run.services.delete",
    "run.services.setIamPolicy",
    "iap.setIamPolicy",
)
"""The writes of a service and its two policies, as the emulator's request log names them."""


def calls(emu: AdminClient, svc: str, *, since: int = 0, methods: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Logged calls that concern service ``svc`` exactly (by path, or serviceId on create)."""
    pattern = re.compile(rf"/services/{re.escape(svc)}(?:$|[:/?])")
    found = [
        r
        for r in emu.requests(since=since)
        if pattern.search(r["path"]) or (r.get("query") or {}).get("serviceId") == svc
    ]
    return [r for r in found if not methods or r["method"] in methods]


PASS_MARK = ("run.services.getIamPolicy",)
"""What every pass reads exactly once: the service's IAM policy (the service itself may come from the region's
shared ``services.list`` when it only confirms the status, so ``services.get`` does not count passes)."""


def passes(emu: AdminClient, svc: str, since: int, count: int, timeout: float = 60) -> None:
    """Wait for ``count`` more passes over ``svc`` after ``since``."""
    wait_for(
        lambda: len(calls(emu, svc, since=since, methods=PASS_MARK)) >= count, timeout=timeout, what=f"{count} passes"
    )


def drift_pass(emu: AdminClient, svc: str, since: int) -> None:
    """Wait for the operator's next pass over the service after ``since``."""
    passes(emu, svc, since, 1, timeout=30)
