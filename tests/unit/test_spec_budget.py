"""The largest spec the CRD admits, computed from its schema: far below what the API server can store.

An upper bound on the serialized (compact JSON) size of ``spec``, from the CRD's own limits: each string at its
``maxLength``, each list at its ``maxItems``, each map at its ``maxProperties`` (keys counted at 63, the label
key limit, the only map). The template's command, args and env are bounded together by the CEL budget
(``TEMPLATE_CHARS`` characters, ``TEMPLATE_ENV`` entries), not by their per-container limits multiplied by ten
containers. Two figures: ASCII (one byte a character), and the worst escaping (a control character is six
bytes in JSON). docs/reliability.md ("Spec size") quotes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "iaprun.dev_iaprunservices.yaml"
TEMPLATE_CHARS = 65536
TEMPLATE_ENV = 500
LEVELLED_ACCESSORS = 20
MAP_KEY = 63
ETCD_REQUEST_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes (1.5 MiB), the API server's object limit
ANNOTATIONS_LIMIT = 256 * 1024  # kubectl's client-side apply keeps the whole object in an annotation


def _spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def bound(schema: dict[str, Any], char_bytes: int, *, strings: bool = True) -> float:
    """Largest compact-JSON size of a value of ``schema``; ``strings=False`` counts string contents as empty."""
    kind = schema.get("type")
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"])
    if kind == "string":
        return 2 + (char_bytes * schema.get("maxLength", float("inf")) if strings else 0)
    if kind == "integer":
        return 11
    if kind == "boolean":
        return 5
    if kind == "array":
        return 2 + schema.get("maxItems", float("inf")) * (1 + bound(schema["items"], char_bytes, strings=strings))
    if kind == "object" and "additionalProperties" in schema:
        value = bound(schema["additionalProperties"], char_bytes, strings=strings)
        return 2 + schema.get("maxProperties", float("inf")) * (4 + char_bytes * MAP_KEY + value)
    if kind == "object":
        props = schema.get("properties", {})
        return 2 + sum(len(name) + 4 + bound(sub, char_bytes, strings=strings) for name, sub in props.items())
    return float("inf")  # no type: unbounded


def worst_spec_bytes(char_bytes: int) -> float:
    spec = _spec_schema()
    template = spec["properties"]["template"]
    container = template["properties"]["containers"]["items"]
    budgeted = {"command", "args", "env"}
    fixed = {k: v for k, v in container["properties"].items() if k not in budgeted}
    per_container = bound({"type": "object", "properties": fixed}, char_bytes)
    lists = {k: v for k, v in container["properties"].items() if k in {"command", "args"}}
    item_overhead = bound({"type": "object", "properties": lists}, char_bytes, strings=False)
    env_item = bound(container["properties"]["env"]["items"], char_bytes, strings=False) + 1
    containers = template["properties"]["containers"]["maxItems"] * (per_container + item_overhead + 20)
    rest_of_template = {k: v for k, v in template["properties"].items() if k != "containers"}
    template_bytes = (
        bound({"type": "object", "properties": rest_of_template}, char_bytes)
        + containers
        + TEMPLATE_ENV * env_item
        + char_bytes * TEMPLATE_CHARS
    )
    others = {k: v for k, v in spec["properties"].items() if k != "template"}
    return (
        bound({"type": "object", "properties": others}, char_bytes)
        + template_bytes
        + 12
        + _levels_overcount(spec, char_bytes)
    )


def _levels_overcount(spec: dict[str, Any], char_bytes: int) -> float:
    """``accessLevels`` are bounded together (at most ``LEVELLED_ACCESSORS`` accessors carry them), not per
    accessor: replace their per-accessor bound counted above by the joint one (a negative correction)."""
    accessors = spec["properties"]["iap"]["properties"]["accessors"]
    levels = accessors["items"]["properties"]["accessLevels"]
    each = len("accessLevels") + 4 + bound(levels, char_bytes)
    return (LEVELLED_ACCESSORS - accessors["maxItems"]) * each


def test_the_crd_states_the_budget_this_test_assumes() -> None:
    rules = " ".join(r["rule"] for r in _spec_schema()["properties"]["template"]["x-kubernetes-validations"])
    assert f"<= {TEMPLATE_CHARS}" in rules
    assert f"<= {TEMPLATE_ENV}" in rules
    accessors = _spec_schema()["properties"]["iap"]["properties"]["accessors"]
    assert f"<= {LEVELLED_ACCESSORS}" in " ".join(r["rule"] for r in accessors["x-kubernetes-validations"])


def test_the_largest_ascii_spec_fits_kubectls_last_applied_annotation() -> None:
    worst = worst_spec_bytes(1)
    print(f"worst-case spec, ASCII: {worst / 1024:.0f} KiB")
    assert worst < ANNOTATIONS_LIMIT


def test_the_largest_spec_with_the_worst_escaping_is_far_below_the_api_servers_limit() -> None:
    worst = worst_spec_bytes(6)
    print(f"worst-case spec, every character escaped: {worst / 1024:.0f} KiB")
    assert worst < ETCD_REQUEST_LIMIT * 0.75
