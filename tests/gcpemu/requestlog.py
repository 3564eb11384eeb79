"""The request log: every API call the emulator answered, with per-method counts and filters.

Tests assert on it ("the operator made no writes when nothing changed"). Requests tagged with
``X-Emulator-Tag`` (e.g. ``out-of-band``) are logged but excluded from ``counts()``.
"""

from __future__ import annotations

import collections
import fnmatch
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Entry:
    seq: int
    time: float
    method: str
    http: str
    path: str
    query: dict[str, str]
    status: int
    caller: str
    tag: str
    duration_ms: float
    error_status: str = ""
    body: Any = None
    """The parsed JSON request body (None when there was none)."""


class RequestLog:
    def __init__(self, size: int = 100_000) -> None:
        self.entries: collections.deque[Entry] = collections.deque(maxlen=size)
        self.counts: collections.Counter[str] = collections.Counter()
        self.status_counts: collections.Counter[str] = collections.Counter()
        self.seq = 0

    def add(self, e: Entry) -> None:
        self.entries.append(e)
        if e.tag != "out-of-band":
            self.counts[e.method] += 1
            self.status_counts[f"{e.method} {e.status}"] += 1

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def clear(self) -> None:
        self.entries.clear()
        self.counts.clear()
        self.status_counts.clear()

    def query(
        self,
        method: str | None = None,
        since: int = 0,
        status: int | None = None,
        tag: str | None = None,
        include_tagged: bool = True,
    ) -> list[dict[str, Any]]:
        out = []
        for e in self.entries:
            if e.seq <= since:
                continue
            if method and not fnmatch.fnmatchcase(e.method, method):
                continue
            if status is not None and e.status != status:
                continue
            if tag is not None and e.tag != tag:
                continue
            if not include_tagged and e.tag == "out-of-band":
                continue
            out.append(asdict(e))
        return out
