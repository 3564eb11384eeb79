"""docs/reference.md is generated from the CRD (hack/gen_reference.py) and must not be stale.

Regenerates the page in memory from crds/ and compares it with the committed file; also checks
that the page carries what a reader needs (every spec field, defaults, enums, CEL messages).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "hack" / "gen_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_reference", module)
    spec.loader.exec_module(module)
    return module


def test_reference_is_up_to_date() -> None:
    """The committed docs/reference.md equals what the generator makes from the CRD (run `make docs`)."""
    generator = load_generator()
    expected = generator.render(generator.load_crd())
    current = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert current == expected, "docs/reference.md is stale: run `make docs` and commit the result"


def test_reference_covers_every_field_and_rule() -> None:
    """Every spec/status field gets a row, and every CEL rule's message appears on the page."""
    generator = load_generator()
    crd = generator.load_crd()
    text = generator.render(crd)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for section in ("spec", "status"):
        for field in generator.walk(section, schema["properties"][section]):
            if field.path == section:
                continue
            assert f"| `{field.path.removeprefix(section + '.')}` |" in text, field.path
    for rule in generator.rules("", schema):
        assert rule.message in text
    assert "`Authoritative`" in text
    assert "one of `INGRESS_TRAFFIC_ALL`, `INGRESS_TRAFFIC_INTERNAL_ONLY`" in text


def test_every_field_is_described() -> None:
    """`kubectl explain` reads well only if every declared field has a description."""
    generator = load_generator()
    schema = generator.load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    undescribed = [
        field.path
        for section in ("spec", "status")
        for field in generator.walk(section, schema["properties"][section])
        if not field.schema.get("description")
    ]
    assert undescribed == []
