"""The largest spec the CRD admits, computed from its schema: far below what the API server can store.

An upper bound on the serialized (compact JSON) size of ``spec``, from the CRD's own limits: each string at its
``maxLength``, each list at its ``maxItems``, each map at its ``maxProperties`` with keys at the length its key
rule allows (``{0,62}`` for labels, ``size(k) <= N`` for annotations, the list of keys for limits). An object
whose rule admits exactly one of some fields (``[has(self.a), has(self.b)].filter(x, x).size() == 1``: a
volume's source, a probe's action) counts the largest of them, not their sum; ``!(has(self.a) &&
has(self.b))`` (an env's value or valueSource) likewise. The containers' free text (image, workingDir,
baseImageUri, command, args, env, volumeMounts, the probes' paths, headers and gRPC services) is bounded
together by the template's CEL budget (``TEMPLATE_CHARS`` characters, ``TEMPLATE_ENV`` env entries,
``TEMPLATE_MOUNTS`` mounts), not by its per-container limits multiplied by ten containers. Two figures: ASCII
(one byte a character), and the worst escaping (a control character is six bytes in JSON). docs/reliability.md
("Spec size") quotes them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "iaprun.dev_iaprunservices.yaml"
TEMPLATE_CHARS = 49152
TEMPLATE_ENV = 500
TEMPLATE_MOUNTS = 32
LEVELLED_ACCESSORS = 10
# Container fields whose strings the template's character budget covers (each named in that rule).
BUDGETED = {"image": "c.image", "workingDir": "c.workingDir", "baseImageUri": "c.baseImageUri"}
BUDGETED_LISTS = {"command": "c.command", "args": "c.args", "env": "c.env", "volumeMounts": "c.volumeMounts"}
PROBES = {"livenessProbe": "c.livenessProbe", "readinessProbe": "c.readinessProbe", "startupProbe": "c.startupProbe"}
ETCD_REQUEST_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes (1.5 MiB), the API server's object limit
ANNOTATIONS_LIMIT = 256 * 1024  # kubectl's client-side apply keeps the whole object in an annotation
ONE_OF = re.compile(r"^\[((?:has\(self\.\w+\),\s*)*has\(self\.\w+\))\]\.filter\(x, x\)\.size\(\) == 1$")
NOT_BOTH = re.compile(r"^!\(has\(self\.(\w+)\) && has\(self\.(\w+)\)\)$")


def _spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _rules(schema: dict[str, Any]) -> list[str]:
    return [" ".join(rule["rule"].split()) for rule in schema.get("x-kubernetes-validations", [])]


def key_bound(schema: dict[str, Any]) -> float:
    """The longest map key the map's rules admit."""
    for rule in _rules(schema):
        if "[a-z0-9_-]{0,62}$" in rule:
            return 63
        found = re.search(r"size\(k\) <= (\d+)", rule)
        if found:
            return int(found.group(1))
        listed = re.fullmatch(r"self\.all\(k, k in \[(.*)\]\)", rule)
        if listed:
            return max(len(key) - 2 for key in listed.group(1).split(", "))
    return float("inf")


def one_of(schema: dict[str, Any]) -> set[str]:
    """Fields of which the object's rules admit one at most (``exactly one of``, or ``not both``)."""
    for rule in _rules(schema):
        found = ONE_OF.match(rule)
        if found:
            return set(re.findall(r"self\.(\w+)", found.group(1)))
        pair = NOT_BOTH.match(rule)
        if pair:
            return set(pair.groups())
    return set()


def bound(schema: dict[str, Any], char_bytes: int, *, strings: bool = True) -> float:
    """Largest compact-JSON size of a value of ``schema``; ``strings=False`` counts string contents as empty."""
    kind = schema.get("type")
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"])
    if kind == "string":
        return 2 + (char_bytes * schema.get("maxLength", float("inf")) if strings else 0)
    if kind in ("integer", "number"):
        return 24
    if kind == "boolean":
        return 5
    if kind == "array":
        return 2 + schema.get("maxItems", float("inf")) * (1 + bound(schema["items"], char_bytes, strings=strings))
    if kind == "object" and "additionalProperties" in schema:
        value = bound(schema["additionalProperties"], char_bytes, strings=strings)
        return 2 + schema.get("maxProperties", float("inf")) * (4 + char_bytes * key_bound(schema) + value)
    if kind == "object":
        sizes = {
            name: len(name) + 4 + bound(sub, char_bytes, strings=strings)
            for name, sub in schema.get("properties", {}).items()
        }
        exclusive = one_of(schema)
        alternatives = [size for name, size in sizes.items() if name in exclusive]
        rest = sum(size for name, size in sizes.items() if name not in exclusive)
        return 2 + rest + max(alternatives, default=0)
    return float("inf")  # no type: unbounded


def worst_spec_bytes(char_bytes: int) -> float:
    spec = _spec_schema()
    template = spec["properties"]["template"]
    container = template["properties"]["containers"]["items"]["properties"]
    budgeted = set(BUDGETED) | set(BUDGETED_LISTS) | set(PROBES)
    fixed = {k: v for k, v in container.items() if k not in budgeted}
    per_container = bound({"type": "object", "properties": fixed}, char_bytes)
    structure = {k: container[k] for k in [*BUDGETED, "command", "args", *PROBES]}
    overhead = bound({"type": "object", "properties": structure}, char_bytes, strings=False)
    env_item = bound(container["env"]["items"], char_bytes, strings=False) + 1
    mount_item = bound(container["volumeMounts"]["items"], char_bytes, strings=False) + 1
    containers = template["properties"]["containers"]["maxItems"] * (per_container + overhead + 40)
    rest_of_template = {k: v for k, v in template["properties"].items() if k != "containers"}
    template_bytes = (
        bound({"type": "object", "properties": rest_of_template}, char_bytes)
        + containers
        + TEMPLATE_ENV * env_item
        + TEMPLATE_MOUNTS * mount_item
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
    """The template's rules bound what this test assumes they bound, and name every budgeted field."""
    rules = _rules(_spec_schema()["properties"]["template"])
    assert any(f"size(c.env) : 0).sum() <= {TEMPLATE_ENV}" in rule for rule in rules)
    assert any(f"size(c.volumeMounts) : 0).sum() <= {TEMPLATE_MOUNTS}" in rule for rule in rules)
    (chars,) = [rule for rule in rules if rule.endswith(f"<= {TEMPLATE_CHARS}")]
    for field in [*BUDGETED.values(), *BUDGETED_LISTS.values(), *PROBES.values()]:
        assert field in chars, field
    for probe in PROBES.values():
        assert f"{probe}.grpc.service" in chars, probe
        assert f"{probe}.httpGet.path" in chars, probe
    needles = (
        "size(e.name)",
        "size(e.value)",
        "secretKeyRef.secret",
        "size(m.name)",
        "size(m.mountPath)",
        "size(h.value)",
    )
    for needle in needles:
        assert needle in chars, needle
    accessors = _spec_schema()["properties"]["iap"]["properties"]["accessors"]
    assert f"<= {LEVELLED_ACCESSORS}" in " ".join(r["rule"] for r in accessors["x-kubernetes-validations"])


def test_exclusive_fields_are_read_from_the_rules() -> None:
    """A volume counts one source, a probe one action, an env one value: the bound relies on the rules."""
    template = _spec_schema()["properties"]["template"]["properties"]
    volume = template["volumes"]["items"]
    assert one_of(volume) == {"secret", "cloudSqlInstance", "emptyDir", "nfs", "gcs", "filestore"}
    probe = template["containers"]["items"]["properties"]["startupProbe"]
    assert one_of(probe) == {"httpGet", "tcpSocket", "grpc"}
    assert one_of(template["containers"]["items"]["properties"]["env"]["items"]) == {"value", "valueSource"}


def test_the_largest_ascii_spec_fits_kubectls_last_applied_annotation() -> None:
    worst = worst_spec_bytes(1)
    print(f"worst-case spec, ASCII: {worst / 1024:.0f} KiB")
    assert worst < ANNOTATIONS_LIMIT


def test_the_largest_spec_with_the_worst_escaping_is_far_below_the_api_servers_limit() -> None:
    worst = worst_spec_bytes(6)
    print(f"worst-case spec, every character escaped: {worst / 1024:.0f} KiB")
    assert worst < ETCD_REQUEST_LIMIT * 0.75
