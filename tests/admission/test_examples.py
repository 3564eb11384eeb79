"""Every manifest in examples/ is accepted by a real kube-apiserver running the CRD in crds/.

Server-side dry run with strict field validation: the schema, the defaults and the CEL rules all
run, and a field the CRD does not declare fails the example instead of being pruned silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
EXPECTED = {"hello", "multi-container", "additive-accessors", "time-limited-access", "adopt-existing"}


def test_the_documented_examples_exist() -> None:
    """The examples the docs point at are all there (so the parametrized test below covers them)."""
    assert {path.stem for path in EXAMPLES} >= EXPECTED


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_is_accepted(example: Path, iaprun_crd: str, kubectl: Any, namespace: str) -> None:
    """The example passes admission unchanged (server-side dry run, strict field validation)."""
    result = kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(example), check=False)
    assert result.returncode == 0, result.stderr
    assert "created (server dry run)" in result.stdout
