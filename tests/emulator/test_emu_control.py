"""The control plane: subprocess launcher, request log and counts, latency, hanging requests, LRO timing,
reset and state dump."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess, raw_request

SVCS = "/v2/projects/demo-project/locations/us-central1/services"
BODY = {"template": {"containers": [{"image": "gcr.io/demo/app"}]}}


def test_subprocess_emulator_prints_url(gcp_emulator_process: EmulatorProcess, gcp_process_admin: AdminClient) -> None:
    """`python -m gcpemu --port 0` prints its base URL on stdout; the process serves the APIs."""
    base = gcp_emulator_process.base_url
    assert base.startswith("http://127.0.0.1:")
    assert gcp_process_admin.health()["ok"] is True
    st, _, body = raw_request("GET", f"{base}/v3/projects/demo-project")
    assert st == 200
    assert body["name"] == "projects/123456789012"


def test_process_with_config_file() -> None:
    """A config passed to EmulatorProcess (written as a JSON file for --config) is honoured."""
    with EmulatorProcess({"projects": {"acme-prod": "999999999999"}, "operation_delay": 0}) as proc:
        st, _, body = raw_request("GET", f"{proc.base_url}/v1/projects/acme-prod")
        assert st == 200
        assert body["projectNumber"] == "999999999999"


def test_operation_completes_after_delay(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A create returns a pending Operation and a reconciling service; operations.get shows it done after the
    configured delay; :wait blocks until done."""
    gcp_admin.set_operation_delay(0.3)
    st, _, op = raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=lro", BODY)
    assert st == 200
    assert "done" not in op
    _, _, svc = raw_request("GET", f"{gcp_base_url}{SVCS}/lro")
    assert svc["reconciling"] is True
    assert svc["terminalCondition"]["state"] == "CONDITION_RECONCILING"
    op_url = f"{gcp_base_url}/v2/{op['name']}"
    _, _, waited = raw_request("POST", op_url + ":wait", {"timeout": "5s"})
    assert waited["done"] is True
    assert waited["response"]["observedGeneration"] == "1"
    _, _, got = raw_request("GET", op_url)
    assert got == waited
    _, _, ops = raw_request("GET", f"{gcp_base_url}/v2/projects/demo-project/locations/us-central1/operations")
    assert ops["operations"][0]["name"] == op["name"]


def test_latency_and_hang(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Per-method latency delays answers; a hang longer than the client timeout looks like a timeout."""
    gcp_admin.set_latency("cloudresourcemanager.*", 0.2)
    t0 = time.monotonic()
    assert raw_request("GET", f"{gcp_base_url}/v3/projects/demo-project")[0] == 200
    assert time.monotonic() - t0 >= 0.2
    gcp_admin.set_latency("cloudresourcemanager.*", 0)
    gcp_admin.hang("cloudresourcemanager.projects.get", 2.0, count=1)
    t0 = time.monotonic()
    try:
        raw_request("GET", f"{gcp_base_url}/v3/projects/demo-project", timeout=0.3)
        raise AssertionError("expected a timeout")
    except TimeoutError:
        pass
    assert time.monotonic() - t0 < 2


def test_a_hung_create_lands_after_its_client_gave_up(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """As at Google, a request the client stopped waiting for is still carried out: the body is read before
    the hang, so a timed-out create creates the service once the hang is over."""
    gcp_admin.set_operation_delay(0)
    gcp_admin.hang("run.services.create", 0.5, count=1)
    with contextlib.suppress(TimeoutError):
        raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=late", BODY, timeout=0.1)
        raise AssertionError("expected a timeout")
    assert gcp_admin.service("demo-project", "us-central1", "late") is None
    deadline = time.monotonic() + 5
    while gcp_admin.service("demo-project", "us-central1", "late") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gcp_admin.service("demo-project", "us-central1", "late") is not None


def test_request_log_and_out_of_band_tag(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """The log records method id, path, query (incl. updateMask), status and caller; requests tagged
    out-of-band are logged but not counted."""
    gcp_admin.set_operation_delay(0)
    raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=log", BODY, headers={"X-Emulator-Caller": "user:op@x.com"})
    raw_request("PATCH", f"{gcp_base_url}{SVCS}/log?updateMask=iapEnabled", {"iapEnabled": True})
    raw_request("GET", f"{gcp_base_url}{SVCS}/log", headers={"X-Emulator-Tag": "out-of-band"})
    counts = gcp_admin.counts()
    assert counts == {"run.services.create": 1, "run.services.patch": 1}
    patch = gcp_admin.requests("run.services.patch")[0]
    assert patch["query"]["updateMask"] == "iapEnabled"
    assert patch["status"] == 200
    assert patch["body"] == {"iapEnabled": True}
    assert gcp_admin.requests("run.services.create")[0]["caller"] == "user:op@x.com"
    assert len(gcp_admin.requests(tag="out-of-band")) == 1


def test_reset_and_state(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """state() dumps services and policies; reset() empties the world and restores config."""
    gcp_admin.set_operation_delay(0)
    raw_request("POST", f"{gcp_base_url}{SVCS}?serviceId=st", BODY)
    state: dict[str, Any] = gcp_admin.state()
    assert "123456789012/us-central1/st" in state["services"]
    gcp_admin.reset()
    assert gcp_admin.state()["services"] == {}
    assert gcp_admin.config()["operation_delay"] == 0.2
    assert gcp_admin.counts() == {}


async def test_programmatic_start_in_running_loop() -> None:
    """`await Emulator(config).start()` serves on the caller's event loop and returns the base URL."""
    import aiohttp

    from gcpemu.config import EmulatorConfig
    from gcpemu.server import Emulator

    emu = Emulator(EmulatorConfig(projects={"p-one": "101010101010"}))
    base = await emu.start()
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{base}/v3/projects/p-one") as r:
            assert r.status == 200
            assert (await r.json())["name"] == "projects/101010101010"
    finally:
        await emu.stop()


def test_reset_isolates_hanging_requests(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A request still hanging when the emulator is reset neither lands in the new request log nor touches
    the new world (it is answered CANCELLED)."""
    gcp_admin.hang("run.services.create", 0.5, count=1)
    url = f"{gcp_base_url}{SVCS}?serviceId=ghost"
    with contextlib.suppress(TimeoutError):
        raw_request("POST", url, BODY, timeout=0.1)
    gcp_admin.reset()
    deadline = time.monotonic() + 5
    while gcp_admin.stats()["inflight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gcp_admin.stats()["inflight"] == 0
    assert gcp_admin.counts() == {}
    assert gcp_admin.state()["services"] == {}


def test_a_request_cut_before_its_body_arrived_is_no_call(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """A SIGKILLed operator's last request, cut mid-body, is not logged (Google records nothing it never received),
    so the failover measure cannot take it for the new active replica's first call; no service is created."""
    host, port = gcp_base_url.removeprefix("http://").split(":")
    since = gcp_admin.last_seq()
    head = (
        f"POST {SVCS}?serviceId=cut HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        "Content-Length: 400\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(head.encode() + b'{"template": {')  # then the caller dies: the connection closes
    st, _, _ = raw_request("GET", f"{gcp_base_url}{SVCS}/cut")  # answered after the cut request was handled
    assert st == 404
    assert [r["path"] for r in gcp_admin.requests(since=since)] == [f"{SVCS}/cut"]
