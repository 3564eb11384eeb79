"""The chart's generated files are up to date with their sources, and the generators keep their promises.

- charts/iap-run-operator/templates/crd-iaprunservices.yaml is generated from crds/ (the single source of
  truth for the CRD) by hack/gen_chart_crds.py;
- charts/iap-run-operator/values.schema.json and the values table of docs/helm.md are generated from the
  documented values.yaml by hack/gen_values_schema.py: every key described, every object closed
  (``additionalProperties`` false, or a schema for a free-form map's entries).

A failure here means: run the generator and commit its output. No helm and no cluster needed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "hack" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


gen_chart_crds = _load("gen_chart_crds")
gen_values_schema = _load("gen_values_schema")


def test_chart_crd_template_is_generated_from_crds() -> None:
    """The committed CRD template is exactly what the generator makes of crds/iaprun.dev_iaprunservices.yaml."""
    expected = gen_chart_crds.render(gen_chart_crds.SOURCE.read_text())
    assert gen_chart_crds.TEMPLATE.read_text() == expected, "stale: run `python hack/gen_chart_crds.py`"


def test_values_schema_is_generated_from_values() -> None:
    """The committed values.schema.json is exactly what the generator makes of values.yaml."""
    expected = gen_values_schema.render(gen_values_schema.VALUES.read_text())
    assert gen_values_schema.SCHEMA.read_text() == expected, "stale: run `python hack/gen_values_schema.py`"


def test_values_table_in_docs_is_generated_from_values() -> None:
    """The values table of docs/helm.md is exactly what the generator makes of values.yaml."""
    doc = gen_values_schema.DOC.read_text()
    expected = gen_values_schema.with_table(doc, gen_values_schema.render_table(gen_values_schema.VALUES.read_text()))
    assert doc == expected, "stale: run `python hack/gen_values_schema.py`"


def _objects(schema: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            yield path, schema
        for key, child in schema.items():
            yield from _objects(child, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, child in enumerate(schema):
            yield from _objects(child, f"{path}[{i}]")


def test_every_object_is_closed_and_every_property_described() -> None:
    """No object schema leaves additionalProperties open by omission, and each property has a description.

    Objects handed through to Kubernetes types the chart does not model (an EnvVar's valueFrom, affinity terms,
    NetworkPolicy peers) are typed ``object`` without properties and validated by the API server."""
    schema = json.loads(gen_values_schema.SCHEMA.read_text())
    for path, obj in _objects(schema):
        if "properties" in obj:
            assert obj.get("additionalProperties") is False, f"{path}: open object"
            for key, prop in obj["properties"].items():
                assert prop.get("description") or "$ref" in prop, f"{path}.{key}: no description"
        elif obj.get("additionalProperties") is None:
            assert obj.get("description"), f"{path}: a pass-through object must say what it is"


def test_an_undocumented_key_is_refused() -> None:
    """The generator fails (names the key) rather than emit a schema with an undescribed value."""
    with pytest.raises(gen_values_schema.SchemaError, match="undocumented"):
        gen_values_schema.generate("# -- Described.\ndocumented: 1\nundocumented: 2\n")


def test_a_list_of_objects_needs_an_item_schema() -> None:
    """Item types of object lists cannot be guessed from a default, so they must be declared with @schema."""
    with pytest.raises(gen_values_schema.SchemaError, match="items"):
        gen_values_schema.generate("# -- Things.\nthings: []\n")


def test_crd_braces_are_escaped_for_helm() -> None:
    """A `{{` in the CRD (say, in a CEL message) reaches the API server verbatim instead of breaking the template."""
    source = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
    source += "metadata:\n  name: x\nspec:\n  a: '{{b}}'\n"
    assert "a: '{{ \"{{\" }}b}}'" in gen_chart_crds.render(source)
