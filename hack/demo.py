"""`make demo`: the whole story on the embedded local world, as a person would want to watch it.

Starts the real control plane and the Google emulator, installs the CRD, runs the operator, applies
examples/hello.yaml, waits for Ready, then shows the `kubectl get` row, the conditions, the service URL,
the IAP policy and three requests to the protected URL. Interactive: keeps everything running for
exploring until Ctrl-C; otherwise (CI, a pipe) it cleans up and exits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlparse

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess
from testworld import tools
from testworld.cluster import ControlPlane
from testworld.operator_process import REPO, OperatorProcess

BOLD, DIM, GREEN, RED, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("", "", "", "", "")
)
STARTED = time.monotonic()


def step(text: str) -> None:
    print(f"{DIM}[{time.monotonic() - STARTED:5.1f}s]{RESET} {BOLD}{text}{RESET}", flush=True)


def show(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"    {line}")


@contextmanager
def started(what: str, start: Callable[[], object], stop: Callable[[], object]) -> Iterator[None]:
    step(what)
    start()
    try:
        yield
    finally:
        stop()


def visit(emulator: str, url: str, user: str | None) -> str:
    host = urlparse(url).netloc
    request = urllib.request.Request(f"{emulator}/_run/{host}/", headers={"Accept": "text/html"})
    if user:
        request.add_header("X-Emulator-User", user)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            body = response.read().decode(errors="replace").strip().splitlines()
            return f"{GREEN}{response.status}{RESET} {body[0] if body else ''}"
    except urllib.error.HTTPError as error:
        where = error.headers.get("Location", "")
        detail = f"-> {where[:70]}..." if where else error.read().decode(errors="replace").strip()[:90]
        return f"{RED}{error.code}{RESET} {detail}"


def main() -> int:
    interactive = sys.stdin.isatty() and os.environ.get("DEMO_KEEP", "1") != "0"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    step("Fetching pinned tools and the control-plane binary (cached after the first run)")
    kubectl_bin = str(tools.kubectl_path())
    tools.controlplane_path()
    workdir = Path(tempfile.mkdtemp(prefix="iaprun-demo-"))
    plane = ControlPlane()
    emulator = EmulatorProcess({"groups": {"group:devs@example.com": ["user:bob@example.com"]}})
    with ExitStack() as stack:
        stack.enter_context(
            started(
                "Starting kube-apiserver + etcd + controllers on loopback",
                lambda: plane.start(workdir / "cluster"),
                plane.close,
            )
        )
        stack.enter_context(
            started(
                "Starting the Google Cloud emulator (Cloud Run v2, IAP v1, Service Usage, CRM)",
                emulator.start,
                emulator.stop,
            )
        )
        kubeconfig = str(plane.kubeconfig)
        env = dict(os.environ, KUBECONFIG=kubeconfig)

        def kubectl(*args: str, quiet: bool = False) -> str:
            out = subprocess.run([kubectl_bin, *args], env=env, capture_output=True, text=True, check=True).stdout
            if not quiet:
                show(out)
            return out

        step("Installing the IapRunService CRD")
        kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl("wait", "--for=condition=Established", "crd/iaprunservices.iaprun.dev", quiet=True)
        operator = OperatorProcess(
            kubeconfig=kubeconfig,
            google_endpoint=emulator.base_url,
            log_dir=workdir,
            # One team on a local cluster: the single-tenant policy (everything but public access is allowed).
            env={"IAPRUN_TIMER_TICK_SECONDS": "10", "IAPRUN_TENANCY_POLICY": json.dumps({"singleTenant": True})},
        )
        stack.enter_context(started(f"Starting the operator (log: {operator.log_path})", operator.start, operator.stop))
        step("Applying examples/hello.yaml (hello image, IAP on, one group and one user as accessors)")
        kubectl("apply", "-f", str(REPO / "examples" / "hello.yaml"))
        step("Waiting for Ready (kubectl wait --for=condition=Ready)")
        kubectl("wait", "--for=condition=Ready", "iaprunservice/hello", "--timeout=120s")
        step("kubectl get irs -o wide")
        kubectl("get", "irs", "-o", "wide")
        obj = json.loads(kubectl("get", "irs", "hello", "-o", "json", quiet=True))
        step("Conditions")
        for c in obj["status"]["conditions"]:
            show(f"{c['type']:<16} {c['status']:<6} {c['reason']:<14} {c['message']}")
        url = obj["status"]["url"]
        step(f"Service URL: {url}")
        admin = AdminClient(emulator.base_url)
        key = f"{obj['status']['projectNumber']}/{obj['status']['region']}/hello"
        state = admin.state()
        step(f"IAP policy on {obj['status']['iap']['resource']}")
        show(json.dumps(state["iap_policies"].get(key, {}), indent=2))
        step("Cloud Run service policy (the IAP service agent may invoke it; nobody else)")
        show(json.dumps(state["run_policies"].get(key, {}), indent=2))
        step("Requests to the protected URL, as IAP answers them")
        for label, user in (
            ("anonymous", None),
            ("user:mallory@example.com (no access)", "user:mallory@example.com"),
            ("user:alice@example.com (accessor)", "user:alice@example.com"),
            ("user:bob@example.com (in group:devs)", "user:bob@example.com"),
        ):
            show(f"{label:<38} {visit(emulator.base_url, url, user)}")
        print()
        if interactive:
            print(f"Explore: export KUBECONFIG={kubeconfig}")
            print(f"         kubectl describe irs hello   |   emulator state: {emulator.base_url}/_emulator/state")
            print("Everything keeps running; press Ctrl-C to stop and clean up.")
            try:
                signal.pause()
            except KeyboardInterrupt:
                print()
        else:
            print("(Not a terminal: cleaning up now. Run `make demo` in a terminal to keep the world running,")
            print(" with a KUBECONFIG line to explore it.)")
        step("Cleaning up")
        stack.callback(shutil.rmtree, workdir, True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
