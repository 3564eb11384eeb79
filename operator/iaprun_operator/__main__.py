"""Command line entry point: ``iap-run-operator`` (or ``python -m iaprun_operator``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf

from iaprun_operator import __version__, leadership, settings
from iaprun_operator.core import tenancy
from iaprun_operator.handlers import Runtime, register
from iaprun_operator.logs import quiet_routine_logs, redact_spec_values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="iap-run-operator",
        description="Reconciles IapRunService objects into Cloud Run services protected by Identity-Aware "
        "Proxy. Configuration comes from IAPRUN_* environment variables (see docs/configuration.md).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--namespace", help="watch only this namespace (default: all namespaces)")
    parser.add_argument("--log-format", choices=["plain", "full", "json"], default="full")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--liveness", metavar="URL", help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = settings.from_env()
    except settings.SettingsError as error:
        print(f"iap-run-operator: {error}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    redact_spec_values()  # at every level, --verbose included
    if not args.verbose:
        quiet_routine_logs()
    log = logging.getLogger("iaprun_operator.tenancy")
    for warning, line in tenancy.describe(config.tenancy, config.operator_service_account):
        log.log(logging.WARNING if warning else logging.INFO, line)
    registry = kopf.OperatorRegistry()
    register(registry, Runtime(settings=config))
    namespace = args.namespace or config.watch_namespace
    with leadership.active(config.ha, args.liveness):  # a standby waits here; kopf runs only while the Lease is held
        kopf.run(
            registry=registry,
            standalone=True,
            clusterwide=namespace is None,
            namespaces=[namespace] if namespace else (),
            liveness_endpoint=args.liveness,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
