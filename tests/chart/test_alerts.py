"""The monitoring kit: the chart's PrometheusRule and Grafana dashboard, checked by the real promtool.

promtool is built from Prometheus' Go module at a pinned version and cached (testworld.tools.promtool_path).

- `promtool test rules` runs tests/chart/alerts-test.yaml against the rules the chart renders: every alert fires
  in one case and stays silent in another (this file checks that the test file has both for every alert);
- `promtool check rules` lints the rendered rules, and a rule file made of every query of the dashboard, so a
  query that does not parse fails here rather than as an empty panel;
- every metric name an alert or a panel reads is one the operator exports (from iaprun_operator.metrics'
  registry), so a renamed metric cannot silently blank a panel or mute an alert.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from chart.conftest import CHART, VALUES_MAX, HelmFailedError, Manifest, only
from iaprun_operator import metrics
from testworld import tools

Render = Callable[..., list[Manifest]]
ALERTS_TEST = Path(__file__).with_name("alerts-test.yaml")
DASHBOARD = CHART / "files" / "dashboard.json"
# Grafana's variables, replaced by values PromQL parses (what Grafana itself substitutes at query time).
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$job": ".+"}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return tools.promtool_path()


def run(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"promtool {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def rule_groups(render: Render, *args: str) -> list[dict[str, Any]]:
    manifests = render("--set", "metrics.prometheusRule.enabled=true", *args)
    groups: list[dict[str, Any]] = only(manifests, "PrometheusRule")["spec"]["groups"]
    return groups


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_unit_tests_of_every_alert_pass(render: Render, promtool: Path, tmp_path: Path) -> None:
    """`promtool test rules` passes alerts-test.yaml against the rendered PrometheusRule (release rel in ops)."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(render)}))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts-test.yaml")
    run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    out = run(promtool, "test", "rules", "alerts-test.yaml", cwd=tmp_path).stdout
    assert "SUCCESS" in out


def test_every_alert_has_a_firing_and_a_silent_case(render: Render) -> None:
    """alerts-test.yaml covers each alert the chart renders both ways, and tests no alert the chart lacks."""
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    rendered = set(alerts(rule_groups(render)))
    assert rendered == set(cases)
    assert {name for name, kinds in cases.items() if kinds != {True, False}} == set()
    assert len(rendered) == 6


def test_rule_values_select_label_and_disable(render: Render) -> None:
    """values-max: the selector replaces the job matcher, alertLabels label every alert, disabled drops one."""
    manifests = render(values=(VALUES_MAX,))
    rule = only(manifests, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    found = alerts(rule["spec"]["groups"])
    assert "IapRunAccessorGrantsExpiring" not in found
    for name, alert in found.items():
        assert alert["labels"]["team"] == "platform", name
        assert 'job="iap-run-operator", namespace="ops"' in alert["expr"], name
    pod_monitor = rule_groups(render, "--set", "metrics.podMonitor.enabled=true")
    assert 'job="ops/rel-iap-run-operator"' in alerts(pod_monitor)["IapRunOperatorDown"]["expr"]


def test_monitoring_without_metrics_is_refused(render: Render) -> None:
    """Alerts and a dashboard over metrics that are switched off would be silently empty: the render fails."""
    for kit in ("prometheusRule", "dashboard"):
        with pytest.raises(HelmFailedError, match="read the operator's metrics"):
            render("--set", "metrics.enabled=false", "--set", f"metrics.{kit}.enabled=true")


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard, Grafana's variables substituted."""
    queries: list[tuple[str, str]] = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {target['expr']}"
            queries.append((panel["title"], expr))
    return queries


def test_every_dashboard_query_parses(promtool: Path, tmp_path: Path) -> None:
    """Each panel query, as a recording rule, passes `promtool check rules` (PromQL parsed by Prometheus itself)."""
    queries = dashboard_queries()
    assert len(queries) >= 15
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]
    (tmp_path / "dashboard-rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run(promtool, "check", "rules", "dashboard-rules.yaml", cwd=tmp_path).stdout
    assert f"SUCCESS: {len(rules)} rules found" in out


def exported_names() -> set[str]:
    """Every sample name the operator's registry can export (counters' _total, histograms' _bucket/_sum/_count)."""
    assert metrics.OBJECTS is not None
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""], "unknown": [""]}
    return {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes.get(family.type, [""])}


def test_alerts_and_panels_read_only_exported_metrics(render: Render) -> None:
    """No alert or panel reads an iaprun_* metric the operator does not export (a typo, or a rename)."""
    names = exported_names()
    exprs = [alert["expr"] for alert in alerts(rule_groups(render)).values()] + [e for _, e in dashboard_queries()]
    used = {name for expr in exprs for name in re.findall(r"\biaprun_[a-z_]+\b", expr)}
    assert used - names == set()
    assert {"iaprun_objects", "iaprun_build_info", "iaprun_objects_with_expiring_accessors"} <= used


def test_dashboard_configmap_for_the_sidecar(render: Render) -> None:
    """The ConfigMap carries the sidecar's label, the chosen namespace and folder annotation, and the JSON as is."""
    manifests = render(values=(VALUES_MAX,))
    (config_map,) = [m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"].endswith("-dashboard")]
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Operators"}
    assert json.loads(config_map["data"]["iap-run-operator.json"]) == json.loads(DASHBOARD.read_text())
