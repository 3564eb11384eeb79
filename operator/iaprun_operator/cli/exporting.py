"""``iaprun export``: read existing services, their IAM and IAP policies, and print IapRunService YAML.

Read-only (gets and lists); ``core.export`` writes the manifests.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from iaprun_operator.cli.planning import CliError, connect, settings
from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.export import export
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.google.bundle import Google


async def run(args: argparse.Namespace) -> None:
    google = connect(settings(args.endpoint))
    try:
        docs = [await _one(google, args, service) for service in await _services(google, args)]
    except GoogleError as error:
        raise CliError(str(error)) from None
    finally:
        google.calls.close()
    print("\n---\n".join(docs), end="")


async def _services(google: Google, args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.service:
        found = await google.run.get(ServiceRef(args.project, args.region, args.service))
        if found is None:
            raise CliError(f"no Cloud Run service {args.service} in {args.project}/{args.region}")
        return [found]
    return sorted(await google.run.list(args.project, args.region), key=lambda s: str(s.get("name")))


async def _one(google: Google, args: argparse.Namespace, service: dict[str, Any]) -> str:
    ref = ServiceRef(args.project, args.region, str(service.get("name", "")).rsplit("/", 1)[-1])
    number = await google.projects.number(args.project)
    run_policy = await google.run.get_iam_policy(ref)
    iap_policy = await google.iap.get_iam_policy(ref.iap_resource(number), args.project)
    settings, unread = await _settings(google, ref.iap_resource(number), args.project)
    exported = export(
        service, run_policy, iap_policy, project=args.project, namespace=args.namespace, iap_settings=settings
    )
    comments = "".join(f"# NOTE: {note}\n" for note in [*unread, *exported.notes])
    return comments + yaml.safe_dump(exported.manifest, sort_keys=False)


async def _settings(google: Google, resource: str, project: str) -> tuple[dict[str, Any], list[str]]:
    """The IAP resource's settings; none (and a note) when the account may not read them."""
    try:
        return await google.iap.get_settings(resource, project), []
    except GoogleError as error:
        if error.kind is not Kind.PERMISSION:
            raise
        return {}, [f"the IAP settings could not be read ({error.message}): spec.iap.settings is not exported"]
