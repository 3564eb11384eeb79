"""A faithful local emulator of the Google Cloud APIs the operator calls.

Cloud Run Admin v2, IAP v1, Service Usage v1beta1, Resource Manager v1/v3 and Secret Manager v1 (secret access)
on one loopback port, plus the services' own URLs (answered the way IAP would) and an admin API under
``/_emulator/``. See docs/emulator.md. Heavy modules (the server imports the run_v2 protos) load lazily on
first attribute use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AdminClient": "gcpemu.admin",
    "Emulator": "gcpemu.server",
    "EmulatorConfig": "gcpemu.config",
    "EmulatorProcess": "gcpemu.testing",
    "EmulatorThread": "gcpemu.testing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(module), name)
