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
from typing import Any, Protocol

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

    def __init__(
        self,
        *,
        kubeconfig: str,
        google_endpoint: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        name: str = "",
    ):
        self.kubeconfig = kubeconfig
        self.google_endpoint = google_endpoint
        self.log_path = log_dir / f"operator-{name + '-' if name else ''}{int(time.time() * 1000)}.log"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.liveness_port = 0

    def start(self, *, timeout: float = 60) -> OperatorProcess:
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
        try:
            wait_for(self._alive, timeout=timeout, what=f"operator liveness (log: {self.log_path})")
        except BaseException:
            self.kill()  # never leave a half-started operator running (it would still reconcile, and load the machine)
            raise
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

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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


HA_ENV = {
    # Short Lease timings, so a takeover in a test takes seconds (production: 15 / 10 / 2).
    "IAPRUN_LEASE_DURATION_SECONDS": "3",
    "IAPRUN_LEASE_RENEW_DEADLINE_SECONDS": "2",
    "IAPRUN_LEASE_RETRY_SECONDS": "0.5",
}


def lease_holder(kubeconfig: str, namespace: str, name: str) -> str:
    """Who holds a Lease right now ("" when nobody does or it does not exist)."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    with config.new_client_from_config(config_file=kubeconfig) as api:  # type: ignore[no-untyped-call]
        try:
            lease = client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return ""
            raise
    return str((lease.spec and lease.spec.holder_identity) or "")


class ShardReplicas:
    """Several replicas of one shard (``IAPRUN_POD_NAME`` ``shard<k>-<i>``) electing their active one with a Lease."""

    def __init__(
        self,
        *,
        kubeconfig: str,
        google_endpoint: str,
        log_dir: Path,
        lease_namespace: str,
        replicas: int = 2,
        shard: int = 0,
        shards: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.kubeconfig, self.lease_namespace, self.shard = kubeconfig, lease_namespace, shard
        self.lease = f"iap-run-operator-shard-{shard}"
        common = {
            **HA_ENV,
            "IAPRUN_LEASE_NAMESPACE": lease_namespace,
            "IAPRUN_SHARDS": str(shards),
            "IAPRUN_SHARD": str(shard),
            **(env or {}),
        }
        self.members = {
            f"shard{shard}-{i}": OperatorProcess(
                kubeconfig=kubeconfig,
                google_endpoint=google_endpoint,
                log_dir=log_dir,
                env={**common, "IAPRUN_POD_NAME": f"shard{shard}-{i}"},
                name=f"shard{shard}-{i}",
            )
            for i in range(replicas)
        }

    def start(self) -> ShardReplicas:
        for member in self.members.values():
            member.start()
        self.active()
        return self

    def holder(self) -> str:
        return lease_holder(self.kubeconfig, self.lease_namespace, self.lease)

    def active(self, timeout: float = 60) -> str:
        """The name of the replica holding the Lease, once one of the running replicas does."""

        def running_holder() -> str:
            name = self.holder()
            member = self.members.get(name)
            return name if member is not None and member.running() else ""

        return str(wait_for(running_holder, timeout=timeout, interval=0.05, what=f"an active replica of {self.lease}"))

    def kill_active(self) -> str:
        """SIGKILL the active replica (no release: the standby waits the Lease out); returns its name."""
        name = self.active()
        self.members[name].kill()
        return name

    def restart(self, name: str) -> None:
        self.members[name].start(timeout=180)  # on a busy machine the imports alone can take a minute

    def stop(self) -> None:
        for member in self.members.values():
            member.stop()


class RequestLog(Protocol):
    """The emulator's request log as ``gcpemu.admin.AdminClient`` reads it."""

    def last_seq(self) -> int: ...

    def requests(self, method: str | None = None, *, since: int = 0) -> list[dict[str, Any]]: ...


def first_call_started_after(log: RequestLog, since: int, moment: float, *, timeout: float) -> float:
    """Wall time at which the first Google call that *started* after ``moment`` reached the emulator.

    A request is logged when answered; one still in flight from a killed process may be logged after the kill,
    so its start (answer time less its duration) is what tells it apart."""

    def first() -> float | None:
        starts = [r["time"] - r["duration_ms"] / 1000 for r in log.requests(since=since) if not r.get("tag")]
        return min((t for t in starts if t > moment), default=None)

    return float(wait_for(first, timeout=timeout, interval=0.05, what="a Google call from the new active replica"))


def fail_over(
    replicas: ShardReplicas, log: RequestLog, *, graceful: bool = False, timeout: float = 120
) -> float | None:
    """Stop the active replica (SIGKILL, or SIGTERM when ``graceful``: it then releases its Lease), wait until
    another replica holds the Lease, and return the seconds from the stop to that replica's first Google call
    (None: it made none within ``timeout``, having nothing to do). The stopped one is started again (a standby)."""
    since, name = log.last_seq(), replicas.active()
    stopped_at = time.time()
    replicas.members[name].stop(signal.SIGTERM if graceful else signal.SIGKILL)
    wait_for(lambda: replicas.holder() not in ("", name), timeout=timeout, what="another replica taking the Lease")
    try:
        takeover: float | None = first_call_started_after(log, since, stopped_at, timeout=timeout) - stopped_at
    except TimeoutError:
        takeover = None
    replicas.restart(name)
    return takeover
