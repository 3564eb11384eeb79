"""The chart's README.md (`helm show readme`) is generated from Chart.yaml and the documented values.yaml.

A failure here means: run `make docs` (or `python hack/gen_chart_readme.py`) and commit its output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from chart.conftest import CHART
from hackmodules import load


def test_chart_readme_is_generated_from_values() -> None:
    """The committed README is exactly what the generator makes of Chart.yaml and values.yaml."""
    assert (CHART / "README.md").read_text() == load("gen_chart_readme").render(), "stale: run `make docs`"


def test_every_value_is_in_the_readme() -> None:
    """Each documented leaf value has its row, so a new value cannot be left out of the README."""
    readme = (CHART / "README.md").read_text()
    for key in ("global", "commonLabels", "extraArgs", "metrics.podMonitor.enabled", "topologySpreadConstraints"):
        assert f"| `{key}` |" in readme


def test_helm_show_readme_shows_it(helm_offline: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """helm packages and shows it: what a user of the OCI chart reads."""
    assert "## Values" in helm_offline("show", "readme", str(CHART)).stdout
