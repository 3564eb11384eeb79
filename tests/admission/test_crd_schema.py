"""Static properties of the CRD in crds/ that the API server does not enforce by itself.

- every string, list and map is bounded (the CEL cost estimator needs it, and so do we: no
  unbounded input reaches the operator);
- nothing under spec preserves unknown fields (a typo is an error, not a silently ignored field);
- the schema follows docs/api.md's defaults and enums.
Pure YAML checks: no server (the admission tests prove the same CRD against a real one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "iaprun.dev_iaprunservices.yaml"


def load_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def nodes(path: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(f"{path}.{name}", sub)
    if "items" in schema:
        yield from nodes(f"{path}[]", schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(f"{path}{{}}", schema["additionalProperties"])


def user_nodes() -> Iterator[tuple[str, dict[str, Any]]]:
    schema = load_schema()
    for section in ("spec", "status"):
        for path, node in nodes(section, schema["properties"][section]):
            if path != "status.kopf":
                yield path, node


def test_every_string_list_and_map_is_bounded() -> None:
    """Strings have maxLength (or an enum), lists maxItems, maps maxProperties."""
    bound_of = {"string": "maxLength", "array": "maxItems"}
    unbounded = []
    for path, node in user_nodes():
        kind = node.get("type")
        bound = "maxProperties" if kind == "object" and "additionalProperties" in node else bound_of.get(kind)
        if bound and bound not in node and "enum" not in node:
            unbounded.append(path)
    assert unbounded == []


def test_spec_prunes_unknown_fields() -> None:
    """No x-kubernetes-preserve-unknown-fields under spec; status preserves only kopf's bookkeeping."""
    preserving = [path for path, node in user_nodes() if node.get("x-kubernetes-preserve-unknown-fields")]
    assert preserving == []
    assert load_schema()["properties"]["status"]["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"]


@pytest.mark.parametrize(
    ("path", "default", "enum"),
    [
        (
            "spec.ingress",
            "INGRESS_TRAFFIC_ALL",
            [
                "INGRESS_TRAFFIC_ALL",
                "INGRESS_TRAFFIC_INTERNAL_ONLY",
                "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
                "INGRESS_TRAFFIC_NONE",
            ],
        ),
        ("spec.invokerIamDisabled", False, None),
        ("spec.iap.enabled", True, None),
        ("spec.iap.accessorsPolicy", "Authoritative", ["Authoritative", "Additive"]),
        ("spec.iap.publicInvokerBindings", "Remove", ["Remove", "Report"]),
        ("spec.deletionPolicy", "Delete", ["Delete", "Abandon"]),
        ("spec.adoption", "Never", ["Never", "IfUnowned"]),
        ("spec.launchStage", None, ["ALPHA", "BETA", "GA"]),
        ("spec.template.executionEnvironment", None, ["EXECUTION_ENVIRONMENT_GEN1", "EXECUTION_ENVIRONMENT_GEN2"]),
        ("spec.template.vpcAccess.egress", None, ["ALL_TRAFFIC", "PRIVATE_RANGES_ONLY"]),
    ],
)
def test_defaults_and_enums_match_the_api_notes(path: str, default: Any, enum: list[str] | None) -> None:
    """The defaults and enums of docs/api.md are the schema's."""
    node = dict(user_nodes())[path]
    assert node.get("default") == default
    assert node.get("enum") == enum
