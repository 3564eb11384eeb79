"""Ways to run the emulator for tests: in a background thread of the test process, or as a subprocess.

Both wait for the server to be listening without sleeping: the thread signals an Event once bound; the
subprocess prints its base URL as the first stdout line, which is read as soon as it appears.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from gcpemu.config import EmulatorConfig
from gcpemu.server import Emulator


class EmulatorThread:
    """Runs an ``Emulator`` on its own event loop in a daemon thread. ``start()`` returns the base URL."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.emulator = Emulator(config)
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> str:
        self._thread = threading.Thread(target=self._run, name="gcpemu", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("emulator thread did not start")
        if self._error is not None:
            raise RuntimeError("emulator failed to start") from self._error
        return self.base_url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self.base_url = loop.run_until_complete(self.emulator.start())
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self.emulator.stop())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorProcess:
    """Runs ``python -m gcpemu`` as a child process on a free loopback port; ``start()`` returns its URL."""

    def __init__(self, config: EmulatorConfig | dict[str, Any] | None = None, python: str | None = None) -> None:
        if isinstance(config, EmulatorConfig):
            config = config.to_dict()
        self.config = dict(config or {})
        self.python = python or sys.executable
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self._cfg_file: str | None = None

    def start(self, timeout: float = 60.0) -> str:
        fd, self._cfg_file = tempfile.mkstemp(prefix="gcpemu-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self.config, f)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # gcpemu is installed in the interpreter's environment
        self.proc = subprocess.Popen(
            [self.python, "-m", "gcpemu", "--port", "0", "--config", self._cfg_file],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                self.stop()
                raise TimeoutError("emulator process printed no URL")
        finally:
            sel.close()
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"emulator process failed to start (printed {line!r})")
        self.base_url = line
        return line

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if self._cfg_file:
            Path(self._cfg_file).unlink(missing_ok=True)
            self._cfg_file = None

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def raw_request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], Any]:
    """One plain HTTP request (stdlib, no redirects followed): (status, headers, JSON-or-text body)."""
    import urllib.error
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            status, rh, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, rh, raw = e.code, dict(e.headers), e.read()
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return status, rh, parsed
