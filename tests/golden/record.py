"""Rendering a scenario's request log as reviewable text, with volatile values masked deterministically.

A golden log is only useful if it changes exactly when what the operator sends changes. So each request is
written as method, path, sorted query and pretty JSON body (plus the answer's status, which makes the story
readable), and every value that differs from run to run (etags, timestamps, uids, operation and generated
revision names) is replaced by a placeholder numbered in order of first appearance: ``<etag-1>`` twice
means the same etag was sent twice, so masking hides the value but keeps the relation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# Keys whose values Google (or the emulator) makes up: never the same twice.
VOLATILE_KEYS = {
    "etag": "etag",
    "uid": "uid",
    "createTime": "time",
    "updateTime": "time",
    "deleteTime": "time",
    "expireTime": "time",
    "lastTransitionTime": "time",
}
# Made-up values inside strings: operation ids (UUIDs) and generated revision names (``svc-00001-x7k``).
VOLATILE_PATTERNS = (
    ("uuid", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ("revision", re.compile(r"\b[a-z][-a-z0-9]*-\d{5}-[a-z0-9]{3}\b")),
)


@dataclass(frozen=True)
class Request:
    """One API call as the emulator logged it: what was sent, and the answer's status."""

    http: str
    path: str
    query: dict[str, str]
    body: Any
    method: str
    status: int
    error_status: str = ""

    @classmethod
    def from_entry(cls, entry: Any) -> Request:
        return cls(
            http=entry.http,
            path=entry.path,
            query=dict(entry.query),
            body=entry.body,
            method=entry.method,
            status=entry.status,
            error_status=entry.error_status,
        )


@dataclass
class Section:
    """One step of a scenario: a reconcile or finalize pass with its requests and outcome, or a note."""

    title: str
    requests: list[Request] = field(default_factory=list)
    outcome: str = ""


class Masker:
    """Replaces volatile values by ``<kind-N>``, N counting distinct values of that kind in order seen."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._seen:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._seen[key] = f"<{kind}-{self._counts[kind]}>"
        return self._seen[key]

    def text(self, value: str) -> str:
        for kind, pattern in VOLATILE_PATTERNS:
            value = pattern.sub(lambda m, kind=kind: self.placeholder(kind, m.group(0)), value)  # type: ignore[misc]
        return value

    def json(self, value: Any, key: str = "") -> Any:
        if key in VOLATILE_KEYS and isinstance(value, str | int) and value != "":
            return self.placeholder(VOLATILE_KEYS[key], str(value))
        if isinstance(value, dict):
            return {k: self.json(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def render_request(request: Request, mask: Masker) -> list[str]:
    query = "&".join(f"{k}={mask.text(v)}" for k, v in sorted(request.query.items()))
    answer = f"{request.status} {request.error_status}".rstrip()
    lines = [f"{request.http} {mask.text(request.path)}{'?' + query if query else ''}  ({request.method}) -> {answer}"]
    if request.body is not None:
        body = json.dumps(mask.json(request.body), indent=2, sort_keys=True)
        lines += ["  " + line for line in body.splitlines()]
    return lines


def render(scenario: str, doc: str, sections: list[Section]) -> str:
    """The golden text of a scenario: a header, then each step's requests and outcome."""
    mask = Masker()
    lines = [f"# golden request log: {scenario}", *(f"# {line}".rstrip() for line in doc.strip().splitlines())]
    lines.append("# regenerate after a deliberate change: make golden  (tests/golden/README.md)")
    for number, section in enumerate(sections, 1):
        lines += ["", f"## {number}. {section.title}"]
        for request in section.requests:
            lines += render_request(request, mask)
        if section.outcome:
            lines.append(f"=> {mask.text(section.outcome)}")
    return "\n".join(lines) + "\n"
