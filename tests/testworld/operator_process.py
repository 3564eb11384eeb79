"""The operator as a separate process, as users run it, and the few helpers that start and wait on it.

Shared by the integration tests, the chaos campaign, the bench and ``make demo``, so it lives in the test
world package rather than in ``integration``. The operator is started with ``python -m iaprun_operator``
against the real control plane and the emulator, and is considered up when kopf's liveness endpoint answers
(an event we wait for, bounded).
"""

from __future__ import annotations

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

from testworld.tools import REPO_ROOT

REPO = REPO_ROOT
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
        **{key: ["*"] for key in ("networks", "sqlInstances", "buckets", "nfsServers", "kmsKeys")},
        "binaryAuthorizationPolicies": ["*"],
        "allowBinaryAuthorizationBreakglass": True,
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
    """``python -m iaprun_operator`` as a child process with the test world's environment; its log is a file."""

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
