"""``iaprun plan -f FILE``: the plan of each IapRunService in FILE against live Google, printed; no cluster.

The object is planned as if just applied: no status (no template fingerprint, no Additive ledger), the owner
mark's cluster id from ``--cluster-id`` or else from the service's own mark when it names this object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from google.auth.exceptions import GoogleAuthError

from iaprun_operator import planner
from iaprun_operator.core.errors import GoogleError
from iaprun_operator.core.model import InvalidSpecError, parse_spec
from iaprun_operator.core.names import OWNER_ANNOTATION, Owner, ServiceRef
from iaprun_operator.core.plan import Plan, setting_status
from iaprun_operator.core.tenancy import SINGLE_TENANT_RULE, TenancyPolicy
from iaprun_operator.google.bundle import Google
from iaprun_operator.results import ObjectView
from iaprun_operator.settings import Settings, SettingsError, from_env

KIND = "IapRunService"
OPEN_POLICY = TenancyPolicy(
    rules=(dataclasses.replace(SINGLE_TENANT_RULE, name="iaprun-plan", allow_public_access=True),)
)
"""The CLI judges what the operator would write, not whether the platform allows it: tenancy is the operator's
(set IAPRUN_TENANCY_POLICY or IAPRUN_TENANCY_POLICY_FILE to plan under the platform's policy)."""


class CliError(Exception):
    """A failure the CLI reports in one line and exits 1 for."""


def settings(endpoint: str | None) -> Settings:
    try:
        loaded = from_env()
    except SettingsError as error:
        raise CliError(str(error)) from None
    if not (os.environ.get("IAPRUN_TENANCY_POLICY") or os.environ.get("IAPRUN_TENANCY_POLICY_FILE")):
        loaded = dataclasses.replace(loaded, tenancy=OPEN_POLICY)
    return dataclasses.replace(loaded, google_api_endpoint=endpoint or loaded.google_api_endpoint)


def connect(config: Settings) -> Google:
    """The Google adapters, or a one-line error when no credentials are found (ADC, or --endpoint)."""
    try:
        return Google.build(config)
    except GoogleAuthError as error:
        raise CliError(f"no Google credentials: {error} (or pass --endpoint for the emulator)") from None


def manifests(path: str) -> Iterator[Mapping[str, Any]]:
    try:
        docs = [doc for text in _texts(path) for doc in yaml.safe_load_all(text)]
    except (OSError, yaml.YAMLError) as error:
        raise CliError(f"{path}: {error}") from None
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "List":
            yield from (i for i in doc.get("items") or () if isinstance(i, Mapping) and i.get("kind") == KIND)
        elif isinstance(doc, Mapping) and doc.get("kind") == KIND:
            yield doc


def _texts(path: str) -> list[str]:
    """The file, every ``*.yaml``/``*.yml`` of a directory (sorted), or stdin for ``-``."""
    if path == "-":
        return [sys.stdin.read()]
    where = Path(path)
    if where.is_dir():
        return [p.read_text() for p in sorted([*where.glob("*.yaml"), *where.glob("*.yml")])]
    return [where.read_text()]


async def run(args: argparse.Namespace) -> bool:
    """Plan every object in the file; True when any would change."""
    config = settings(args.endpoint)
    docs = list(manifests(args.filename))
    if not docs:
        raise CliError(f"{args.filename}: no {KIND} found")
    google = connect(config)
    results: list[dict[str, Any]] = []
    try:
        for doc in docs:
            results.append(await _plan_one(google, config, doc, args))
    except (GoogleError, InvalidSpecError) as error:
        raise CliError(str(error)) from None
    finally:
        google.calls.close()
    _print(results, args.output)
    if refused := [r for r in results if r["plan"]["service"]["action"] == "Refuse"]:
        raise CliError(f"{refused[0]['object']}: {refused[0]['plan']['summary']}")
    return any(r["plan"]["changes"] for r in results)


async def _plan_one(
    google: Google, config: Settings, doc: Mapping[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    meta = doc.get("metadata") or {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or args.namespace)
    spec = parse_spec(doc.get("spec") or {}, name=name)
    project = spec.project_id or args.project or config.default_project
    if not project:
        raise CliError(f"{namespace}/{name}: no project (set spec.projectID or --project)")
    ref = ServiceRef(project, spec.region, spec.service_name)
    cluster_id = args.cluster_id or await _cluster_id(google, ref, namespace, name)
    obj = ObjectView(namespace, name, int(meta.get("generation") or 1), doc.get("spec") or {}, {}, cluster_id)
    seen = await planner.plan(google, obj, spec, ref, config, datetime.now(UTC))
    return {
        "object": f"{namespace}/{name}",
        "service": ref.name,
        "plan": seen.plan.to_status(obj.generation),
        "text": _text(seen.plan),
    }


async def _cluster_id(google: Google, ref: ServiceRef, namespace: str, name: str) -> str:
    """The cluster id in the service's owner mark when that mark names this object; else a placeholder (the plan
    then shows the adoption: the ownership marks written)."""
    observed = await google.run.get(ref) or {}
    owner = Owner.parse(str((observed.get("annotations") or {}).get(OWNER_ANNOTATION) or ""))
    if owner is not None and (owner.namespace, owner.name) == (namespace, name):
        return owner.cluster_id
    return "unknown-cluster"


def _text(plan: Plan) -> list[str]:
    lines = [f"  ~ {f.path}: {f.to_status()['from']} -> {f.to_status()['to']}" for f in plan.fields]
    lines += [f"  ~ iapSettings.{c['field']}: {c['from']} -> {c['to']}" for c in map(setting_status, plan.settings)]
    for g in plan.grants:
        sign = "+" if g.action == "Grant" else "-"
        lines.append(f"  {sign} {g.policy} {g.role} {g.member}" + (f" if {g.condition}" if g.condition else ""))
    return lines + [f"  # {note}" for note in plan.notes]


def _print(results: list[dict[str, Any]], output: str) -> None:
    if output == "json":
        print(json.dumps([{k: v for k, v in r.items() if k != "text"} for r in results], indent=2))
    elif output == "yaml":
        print(yaml.safe_dump([{k: v for k, v in r.items() if k != "text"} for r in results], sort_keys=False), end="")
    else:
        for r in results:
            print(f"{r['object']} ({r['service']}): {r['plan']['summary']}")
            for line in r["text"]:
                print(line)
