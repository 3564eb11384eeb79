"""Comparing a rendered log with its committed file, or (``IAPRUN_GOLDEN_UPDATE=1``) rewriting the file."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

LOGS = Path(__file__).resolve().parent / "logs"
UPDATE_ENV = "IAPRUN_GOLDEN_UPDATE"


def path_of(scenario: str) -> Path:
    return LOGS / f"{scenario}.log"


def updating() -> bool:
    return os.environ.get(UPDATE_ENV, "") not in ("", "0")


def difference(expected: str, actual: str, *, name: str) -> str:
    """A unified diff from the committed log to this run's (empty when they are the same)."""
    diff = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        fromfile=f"committed {name}",
        tofile=f"this run {name}",
    )
    return "".join(diff)


def check(scenario: str, actual: str) -> str:
    """The reason this run differs from the committed log ("" when it does not); writes it when updating."""
    path = path_of(scenario)
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != actual:
            path.write_text(actual)
        return ""
    if not path.exists():
        return f"no committed golden log {path.name}; run `make golden` and review the new file"
    diff = difference(path.read_text(), actual, name=path.name)
    if not diff:
        return ""
    return (
        f"what the operator sends to Google changed in scenario {scenario!r}.\n"
        "If the change is intended, run `make golden` and commit the reviewed logs.\n\n" + diff
    )
