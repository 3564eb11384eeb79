"""Generate the chart's values.schema.json from its documented values.yaml.

values.yaml is the source: each key carries a ``# -- description`` comment (continued by the ``#`` lines that
follow it) and, optionally, ``# @schema {json}`` lines whose keywords are merged into the key's schema. The
type of each key comes from its default value; every object gets ``additionalProperties: false`` unless its
``@schema`` says what its free-form entries are. Shared item types (tenancy rules, EnvVar, Toleration) are
defined below, so they are written once.

The same descriptions make the values table of docs/helm.md (between its ``values-table`` markers).

Run ``python hack/gen_values_schema.py`` to rewrite both, ``--check`` to fail when either is stale (the unit
test tests/unit/test_chart_generated.py does that).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "iap-run-operator"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
DOC = REPO / "docs" / "helm.md"
TABLE_START, TABLE_END = "<!-- values-table:start -->", "<!-- values-table:end -->"

Schema = dict[str, Any]

# Globs as Python's fnmatchcase reads them, minus character classes: the admission policy matches them as
# regular expressions the chart writes, and `[`/`]` can appear in no value a rule matches (names, emails,
# image references), so a class is refused rather than translated.
_GLOBS: Schema = {"type": "array", "items": {"type": "string", "minLength": 1, "pattern": "^[^\\[\\]]+$"}}
_FLAG: Schema = {"type": "boolean", "default": False}


def _globs(description: str) -> Schema:
    return {**_GLOBS, "description": description + " Globs; omitted or empty: none; `*`: any."}


DEFINITIONS: dict[str, Schema] = {
    "tenancyRule": {
        "type": "object",
        "description": "One tenancy rule: the namespaces it selects and everything their objects may ask for. "
        "Deny by default: an omitted list allows nothing.",
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "description": "Name of the rule, quoted in every denial it gives. Unique.",
            },
            "namespaces": {
                **_GLOBS,
                "description": "Namespace names or globs (`team-a-*`). With `namespaceSelector`, both must match; "
                "a rule setting neither selects nothing.",
            },
            "namespaceSelector": {
                "type": "object",
                "description": "Label selector over namespaces (selected when its labels match).",
                "properties": {
                    "matchLabels": {
                        "type": "object",
                        "description": "Labels a namespace must carry.",
                        "additionalProperties": {"type": "string"},
                    }
                },
                "additionalProperties": False,
            },
            "projects": _globs("Projects (spec.projectID, else the namespace's `iaprun.dev/default-project`)."),
            "regions": _globs("Cloud Run regions."),
            "serviceNames": _globs("Cloud Run service names the selected namespaces may create or manage."),
            "serviceAccounts": _globs(
                "Runtime identities (spec.template.serviceAccount), compared case-insensitively; never the "
                "operator's own account."
            ),
            "allowDefaultServiceAccount": {
                **_FLAG,
                "description": "May spec.template.serviceAccount be omitted (the project's default compute "
                "service account).",
            },
            "secretProjects": _globs(
                "Projects whose Secret Manager secrets may be referenced (a bare secret name means the service's "
                "own project)."
            ),
            "images": _globs("Container image references (`REGISTRY/REPOSITORY/*`)."),
            "oauthClientSecrets": _globs(
                "Secret Manager secrets (`projects/P/secrets/S`) the operator itself may read to configure IAP's "
                "OAuth clients (spec.iap.settings ... clientSecretSource); a bare name means the service's project."
            ),
            "networks": _globs(
                "VPC networks, subnetworks and Serverless VPC Access connectors (`template.vpcAccess`), as full "
                "resource names (`projects/P/global/networks/N`, `projects/P/regions/R/subnetworks/S`, "
                "`projects/P/locations/R/connectors/C`; a short name is the service's project's)."
            ),
            "sqlInstances": _globs(
                "Cloud SQL connection names (`PROJECT:REGION:INSTANCE`) of cloudSqlInstance volumes."
            ),
            "buckets": _globs("Cloud Storage buckets of gcs volumes."),
            "nfsServers": _globs("NFS servers (IP address or host name) of nfs volumes."),
            "kmsKeys": _globs("Customer-managed encryption keys (`template.encryptionKey`)."),
            "binaryAuthorizationPolicies": _globs(
                "Named Binary Authorization policies (`binaryAuthorization.policy`)."
            ),
            "adoptServiceNames": _globs(
                "Existing unowned services that `adoption: IfUnowned` may take over (checked by the operator "
                "when it adopts)."
            ),
            "accessorMemberKinds": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": ["user", "group", "serviceAccount", "domain", "principal", "principalSet"],
                },
                "default": ["user", "group", "serviceAccount"],
                "description": "IAM member kinds accessors may have. Omitted: user, group, serviceAccount; "
                "domain, principal and principalSet must be listed.",
            },
            "accessorDomains": {
                **_GLOBS,
                "description": "Domains of user, group, serviceAccount and domain accessors: each domain exactly "
                "(not a glob) and its subdomains, case-insensitive; `*`: any; omitted or empty: none.",
            },
            "allowIapDisabled": {**_FLAG, "description": "May spec.iap.enabled be false."},
            "allowPublicInvokerBindings": {
                **_FLAG,
                "description": "May spec.iap.publicInvokerBindings be Report (public invoker bindings kept).",
            },
            "allowPublicAccess": {
                **_FLAG,
                "description": "May spec.invokerIamDisabled be true (Cloud Run's allow public access).",
            },
            "allowBinaryAuthorizationBreakglass": {
                **_FLAG,
                "description": "May spec.binaryAuthorization.breakglassJustification be set (a deploy bypassing "
                "Binary Authorization).",
            },
            "envValues": {
                "type": "string",
                "enum": ["Any", "SecretsOnly"],
                "default": "Any",
                "description": "SecretsOnly refuses literal `value:` env entries (Secret Manager references only).",
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "envVar": {
        "type": "object",
        "description": "A Kubernetes EnvVar.",
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "Variable name."},
            "value": {"type": "string", "description": "Literal value."},
            "valueFrom": {"type": "object", "description": "Kubernetes EnvVarSource (validated by the API server)."},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "toleration": {
        "type": "object",
        "description": "A Kubernetes Toleration.",
        "properties": {
            "key": {"type": "string", "description": "Taint key."},
            "operator": {"type": "string", "enum": ["Exists", "Equal"], "description": "Exists or Equal."},
            "value": {"type": "string", "description": "Taint value (with Equal)."},
            "effect": {
                "type": "string",
                "enum": ["", "NoSchedule", "PreferNoSchedule", "NoExecute"],
                "description": "Taint effect (empty: all).",
            },
            "tolerationSeconds": {"type": "integer", "description": "How long a NoExecute taint is tolerated."},
        },
        "additionalProperties": False,
    },
}


class SchemaError(ValueError):
    """values.yaml lacks what the schema needs (a description, or a type its default cannot show)."""


@dataclass
class Doc:
    description: list[str] = field(default_factory=list)
    schema: Schema = field(default_factory=dict)


_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")


def read_docs(text: str) -> dict[tuple[str, ...], Doc]:
    """Map each key path of values.yaml to the comment block above it (keys inside lists are ignored)."""
    docs: dict[tuple[str, ...], Doc] = {}
    stack: list[tuple[int, str]] = []
    pending: Doc | None = None
    in_description = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            if body.startswith("-- "):
                pending, in_description = Doc(description=[body[3:].strip()]), True
            elif body.startswith("@schema "):
                if pending is None:
                    raise SchemaError(f"values.yaml:{number}: @schema without a preceding '# --' description")
                try:
                    pending.schema.update(json.loads(body.removeprefix("@schema ")))
                except json.JSONDecodeError as e:
                    raise SchemaError(f"values.yaml:{number}: @schema is not JSON: {e}") from e
                in_description = False
            elif pending is not None and in_description and body:
                pending.description.append(body)
            continue
        if not stripped:
            if pending is None:
                continue
            raise SchemaError(f"values.yaml:{number}: blank line between a '# --' comment and its key")
        match = _KEY.match(line)
        if match is None:  # a list item or a continuation: no key of ours
            pending = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if pending is not None:
            docs[tuple(key for _, key in stack)] = pending
        pending, in_description = None, False
    return docs


def _type_of(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise SchemaError(f"{path}: a null default needs '@schema {{\"type\": ...}}'")


def schema_for(value: Any, path: tuple[str, ...], docs: dict[tuple[str, ...], Doc]) -> Schema:
    dotted = ".".join(path)
    doc = docs.get(path)
    if doc is None:
        raise SchemaError(f"{dotted}: no '# --' description above it in values.yaml")
    schema: Schema = {}
    if "type" not in doc.schema:
        schema["type"] = _type_of(value, dotted)
    schema["description"] = " ".join(doc.description)
    if isinstance(value, dict) and "additionalProperties" not in doc.schema:
        schema["properties"] = {key: schema_for(child, (*path, key), docs) for key, child in value.items()}
        schema["additionalProperties"] = False
    elif isinstance(value, list) and "items" not in doc.schema:
        if not value or isinstance(value[0], dict | list):
            raise SchemaError(f"{dotted}: a list of objects (or an empty list) needs '@schema {{\"items\": ...}}'")
        schema["items"] = {"type": _type_of(value[0], dotted)}
    if "properties" not in schema:  # a leaf: scalars, lists and free-form maps carry their default
        schema["default"] = value
    schema.update(doc.schema)
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
    return schema


def generate(values_text: str) -> Schema:
    values = yaml.safe_load(values_text)
    docs = read_docs(values_text)
    known = set(docs)
    described = {path for path in known if _lookup(values, path) is not _MISSING}
    if stale := sorted(".".join(p) for p in known - described):
        raise SchemaError(f"comments for keys that do not exist: {stale}")
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Values of the iap-run-operator chart",
        "description": "Generated from values.yaml by hack/gen_values_schema.py: do not edit.",
        "type": "object",
        "properties": {key: schema_for(value, (key,), docs) for key, value in values.items()},
        "additionalProperties": False,
        "definitions": DEFINITIONS,
    }


_MISSING = object()


def _lookup(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return _MISSING
        values = values[key]
    return values


def render(values_text: str) -> str:
    return json.dumps(generate(values_text), indent=2) + "\n"


def _rows(schema: Schema, prefix: str) -> list[str]:
    rows: list[str] = []
    for key, prop in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        if prop.get("properties"):
            rows.extend(_rows(prop, f"{path}."))
            continue
        kind = prop.get("type", "object")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
        description = str(prop.get("description", "")).replace("|", "\\|")
        rows.append(f"| `{path}` | {kind} | {default} | {description} |")
    return rows


def render_table(values_text: str) -> str:
    """The values table of docs/helm.md: one row per leaf (objects the chart models are opened up)."""
    header = "| value | type | default | description |\n|---|---|---|---|\n"
    return header + "\n".join(_rows(generate(values_text), "")) + "\n"


def with_table(doc_text: str, table: str) -> str:
    start, end = doc_text.index(TABLE_START), doc_text.index(TABLE_END)
    return f"{doc_text[: start + len(TABLE_START)]}\n{table}{doc_text[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if values.schema.json or docs/helm.md is stale")
    args = parser.parse_args(argv)
    try:
        values_text = VALUES.read_text()
        outputs = {SCHEMA: render(values_text), DOC: with_table(DOC.read_text(), render_table(values_text))}
    except SchemaError as e:
        print(f"values.yaml: {e}", file=sys.stderr)
        return 1
    stale = [path for path, text in outputs.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is stale: run `python hack/gen_values_schema.py`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
