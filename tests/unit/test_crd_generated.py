"""crds/iaprun.dev_iaprunservices.yaml is what hack/gen_crd.py makes, and the generator keeps its promises.

The Cloud Run v2 part of the CRD is generated from the run.v2 discovery document (issue #14, docs/api.md). A
failure of the first test means: run `make docs` and commit its output. The others pin what the generator
promises: Google's names, shapes, enums and text; output-only fields left out; an overlay that matches nothing,
or a list without a bound, refused; a recursive type cut instead of looping.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from hackmodules import load

gen_crd = load("gen_crd")


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(gen_crd.OUTPUT.read_text(encoding="utf-8"))
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def test_the_committed_crd_is_the_generators_output() -> None:
    """crds/ is not stale against hack/crd/ and the installed discovery document."""
    assert gen_crd.OUTPUT.read_text(encoding="utf-8") == gen_crd.expected(), "run `make docs` (hack/gen_crd.py)"


def test_the_template_is_cloud_run_v2s_revision_template_without_output_only_fields() -> None:
    """Every settable RevisionTemplate field is there, under Google's name; output-only ones are not."""
    discovery = gen_crd.load_discovery()["schemas"]["GoogleCloudRunV2RevisionTemplate"]["properties"]
    template = spec_schema()["properties"]["template"]["properties"]
    settable = {
        name
        for name, prop in discovery.items()
        if not gen_crd.is_output_only(prop) and name not in gen_crd.LEFT_OUT["GoogleCloudRunV2RevisionTemplate"]
    }
    assert set(template) == settable
    assert "vpcAccess" in template
    assert "volumes" in template


def test_service_level_fields_and_operator_fields_sit_side_by_side() -> None:
    """The spec lists the operator's fields and the v2 service fields SPEC-V2.md exposes, nothing else."""
    names = list(spec_schema()["properties"])
    assert names[:3] == ["projectID", "region", "serviceName"]
    assert [n for n in names if n in gen_crd.SERVICE_FIELDS] == list(gen_crd.SERVICE_FIELDS)
    for server_set in ("uid", "generation", "conditions", "uri", "urls", "etag", "iapEnabled", "buildConfig"):
        assert server_set not in names


def test_descriptions_and_enums_are_googles() -> None:
    """kubectl explain prints Google's text; enum values are v2's, *_UNSPECIFIED dropped."""
    spec = spec_schema()["properties"]
    discovery = gen_crd.load_discovery()["schemas"]
    assert spec["template"]["properties"]["vpcAccess"]["description"].startswith(
        discovery["GoogleCloudRunV2RevisionTemplate"]["properties"]["vpcAccess"]["description"]
    )
    assert spec["ingress"]["enum"] == [
        "INGRESS_TRAFFIC_ALL",
        "INGRESS_TRAFFIC_INTERNAL_ONLY",
        "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        "INGRESS_TRAFFIC_NONE",
    ]
    assert spec["ingress"]["default"] == "INGRESS_TRAFFIC_ALL"
    env = spec["template"]["properties"]["containers"]["items"]["properties"]["env"]["items"]["properties"]
    assert set(env) == {"name", "value", "valueSource"}


def _tiny_discovery() -> dict[str, Any]:
    """A discovery document with one recursive type, an output-only field and an unbounded list."""
    node = {
        "type": "object",
        "properties": {
            "child": {"$ref": "Node", "description": "Recursive."},
            "tags": {"type": "array", "items": {"type": "string"}},
            "state": {"type": "string", "description": "Output only. Set by the server."},
            "count": {"type": "string", "format": "int64"},
        },
    }
    service = copy.deepcopy(gen_crd.load_discovery()["schemas"][gen_crd.SERVICE])
    service["properties"] = {name: {"$ref": "Node"} for name in gen_crd.SERVICE_FIELDS}
    return {"schemas": {"Node": node, gen_crd.SERVICE: service}}


def _base() -> dict[str, Any]:
    base: dict[str, Any] = yaml.safe_load(gen_crd.BASE.read_text(encoding="utf-8"))
    return base


def test_recursion_is_cut_output_only_fields_left_out_and_int64_is_int_or_string() -> None:
    overlays = {"Node.tags": {"maxItems": 3}}
    crd = gen_crd.build(_base(), _tiny_discovery(), overlays)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(spec["template"]["properties"]) == {"tags", "count"}
    count = spec["template"]["properties"]["count"]
    assert count["x-kubernetes-int-or-string"] is True  # Google writes int64 as a JSON string, reads either
    assert "type" not in count


def test_an_unbounded_list_is_refused() -> None:
    with pytest.raises(gen_crd.GenerationError, match="unbounded"):
        gen_crd.build(_base(), _tiny_discovery(), {})


def test_an_overlay_that_matches_nothing_is_refused() -> None:
    with pytest.raises(gen_crd.GenerationError, match="match no generated field"):
        gen_crd.build(_base(), _tiny_discovery(), {"Node.tags": {"maxItems": 3}, "Node.tagz": {"maxItems": 1}})


_SCHEMA_KEYWORDS = {
    "type",
    "description",
    "properties",
    "items",
    "required",
    "enum",
    "default",
    "format",
    "pattern",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "additionalProperties",
    "nullable",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "x-kubernetes-validations",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource",
    "uniqueItems",
}


def _stray_keys(schema: dict[str, Any], path: str) -> list[str]:
    stray = [f"{path}: {key!r}" for key in schema if key not in _SCHEMA_KEYWORDS]
    for name, sub in (schema.get("properties") or {}).items():
        stray += _stray_keys(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            stray += _stray_keys(schema[key], f"{path}.{key}")
    return stray


def test_every_schema_key_is_an_openapi_keyword() -> None:
    """A YAML slip in the hand-written base (``{description: text, if any.}`` makes ``if any.`` a key) is stored
    by the API server without the stray key, so a later server-side apply of the same file by another manager
    (helm after kubectl) conflicts on ``.spec.versions``: every key of every schema node must be a keyword."""
    crd = yaml.safe_load(gen_crd.OUTPUT.read_text(encoding="utf-8"))
    assert _stray_keys(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "openAPIV3Schema") == []
