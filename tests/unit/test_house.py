"""The house rules of issue 19, checked on the source: no function in operator/ over 60 lines, and the kopf
wiring (handlers.py) and every step module under 250 lines, so each reads on one screen or two."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "iaprun_operator"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 250


def _functions(path: Path, root: Path = PACKAGE) -> list[tuple[str, int]]:
    """(where, lines) of every function in ``path``, nested ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (f"{path.relative_to(root)}:{node.lineno} {node.name}", (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_no_function_in_the_operator_is_over_60_lines() -> None:
    long = [
        f"{where}: {lines} lines"
        for path in sorted(PACKAGE.rglob("*.py"))
        for where, lines in _functions(path)
        if lines > MAX_FUNCTION_LINES
    ]
    assert not long, "functions over 60 lines (split them):\n" + "\n".join(long)


@pytest.mark.parametrize(
    "module",
    ["handlers.py", "passes.py", *sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "steps").glob("*.py"))],
)
def test_wiring_and_step_modules_are_under_250_lines(module: str) -> None:
    lines = len((PACKAGE / module).read_text().splitlines())
    assert lines < MAX_MODULE_LINES, f"{module} has {lines} lines"


def test_the_rule_sees_a_long_function(tmp_path: Path) -> None:
    """The walk counts nested functions too (the old handlers.register closure held the handlers)."""
    body = "\n".join(f"        x{i} = {i}" for i in range(70))
    source = tmp_path / "long.py"
    source.write_text(f"def outer() -> None:\n    def inner() -> None:\n{body}\n")
    found = {where.split(" ")[1]: lines for where, lines in _functions(source, tmp_path)}
    assert found["outer"] > MAX_FUNCTION_LINES
    assert found["inner"] > MAX_FUNCTION_LINES
