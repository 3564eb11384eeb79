"""A faithful local emulator of the Google Cloud APIs the operator calls.

Cloud Run Admin v2, IAP v1, Service Usage v1beta1 and Resource Manager v1/v3 on one loopback port, plus the
services' own URLs (answered the way IAP would) and an admin API under ``/_emulator/``. See
docs/emulator.md.
"""

from gcpemu.config import EmulatorConfig

__all__ = ["EmulatorConfig"]
