"""The Argo CD health check in deploy/argocd/health.lua, run on every test case beside it.

Cases are in Argo CD's own format (``health_test.yaml`` listing ``testdata/*.yaml`` with the expected
``healthStatus``), so the directory can be contributed to Argo CD's ``resource_customizations`` as is.
The script runs in a real Lua 5.1 interpreter (PyPI ``lupa``; Argo CD's gopher-lua is Lua 5.1), with the
object bound to the global ``obj`` and only the libraries Argo CD's VM opens, as Argo CD does. Nothing
is mocked. Also proven: every fixture is listed (none is silently unchecked), and the argocd-cm patch we
ship carries the script unchanged.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "deploy" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
CASES: list[dict[str, Any]] = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]
CM_KEY = "resource.customizations.health.iaprun.dev_IapRunService"


def _lua() -> Any:
    """A fresh Lua 5.1 runtime. Skipped only while lupa is not in uv.lock yet; once locked it must import."""
    if importlib.util.find_spec("lupa") is None:
        if 'name = "lupa"' in (REPO / "uv.lock").read_text():
            pytest.fail("lupa is in uv.lock but not installed: run `make venv`")
        pytest.skip("lupa (PyPI, the Lua interpreter) is not in uv.lock yet")
    from lupa import lua51

    return lua51.LuaRuntime(unpack_returned_tuples=True)


def health(obj: dict[str, Any]) -> dict[str, str]:
    """Run health.lua on ``obj`` the way Argo CD does: ``obj`` is a global, the script returns a table."""
    lua = _lua()
    # Argo CD's VM opens only the base, package and table libraries (plus a safe os subset): take away the
    # rest, so a script that calls string.*, math.* or io.* fails here as it would in Argo CD.
    lua.execute("string, math, io, os, debug, coroutine = nil, nil, nil, nil, nil, nil")
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return {"status": str(result["status"]), "message": str(result["message"] or "")}


def test_every_fixture_is_a_listed_case() -> None:
    """A fixture in testdata/ that health_test.yaml does not list would never be checked."""
    listed = {case["inputPath"] for case in CASES}
    on_disk = {f"testdata/{path.name}" for path in (ARGOCD / "testdata").glob("*.yaml")}
    assert listed == on_disk
    assert {case["healthStatus"]["status"] for case in CASES} == {"Healthy", "Progressing", "Degraded"}


@pytest.mark.parametrize("case", CASES, ids=lambda case: Path(case["inputPath"]).stem)
def test_health(case: dict[str, Any]) -> None:
    """health.lua gives the expected status and message for this object."""
    obj = yaml.safe_load((ARGOCD / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]


def test_the_argocd_cm_patch_carries_the_script_unchanged() -> None:
    """deploy/argocd/argocd-cm-patch.yaml is what users apply: it must hold exactly health.lua."""
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"]["name"] == "argocd-cm"
    assert patch["data"][CM_KEY] == SCRIPT
