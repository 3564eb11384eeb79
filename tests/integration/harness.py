"""The operator as a separate process, as users run it, plus small helpers to drive it with kubectl.

The operator is started with ``python -m iaprun_operator`` against the real control plane and the
emulator, and is considered up when kopf's liveness endpoint answers (an event we wait for, bounded).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KIND = "iaprunservices.iaprun.dev"
OPERATOR_ACCOUNT = "iaprun-operator@platform-project.iam.gserviceaccount.com"
"""The operator's own Google account in the test world (IAPRUN_OPERATOR_SERVICE_ACCOUNT of every test operator)."""


def open_rule(name: str, match_labels: Mapping[str, str], **overrides: Any) -> dict[str, Any]:
    """A tenancy rule (policy v2) selecting namespaces with ``match_labels`` and allowing everything the test
    world uses (any project, region, name, image, runtime or default account, secret project, accessor,
    adoption, IAP off, Report) except public access; ``overrides`` narrow or widen it."""
    return {
        "name": name,
        "namespaceSelector": {"matchLabels": dict(match_labels)},
        **{key: ["*"] for key in ("projects", "regions", "serviceNames", "serviceAccounts", "secretProjects")},
        "images": ["*"],
        "adoptServiceNames": ["*"],
        "allowDefaultServiceAccount": True,
        "accessorMemberKinds": ["user", "group", "serviceAccount", "domain", "principal", "principalSet"],
        "accessorDomains": ["*"],
        "allowIapDisabled": True,
        "allowPublicInvokerBindings": True,
        "allowPublicAccess": False,
        "envValues": "Any",
        **overrides,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value (bounded); the value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class OperatorProcess:
    def __init__(self, *, kubeconfig: str, google_endpoint: str, log_dir: Path, env: Mapping[str, str] | None = None):
        self.kubeconfig = kubeconfig
        self.google_endpoint = google_endpoint
        self.log_path = log_dir / f"operator-{int(time.time() * 1000)}.log"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.liveness_port = 0

    def start(self) -> OperatorProcess:
        self.liveness_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "IAPRUN_GOOGLE_API_ENDPOINT": self.google_endpoint,
            "IAPRUN_DEFAULT_PROJECT": "demo-project",
            "IAPRUN_METRICS_PORT": "0",
            "IAPRUN_TIMER_TICK_SECONDS": "1",
            # Tests ask for drift intervals of a few seconds (annotation iaprun.dev/drift-interval).
            "IAPRUN_MIN_DRIFT_INTERVAL_SECONDS": "1",
            "IAPRUN_CLUSTER_ID": "test-cluster",
            "IAPRUN_OPERATOR_SERVICE_ACCOUNT": OPERATOR_ACCOUNT,
            "PYTHONPATH": str(REPO / "operator"),
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iaprun_operator",
                "--log-format=json",
                "--liveness",
                f"http://127.0.0.1:{self.liveness_port}/healthz",
                # Debug logs (kopf's too) when a test run is being investigated.
                *(["--verbose"] if os.environ.get("IAPRUN_TEST_OPERATOR_VERBOSE") else []),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        wait_for(self._alive, timeout=60, what=f"operator liveness (log: {self.log_path})")
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self.proc.returncode}; log:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


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
