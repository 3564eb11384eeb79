"""The ``world`` fixture: a fresh emulator world (reset, quick operations, the clock at ``START``)
and a fresh ``World`` with its own Google adapters, so no cache carries over between scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorThread
from golden.world import OPERATION_DELAY, START, World


@pytest.fixture
async def world(gcp_emulator: EmulatorThread, gcp_admin: AdminClient) -> AsyncIterator[World]:
    gcp_admin.configure(operation_delay=OPERATION_DELAY)
    gcp_admin.set_clock(START)
    w = World(gcp_emulator, gcp_admin)
    try:
        yield w
    finally:
        w.close()
