"""hack/release.py's pure parts: one version, the chart pinned to the pushed image, the CHANGELOG template.

The end-to-end release against a real registry is tests/chart/test_release.py.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from hackmodules import load

REPO = Path(__file__).resolve().parents[2]


release = load("release")
DIGEST = "sha256:" + "ab" * 32


def test_every_copy_of_the_version_is_pyprojects() -> None:
    """Chart.yaml version and appVersion and __version__ equal pyproject.toml's version (bump them together)."""
    assert release.version_mismatches(release.project_version()) == []


def test_a_disagreeing_version_is_named() -> None:
    """The release refuses to run when a copy disagrees, and says which."""
    problems = release.version_mismatches("9.9.9")
    assert len(problems) == 3
    assert any("Chart.yaml appVersion" in p for p in problems)


def test_pinned_values_point_at_the_pushed_image_and_keep_the_rest() -> None:
    """Only image.repository and image.digest change; comments and every other value stay as they were."""
    values = (REPO / "charts" / "iap-run-operator" / "values.yaml").read_text()
    pinned = release.pinned_values(values, "127.0.0.1:5000/x/iap-run-operator", DIGEST)
    before, after = yaml.safe_load(values), yaml.safe_load(pinned)
    assert after["image"] == {**before["image"], "repository": "127.0.0.1:5000/x/iap-run-operator", "digest": DIGEST}
    assert {k: v for k, v in after.items() if k != "image"} == {k: v for k, v in before.items() if k != "image"}
    assert pinned.count("\n") == values.count("\n")


@pytest.mark.parametrize(
    ("registry", "plain"),
    [("127.0.0.1:5000/x", True), ("localhost:5000", True), ("registry.example.com/platform", False)],
)
def test_only_loopback_registries_use_plain_http(registry: str, plain: bool) -> None:
    assert release.plain_http(registry) is plain


def test_changelog_template_is_written_once_above_older_entries(tmp_path: Path) -> None:
    """A new version's entry goes on top, with the artefacts; a second run leaves the file alone."""
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text("# Changelog\n\n## 0.0.9 - 2026-01-01\n\nOld.\n")
    released = release.Released(
        "0.1.0", "r/iap-run-operator:0.1.0", DIGEST, "oci://r/charts/iap-run-operator", DIGEST, "/d/p.txt"
    )
    assert release.write_changelog(changelog, released, datetime.date(2026, 12, 1))
    text = changelog.read_text()
    assert text.index("## 0.1.0 - 2026-12-01") < text.index("## 0.0.9")
    assert f"`r/iap-run-operator@{DIGEST}`" in text
    assert "--version 0.1.0" in text
    assert not release.write_changelog(changelog, released, datetime.date(2026, 12, 2))
    assert changelog.read_text() == text
