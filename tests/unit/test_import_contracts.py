"""What the import contracts cannot say: which part of ``kubernetes`` the pure core may use.

import-linter (``make lint``, ``[tool.importlinter]`` in pyproject.toml) sees an external package as one node, so
its "core is pure" contract has to ignore ``iaprun_operator.core.service -> kubernetes`` as a whole. This test
walks the core's source and proves the only ``kubernetes`` module it imports is the pure quantity parser, so a
``kubernetes.client`` (API I/O) import in core fails here even though import-linter lets it through.
"""

from __future__ import annotations

import ast
from pathlib import Path

import iaprun_operator.core

CORE = Path(iaprun_operator.core.__file__).parent
PURE_KUBERNETES = {"kubernetes.utils.quantity"}


def imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_core_uses_nothing_from_kubernetes_but_the_quantity_parser() -> None:
    used = {
        (path.name, module)
        for path in sorted(CORE.rglob("*.py"))
        for module in imported_modules(ast.parse(path.read_text(), str(path)))
        if module.split(".")[0] == "kubernetes"
        and module not in PURE_KUBERNETES
        and not any(module.startswith(f"{pure}.") for pure in PURE_KUBERNETES)
    }
    assert not used, f"core may import only {sorted(PURE_KUBERNETES)} from kubernetes; found {sorted(used)}"
