"""``python -m gcpemu --port N [--host H] [--config FILE]``: run the emulator in the foreground.

Prints the base URL (one line, flushed) as soon as it listens, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from gcpemu.config import EmulatorConfig
from gcpemu.server import Emulator


async def _main(args: argparse.Namespace) -> None:
    cfg = EmulatorConfig.load(args.config) if args.config else EmulatorConfig()
    if args.host:
        cfg.host = args.host
    if args.port is not None:
        cfg.port = args.port
    emu = Emulator(cfg)
    url = await emu.start()
    print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emu.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="gcpemu", description="Local Google Cloud emulator (Cloud Run v2, IAP v1, …)")
    p.add_argument("--port", type=int, default=None, help="port on the host (0 = a free port)")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1; loopback only)")
    p.add_argument("--config", default=None, help="JSON or YAML config file (keys: see docs/emulator.md)")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
