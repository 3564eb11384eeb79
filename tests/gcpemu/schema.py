"""Request validation and response rendering driven by the discovery documents that ship in
google-api-python-client, plus the pinned run_v2 protos for enum numbers and Operation filtering.

Why: the real front end (ESF) rejects unknown fields and wrong JSON types with a precise envelope, and the
run_v2 client parses Operations strictly. Compiling each schema once into ``Message``/``Field`` trees keeps
validation a few dict look-ups per field.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from gcpemu.errors import ApiError, bad_request

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


@dataclass(slots=True, eq=False)
class Field:
    """One field of a compiled schema."""

    name: str
    snake: str
    kind: str  # string bool int32 int64 number enum message map any
    repeated: bool = False
    read_only: bool = False
    message: Message | None = None
    map_value: Field | None = None
    enum_numbers: dict[str, int] = field(default_factory=dict)
    enum_names: dict[int, str] = field(default_factory=dict)
    enum_type: str = ""
    in_proto: bool = True


@dataclass(slots=True, eq=False)
class Message:
    id: str
    fields: dict[str, Field] = field(default_factory=dict)
    proto_name: str = ""


_TYPE_NAMES = {
    "string": "TYPE_STRING",
    "bool": "TYPE_BOOL",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "number": "TYPE_DOUBLE",
}


class Discovery:
    """A discovery document compiled lazily into ``Message`` trees (one per schema id, cached)."""

    def __init__(self, filename: str) -> None:
        pkg = resources.files("googleapiclient") / "discovery_cache" / "documents" / filename
        self.doc: dict[str, Any] = json.loads(pkg.read_text())
        self.schemas: dict[str, Any] = self.doc["schemas"]
        self._compiled: dict[str, Message] = {}

    def message(self, schema_id: str) -> Message:
        msg = self._compiled.get(schema_id)
        if msg is not None:
            return msg
        msg = Message(schema_id)
        self._compiled[schema_id] = msg  # before recursion: schemas are recursive
        for name, spec in self.schemas[schema_id].get("properties", {}).items():
            msg.fields[name] = self._field(name, spec)
        return msg

    def _field(self, name: str, spec: dict[str, Any]) -> Field:
        if spec.get("type") == "array":
            f = self._field(name, spec.get("items", {}))
            f.repeated = True
            f.read_only = bool(spec.get("readOnly"))
            return f
        f = Field(name=name, snake=snake(name), kind="any", read_only=bool(spec.get("readOnly")))
        if "$ref" in spec:
            f.kind = "message"
            f.message = self.message(spec["$ref"])
            return f
        t = spec.get("type")
        fmt = spec.get("format")
        if t == "string":
            if "enum" in spec:
                f.kind = "enum"
                f.enum_numbers = {n: i for i, n in enumerate(spec["enum"])}
                f.enum_names = dict(enumerate(spec["enum"]))
            elif fmt in ("int64", "uint64"):
                f.kind = "int64"
            else:
                f.kind = "string"
        elif t == "boolean":
            f.kind = "bool"
        elif t == "integer":
            f.kind = "int32"
        elif t == "number":
            f.kind = "number"
        elif t == "object":
            ap = spec.get("additionalProperties")
            if isinstance(ap, dict) and ap.get("type") == "any":
                f.kind = "any"
            elif isinstance(ap, dict):
                f.kind = "map"
                f.map_value = self._field(name, ap)
            elif "properties" in spec:
                f.kind = "message"
                f.message = Message(name)
                for k, v in spec["properties"].items():
                    f.message.fields[k] = self._field(k, v)
        return f


@functools.cache
def discovery(filename: str) -> Discovery:
    return Discovery(filename)


# System parameters every Google API front end accepts, in their plain and ``$``-prefixed forms.
_SYSTEM_QUERY = frozenset(
    {
        "$.xgafv",
        "access_token",
        "alt",
        "callback",
        "fields",
        "key",
        "oauth_token",
        "prettyPrint",
        "quotaUser",
        "uploadType",
        "upload_protocol",
        "$alt",
        "$fields",
        "$prettyPrint",
        "$callback",
        "$key",
        "$quotaUser",
        "upload_type",
        "pretty_print",
        "quota_user",
    }
)


@functools.cache
def method_query_params(filename: str, method_path: str) -> frozenset[str]:
    """The query parameters a discovery method accepts (json and snake_case spellings, plus system ones)."""
    node: Any = discovery(filename).doc
    *resources_path, method = method_path.split(".")
    for r in resources_path:
        node = node["resources"][r]
    spec = node["methods"][method]
    names = set(_SYSTEM_QUERY)
    for name, p in spec.get("parameters", {}).items():
        if p.get("location") == "query":
            names.add(name)
            names.add(".".join(snake(s) for s in name.split(".")))
    return frozenset(names)


def bind_proto(msg: Message, descriptor: Any, _seen: set[int] | None = None) -> None:
    """Attach proto facts to a compiled discovery message: enum numbers and which fields the pinned proto
    knows (fields it lacks are never emitted inside Operations, whose parser is strict)."""
    seen = _seen if _seen is not None else set()
    if id(msg) in seen:
        return
    seen.add(id(msg))
    msg.proto_name = descriptor.full_name
    by_json = {f.json_name: f for f in descriptor.fields}
    for name, f in msg.fields.items():
        pf = by_json.get(name)
        if pf is None:
            f.in_proto = False
            continue
        if pf.enum_type is not None:
            f.enum_numbers = {v.name: v.number for v in pf.enum_type.values}
            f.enum_names = {v.number: v.name for v in pf.enum_type.values}
            f.enum_type = pf.enum_type.full_name
        mt = pf.message_type
        if mt is None:
            continue
        if mt.GetOptions().map_entry:
            vf = mt.fields_by_name["value"]
            if f.map_value is not None and f.map_value.message is not None and vf.message_type:
                bind_proto(f.map_value.message, vf.message_type, seen)
        elif f.message is not None and not mt.full_name.startswith("google.protobuf."):
            bind_proto(f.message, mt, seen)


# ----------------------------------------------------------------------------------------------------------
# Input: validate and normalise (enum ints -> names, int64 -> str, null -> absent, output-only dropped)


class _Violations:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []


def _jsonv(value: Any) -> str:
    return json.dumps(value)


def validate(body: Any, msg: Message, root: str, *, strict: bool = True, drop_read_only: bool = True) -> dict[str, Any]:
    """Validate ``body`` against ``msg``; return a normalised copy or raise the ESF 400.

    ``root`` is the request field that holds the body (``service`` for CreateServiceRequest, ``""`` when the
    body is the request itself); paths in messages use proto (snake_case) names as ESF does.
    """
    if not isinstance(body, dict):
        raise bad_request(
            f"Invalid JSON payload received. Expected an object at '{root}'."
            if root
            else "Invalid JSON payload received. Expected an object.",
            [(root, "Expected an object.")],
        )
    v = _Violations()
    out = _obj(body, msg, root, v, strict, drop_read_only)
    if v.items:
        raise bad_request("\n".join(d for _, d in v.items), v.items)
    return out


def _where(path: str) -> str:
    return f" at '{path}'" if path else ""


def _obj(body: dict[str, Any], msg: Message, path: str, v: _Violations, strict: bool, drop_ro: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = msg.fields
    for key, value in body.items():
        f = fields.get(key)
        if f is None:
            # proto JSON also accepts the original (snake_case) field name
            f = fields.get(camel(key))
            if f is None:
                if strict:
                    desc = f'Invalid JSON payload received. Unknown name "{key}"{_where(path)}: Cannot find field.'
                    v.items.append((path, desc))
                continue
            key = f.name
        if value is None:
            continue
        if f.read_only and drop_ro:
            continue
        sub = f"{path}.{f.snake}" if path else f.snake
        if f.repeated:
            if not isinstance(value, list):
                v.items.append((sub, f"Invalid value at '{sub}' ({_tname(f)}), {_jsonv(value)}"))
                continue
            out[key] = [_value(x, f, f"{sub}[{i}]", v, strict, drop_ro) for i, x in enumerate(value)]
        else:
            if isinstance(value, list):
                desc = (
                    f'Invalid JSON payload received. Unknown name "{key}"{_where(path)}: '
                    "Proto field is not repeating, cannot start list."
                )
                v.items.append((path, desc))
                continue
            out[key] = _value(value, f, sub, v, strict, drop_ro)
    return out


def _tname(f: Field) -> str:
    if f.kind == "enum":
        return f"type.googleapis.com/{f.enum_type}" if f.enum_type else "TYPE_ENUM"
    if f.kind == "message" and f.message is not None:
        return f"type.googleapis.com/{f.message.proto_name}" if f.message.proto_name else "TYPE_MESSAGE"
    return _TYPE_NAMES.get(f.kind, "TYPE_STRING")


def _value(value: Any, f: Field, path: str, v: _Violations, strict: bool, drop_ro: bool) -> Any:
    k = f.kind
    if k == "string":
        if isinstance(value, str):
            return value
    elif k == "bool":
        if isinstance(value, bool):
            return value
    elif k == "int32":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
    elif k == "int64":
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return value
    elif k == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif k == "enum":
        if isinstance(value, str) and value in f.enum_numbers:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in f.enum_names:
            return f.enum_names[value]
    elif k == "message":
        if isinstance(value, dict) and f.message is not None:
            return _obj(value, f.message, path, v, strict, drop_ro)
        if not isinstance(value, dict):
            parent, _, name = path.rpartition(".")
            v.items.append(
                (
                    path,
                    f'Invalid JSON payload received. Unknown name "{camel(name)}"{_where(parent)}: '
                    "Proto field is not repeating, cannot start list."
                    if isinstance(value, list)
                    else f"Invalid value at '{path}' ({_tname(f)}), {_jsonv(value)}",
                )
            )
            return None
    elif k == "map":
        if isinstance(value, dict) and f.map_value is not None:
            mv = f.map_value
            return {str(kk): _value(vv, mv, f"{path}[{kk}]", v, strict, drop_ro) for kk, vv in value.items()}
    else:  # any
        return value
    v.items.append((path, f"Invalid value at '{path}' ({_tname(f)}), {_jsonv(value)}"))
    return None


# ----------------------------------------------------------------------------------------------------------
# Output: omit defaults, enums as names or ints, optionally only proto-known fields


def render(obj: dict[str, Any], msg: Message, *, int_enums: bool = False, proto_only: bool = False) -> dict[str, Any]:
    """Render a stored resource as the wire JSON: default values (false, 0, "", [], {}) omitted, enums as
    names or (``$alt=json;enum-encoding=int``) integers, and with ``proto_only`` only fields the pinned
    proto knows."""
    out: dict[str, Any] = {}
    fields = msg.fields
    for key, value in obj.items():
        f = fields.get(key)
        if f is None:
            if not proto_only and not _is_default(value):
                out[key] = value
            continue
        if proto_only and not f.in_proto:
            continue
        if f.repeated:
            if not value:
                continue
            out[key] = [_rv(x, f, int_enums, proto_only, True) for x in value]
        else:
            r = _rv(value, f, int_enums, proto_only, False)
            if r is not _OMIT:
                out[key] = r
    return out


_OMIT: Any = object()


def _is_default(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def _rv(value: Any, f: Field, int_enums: bool, proto_only: bool, in_list: bool) -> Any:
    k = f.kind
    if k == "message":
        if not isinstance(value, dict) or f.message is None:
            return _OMIT
        return render(value, f.message, int_enums=int_enums, proto_only=proto_only)
    if k == "enum":
        if not in_list and (value == 0 or value == f.enum_names.get(0)):
            return _OMIT
        if int_enums and isinstance(value, str):
            return f.enum_numbers.get(value, value)
        return value
    if k == "map":
        if not value:
            return _OMIT
        mv = f.map_value
        if mv is not None and mv.kind == "message":
            return {kk: _rv(vv, mv, int_enums, proto_only, True) for kk, vv in value.items()}
        return dict(value)
    if k == "int64":
        if not in_list and (value in ("0", 0) or value is None):
            return _OMIT
        return str(value)
    if not in_list and _is_default(value) and k != "any":
        return _OMIT
    if k == "any" and (value is None or value == {} or value == []):
        return _OMIT
    return value


def check_required(value: Any, path: str, request: str) -> None:
    """Raise Cloud Run's 'required field not present' 400 when ``value`` is missing."""
    if value in (None, "", [], {}):
        msg = f"Violation in {request}.{path}: required field not present."
        raise bad_request(msg, [(f"Violation in {request}.{path}", "required field not present")])


__all__ = ["ApiError", "Discovery", "Field", "Message", "bind_proto", "discovery", "render", "validate"]
