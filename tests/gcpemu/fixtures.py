"""Pytest fixtures for the Google Cloud emulator (loaded as a plugin by tests/conftest.py).

- ``gcp_emulator`` (session): an in-thread emulator; yields its ``EmulatorThread`` (``.base_url``,
  ``.emulator``).
- ``gcp_base_url`` (function): the base URL of the session emulator, **reset** before the test.
- ``gcp_admin`` (function): an ``AdminClient`` for that emulator (reset before the test).
- ``gcp_emulator_process`` (session): the emulator as a subprocess (``EmulatorProcess``), for tests where
  the operator runs as a separate process and the emulator must not share the test's GIL.
- ``gcp_process_admin`` (function): ``AdminClient`` for the subprocess emulator, reset before the test.
- ``run_client`` (function): a ``run_v2.ServicesClient`` (REST, anonymous) pointed at ``gcp_base_url``.
- ``discovery_client`` (function): ``discovery_client("iap", "v1")`` builds a static-discovery client
  pointed at ``gcp_base_url``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess, EmulatorThread


@pytest.fixture(scope="session")
def gcp_emulator() -> Iterator[EmulatorThread]:
    emu = EmulatorThread()
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def gcp_admin(gcp_emulator: EmulatorThread) -> AdminClient:
    admin = AdminClient(gcp_emulator.base_url)
    admin.reset()
    return admin


@pytest.fixture
def gcp_base_url(gcp_emulator: EmulatorThread, gcp_admin: AdminClient) -> str:
    return gcp_emulator.base_url


@pytest.fixture(scope="session")
def gcp_emulator_process() -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess()
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def gcp_process_admin(gcp_emulator_process: EmulatorProcess) -> AdminClient:
    admin = AdminClient(gcp_emulator_process.base_url)
    admin.reset()
    return admin


@pytest.fixture
def run_client(gcp_base_url: str) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth import credentials as gauth

    anonymous: Any = gauth.AnonymousCredentials
    from google.cloud import run_v2

    return run_v2.ServicesClient(
        credentials=anonymous(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=gcp_base_url),
    )


@pytest.fixture
def discovery_client(gcp_base_url: str) -> Callable[[str, str], Any]:
    from google.auth import credentials as gauth

    anonymous: Any = gauth.AnonymousCredentials
    from googleapiclient import discovery

    def build(api: str, version: str) -> Any:
        return discovery.build(
            api,
            version,
            credentials=anonymous(),
            static_discovery=True,
            client_options={"api_endpoint": gcp_base_url + "/"},
        )

    return build
