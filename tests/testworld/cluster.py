"""Start, stop and restart the local control plane (tests/controlplane) from Python.

The tests, the demo and ``make cluster`` all use this one class, so they all get the same Kubernetes: a
real kube-apiserver with etcd and the garbage-collector/namespace/serviceaccount controllers, on
127.0.0.1, RBAC on. Readiness is the single JSON line the binary prints once ``/readyz`` is ok; the
process log goes to ``<data-dir>/controlplane.log``.

``python -m testworld.cluster`` runs one until Ctrl-C and prints the ``export KUBECONFIG=...`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import yaml

from testworld import tools

DEFAULT_START_TIMEOUT = 180.0
DEFAULT_STOP_TIMEOUT = 60.0


class ControlPlaneError(RuntimeError):
    """The control plane did not start, or stopped unexpectedly."""


@dataclass(frozen=True)
class ReadyInfo:
    """What the binary reports on its readiness line."""

    kubeconfig: Path
    url: str
    data_dir: Path
    ca_file: Path
    pid: int
    version: str
    controller_manager: bool
    service_account_issuer: str

    @classmethod
    def from_line(cls, line: str) -> ReadyInfo:
        raw = json.loads(line)
        return cls(
            kubeconfig=Path(raw["kubeconfig"]),
            url=raw["url"],
            data_dir=Path(raw["data_dir"]),
            ca_file=Path(raw["ca_file"]),
            pid=int(raw["pid"]),
            version=raw["version"],
            controller_manager=bool(raw["controller_manager"]),
            service_account_issuer=raw["service_account_issuer"],
        )


class ControlPlane:
    """One control-plane process: start, stop, restart on the same etcd data.

    Without a ``data_dir`` a temporary one is made; it survives ``stop()`` (so ``restart()`` finds the
    same objects) and is removed by ``close()``.
    """

    def __init__(self, binary: Path | None = None, *, port: int = 0, controller_manager: bool = True) -> None:
        self._binary = binary
        self._port = port
        self._controller_manager = controller_manager
        self._proc: subprocess.Popen[bytes] | None = None
        self._info: ReadyInfo | None = None
        self._data_dir: Path | None = None
        self._owns_data_dir = False
        self._log: IO[bytes] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, data_dir: Path | str | None = None, timeout: float = DEFAULT_START_TIMEOUT) -> ReadyInfo:
        """Start the process and return once it reports ready (or raise with its log tail)."""
        if self.running:
            raise ControlPlaneError("already running")
        if data_dir is not None:
            self._data_dir = Path(data_dir).resolve()
        elif self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="iaprun-controlplane-"))
            self._owns_data_dir = True
        self._data_dir.mkdir(parents=True, exist_ok=True)
        binary = self._binary or tools.controlplane_path()
        cmd = [
            str(binary),
            f"--data-dir={self._data_dir}",
            f"--port={self._port}",
            f"--controller-manager={str(self._controller_manager).lower()}",
            "--exit-on-stdin-close",
            f"--ready-timeout={int(timeout)}s",
        ]
        self._log = (self._data_dir / "controlplane.log").open("ab")
        self._log.write(f"\n===== start {time.strftime('%Y-%m-%dT%H:%M:%S')} {cmd}\n".encode())
        self._log.flush()
        # stdin stays open: when this Python process dies, EOF on it stops the control plane too.
        # A session of its own keeps a terminal's Ctrl-C for us; we stop the child with SIGTERM.
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        try:
            line = self._read_ready_line(timeout)
            self._info = ReadyInfo.from_line(line)
        except BaseException:
            self._kill()
            raise
        return self._info

    def _read_ready_line(self, timeout: float) -> str:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stdout = self._proc.stdout
        deadline = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ControlPlaneError(f"not ready after {timeout:.0f}s\n{self.log_tail()}")
                if not sel.select(remaining):
                    continue
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    code = self._proc.wait()
                    raise ControlPlaneError(f"exited with {code} before ready\n{self.log_tail()}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM the process we started and wait for it; SIGKILL only if it hangs."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self._release()

    def kill(self) -> None:
        """SIGKILL the process (a crash, for reliability tests); the data directory is kept."""
        self._kill()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._release()

    def _release(self) -> None:
        if self._proc is not None:
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._proc = None

    def restart(self, timeout: float = DEFAULT_START_TIMEOUT) -> ReadyInfo:
        """Stop and start again on the same data directory and port: same objects, same PKI, same URL,
        so kubeconfigs (and clients such as a running operator) keep working across the restart."""
        port = urlsplit(self.info.url).port
        self.stop()
        if self._port == 0 and port is not None:
            self._port = port
        return self.start(self._data_dir, timeout=timeout)

    def close(self) -> None:
        """Stop, and remove the data directory if it was a temporary one of ours."""
        self.stop()
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
            self._owns_data_dir = False

    def __enter__(self) -> ControlPlane:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- state -------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds for the process to exit; its exit code, or None if running."""
        if self._proc is None:
            raise ControlPlaneError("not running")
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def info(self) -> ReadyInfo:
        if self._info is None:
            raise ControlPlaneError("not started")
        return self._info

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (client certificate in group system:masters)."""
        return self.info.kubeconfig

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise ControlPlaneError("not started")
        return self._data_dir

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ControlPlaneError("not running")
        return self._proc.pid

    def log_tail(self, lines: int = 40) -> str:
        if self._data_dir is None:
            return ""
        path = self._data_dir / "controlplane.log"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- clients -----------------------------------------------------------------------------

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient for the admin identity."""
        from kubernetes import config

        # kubernetes ships py.typed but leaves this unannotated
        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def sa_kubeconfig(
        self,
        namespace: str,
        name: str,
        *,
        create: bool = True,
        expiration_seconds: int = 3600,
        path: Path | None = None,
    ) -> Path:
        """Write a kubeconfig that authenticates as ServiceAccount namespace/name via TokenRequest.

        The ServiceAccount is created first if missing (``create=True``). What it may do is up to the
        Roles bound to it: this identity has no other rights.
        """
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            if create:
                try:
                    core.create_namespaced_service_account(
                        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
                    )
                except ApiException as e:
                    if e.status != 409:
                        raise
            request = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(
                    audiences=[self.info.service_account_issuer], expiration_seconds=expiration_seconds
                )
            )
            status = core.create_namespaced_service_account_token(name, namespace, request).status
            if status is None or not status.token:
                raise ControlPlaneError(f"TokenRequest for {namespace}/{name} returned no token")
            token = status.token
        admin = yaml.safe_load(self.kubeconfig.read_text())
        cluster = admin["clusters"][0]
        user = f"system:serviceaccount:{namespace}:{name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user, "namespace": namespace}}],
            "current-context": user,
        }
        if path is None:
            path = self.data_dir / "kubeconfigs" / f"sa-{namespace}-{name}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testworld.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="keep etcd data here (default: a temporary directory)")
    parser.add_argument("--port", type=int, default=0, help="apiserver port on 127.0.0.1 (0 = free port)")
    parser.add_argument("--no-controller-manager", action="store_true", help="run the apiserver alone")
    args = parser.parse_args(argv)

    cp = ControlPlane(port=args.port, controller_manager=not args.no_controller_manager)
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.monotonic()
    try:
        info = cp.start(args.data_dir)
        print(f"# control plane {info.version} ready at {info.url} in {time.monotonic() - started:.1f}s")
        print(f"# data: {cp.data_dir}  log: {cp.data_dir / 'controlplane.log'}")
        print(f"export KUBECONFIG={info.kubeconfig}", flush=True)
        print("# Ctrl-C stops it", flush=True)
        while not stop_requested and cp.wait(0.5) is None:
            pass
        if not stop_requested:
            print(f"control plane exited\n{cp.log_tail()}", file=sys.stderr)
            return 1
    except ControlPlaneError as e:
        print(f"testworld.cluster: {e}", file=sys.stderr)
        return 1
    finally:
        cp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
