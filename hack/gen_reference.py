"""Generate docs/reference.md, the IapRunService field reference, from the CRD's openAPIV3Schema.

The CRD in crds/ is the source of truth; this page is derived from it so the two cannot drift
(tests/unit/test_reference_doc.py regenerates it in memory and fails when the committed file is stale).

    .venv/bin/python hack/gen_reference.py          # write docs/reference.md
    .venv/bin/python hack/gen_reference.py --check  # exit 1 when docs/reference.md is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = ROOT / "crds" / "iaprun.dev_iaprunservices.yaml"
REFERENCE_PATH = ROOT / "docs" / "reference.md"

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Field:
    """One row of the reference: a field at a dotted path with its schema."""

    path: str
    schema: Schema
    required: bool


@dataclass(frozen=True)
class Rule:
    """A CEL rule (x-kubernetes-validations entry) and the field it is attached to."""

    path: str
    rule: str
    message: str
    transition: bool


def load_crd(path: Path = CRD_PATH) -> dict[str, Any]:
    """Read the CRD manifest."""
    with path.open(encoding="utf-8") as stream:
        crd: dict[str, Any] = yaml.safe_load(stream)
    return crd


def _children(path: str, schema: Schema) -> Iterator[tuple[str, Schema, bool]]:
    """The direct sub-schemas of a schema: properties, list items and map values."""
    required = set(schema.get("required", ()))
    for name, sub in schema.get("properties", {}).items():
        yield (f"{path}.{name}" if path else name), sub, name in required
    if "items" in schema:
        yield f"{path}[]", schema["items"], False
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        yield f"{path}{{}}", additional, False


def walk(path: str, schema: Schema, *, required: bool = False) -> Iterator[Field]:
    """Every field under a schema, depth first, in declaration order.

    List items and map values are not rows of their own when they are scalars: their type is folded
    into the parent's (``[]string``, ``map[string]string``); object items are walked through.
    """
    yield Field(path, schema, required)
    for child_path, child, child_required in _children(path, schema):
        if child_path.endswith(("[]", "{}")):
            if child.get("type") == "object" and "properties" in child:
                for field in walk(child_path, child):
                    if field.path != child_path:
                        yield field
            continue
        yield from walk(child_path, child, required=child_required)


def rules(path: str, schema: Schema) -> Iterator[Rule]:
    """Every CEL rule under a schema, depth first, with the path of the field that holds it."""
    for entry in schema.get("x-kubernetes-validations", ()):
        rule_text = " ".join(str(entry["rule"]).split())
        message = entry.get("message") or entry.get("messageExpression") or ""
        message = " ".join(str(message).split())
        if "message" not in entry and "messageExpression" in entry:
            message = f"(expression) {message}"
        yield Rule(path or "(object)", rule_text, message, transition="oldSelf" in rule_text)
    for child_path, child, _ in _children(path, schema):
        yield from rules(child_path, child)


def type_of(schema: Schema) -> str:
    """A Go-like type name: string, integer (int32), []object, map[string]string, ..."""
    kind = str(schema.get("type", "any"))
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return f"{kind} (free-form)"
    if kind == "array":
        return "[]" + type_of(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return "map[string]" + type_of(schema["additionalProperties"])
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return kind


def _range(low: object, high: object, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low}..{high}{unit}"
    if high is not None:
        return f"<= {high}{unit}"
    if low is not None:
        return f">= {low}{unit}"
    return ""


def constraints(schema: Schema) -> list[str]:
    """Bounds, enum, pattern and list semantics of a schema, each as a short phrase."""
    found = [
        _range(schema.get("minLength"), schema.get("maxLength"), " chars"),
        _range(schema.get("minItems"), schema.get("maxItems"), " items"),
        _range(schema.get("minProperties"), schema.get("maxProperties"), " entries"),
        _range(schema.get("minimum"), schema.get("maximum"), ""),
    ]
    if "enum" in schema:
        found.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    if "pattern" in schema:
        found.append(f"pattern `{schema['pattern']}`")
    if schema.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(schema.get("x-kubernetes-list-map-keys", ()))
        found.append(f"unique by `{keys}`")
    items = schema.get("items", {})
    additional = schema.get("additionalProperties")
    for inner, label in ((items, "each item"), (additional, "each value")):
        if isinstance(inner, Mapping) and inner.get("type") not in ("object", None):
            inner_found = constraints(inner)
            if inner_found:
                found.append(f"{label}: " + "; ".join(inner_found))
    return [phrase for phrase in found if phrase]


def _cell(text: str) -> str:
    """Make text safe for a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _default(schema: Schema) -> str:
    if "default" not in schema:
        return ""
    value = schema["default"]
    shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return f"`{shown}`"


def field_table(fields: Sequence[Field], *, strip: str) -> list[str]:
    """A markdown table of fields; ``strip`` is the prefix removed from each path."""
    lines = [
        "| field | type | required | default | constraints | description |",
        "|---|---|---|---|---|---|",
    ]
    for field in fields:
        name = field.path.removeprefix(strip) or field.path
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{_cell(name)}`",
                    _cell(type_of(field.schema)),
                    "yes" if field.required else "",
                    _cell(_default(field.schema)),
                    _cell("; ".join(constraints(field.schema))),
                    _cell(str(field.schema.get("description", ""))),
                ]
            )
            + " |"
        )
    return lines


def rule_list(found: Sequence[Rule]) -> list[str]:
    """CEL rules as a bullet list: field, message, then the expression."""
    lines: list[str] = []
    for rule in found:
        kind = " (on update)" if rule.transition else ""
        lines.append(f"- `{rule.path}`{kind}: {rule.message}")
        lines.append(f"  - rule: `{rule.rule}`")
    return lines


def render(crd: Mapping[str, Any]) -> str:
    """The whole reference page for every served version of the CRD."""
    spec = crd["spec"]
    names = spec["names"]
    out = [
        f"# {names['kind']} reference",
        "",
        "<!-- Generated by hack/gen_reference.py from crds/. Do not edit: run `make docs`. -->",
        "",
        f"Group `{spec['group']}`, kind `{names['kind']}` (plural `{names['plural']}`, "
        f"short names {', '.join(f'`{n}`' for n in names.get('shortNames', ()))}, "
        f"categories {', '.join(f'`{c}`' for c in names.get('categories', ()))}), "
        f"scope {spec['scope']}. Design notes: [api.md](api.md).",
    ]
    for version in spec["versions"]:
        if not version.get("served", False):
            continue
        schema = version["schema"]["openAPIV3Schema"]
        api_version = f"{spec['group']}/{version['name']}"
        out += ["", f"## {api_version}", ""]
        out += [str(schema.get("description", "")).strip(), ""]
        subresources = ", ".join(sorted(version.get("subresources", {}))) or "none"
        out += [f"Subresources: {subresources}.", ""]
        columns = version.get("additionalPrinterColumns", ())
        if columns:
            out += [
                "### Printer columns",
                "",
                "| column | JSONPath | shown |",
                "|---|---|---|",
            ]
            for column in columns:
                shown = "`-o wide`" if column.get("priority", 0) > 0 else "always"
                out.append(f"| {column['name']} | `{_cell(column['jsonPath'])}` | {shown} |")
            out.append("")
        for section in ("spec", "status"):
            if section not in schema.get("properties", {}):
                continue
            root = schema["properties"][section]
            fields = [field for field in walk(section, root) if field.path != section]
            out += [f"### {section}", "", str(root.get("description", "")).strip(), ""]
            out += field_table(fields, strip=f"{section}.")
            out.append("")
        found = list(rules("", schema))
        if found:
            out += [
                "### Validation rules (CEL)",
                "",
                "Checked by the API server at admission; the message is what `kubectl` prints when a rule "
                "fails. Rules marked (on update) compare with the stored object (`oldSelf`).",
                "",
            ]
            out += rule_list(found)
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the reference is stale")
    args = parser.parse_args(argv)
    text = render(load_crd())
    if args.check:
        current = REFERENCE_PATH.read_text(encoding="utf-8") if REFERENCE_PATH.exists() else ""
        if current != text:
            print(f"{REFERENCE_PATH.relative_to(ROOT)} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    REFERENCE_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
