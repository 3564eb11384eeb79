"""``iaprun`` (also ``kubectl iaprun``): the operator's planner and an importer, without a cluster.

- ``iaprun plan -f FILE``: what the operator would do if the manifests in FILE were applied, against live Google
  (Application Default Credentials, or ``--endpoint`` for the emulator); exit 0 no change, 2 changes, 1 error.
- ``iaprun export --project P --region R [--service S]``: IapRunService YAML for existing services.

The planning is ``planner.plan``, the very function an ``ObserveOnly`` pass uses (docs/day-2.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import NoReturn

from iaprun_operator.cli import exporting, planning

EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; here 2 means "changes", so a usage error exits 1 like any error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="iaprun", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--endpoint", help="Google API endpoint (the emulator); default: Google with ADC")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="what applying a manifest would change (exit 0 none, 2 some, 1 error)")
    plan.add_argument("-f", "--filename", required=True, help="manifest file with IapRunService objects ('-': stdin)")
    plan.add_argument("--project", help="project for objects without spec.projectID")
    plan.add_argument("-n", "--namespace", default="default", help="namespace for objects without one")
    plan.add_argument("--cluster-id", help="the operator's cluster id (default: read from the service's owner mark)")
    plan.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    export = commands.add_parser("export", help="IapRunService YAML for existing Cloud Run services")
    export.add_argument("--project", required=True)
    export.add_argument("--region", required=True)
    export.add_argument("--service", help="one service (default: every service in the region)")
    export.add_argument("-n", "--namespace", default="", help="metadata.namespace to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "plan":
            changed = asyncio.run(planning.run(args))
            return EXIT_CHANGES if changed else EXIT_NO_CHANGES
        asyncio.run(exporting.run(args))
        return EXIT_NO_CHANGES
    except planning.CliError as error:
        print(f"iaprun: {error}", file=sys.stderr)
        return EXIT_ERROR
