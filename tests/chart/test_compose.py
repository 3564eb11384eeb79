"""The chart composes: as a subchart of an umbrella chart, and with the knobs every operator chart is expected to
have (extra args, env, volumes, topology spread, common labels, pod labels and annotations, scrape relabelings,
a PodMonitor), and the CRD survives Argo CD's pruning.

Rendered with the pinned helm 4 and no cluster. The umbrella chart is made in the test: a parent chart that
lists this one as a ``file://`` dependency, sets ``global`` values (which Helm hands to every subchart and which
the subchart's schema must accept) and configures the subchart under its name.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart.conftest import CHART, VALUES_MAX, HelmFailedError, Manifest, find, only

Render = Callable[..., list[Manifest]]
Helm = Callable[..., subprocess.CompletedProcess[str]]

UMBRELLA_VALUES: dict[str, Any] = {
    "global": {"imageRegistry": "registry.example.com", "storageClass": "fast"},
    "iap-run-operator": {
        "commonLabels": {"example.com/team": "platform"},
        "config": {"defaultProject": "my-project"},
        "metrics": {"serviceMonitor": {"enabled": True}},
    },
}


@pytest.fixture
def umbrella(tmp_path: Path, helm_offline: Helm) -> Path:
    """A parent chart with this chart as a file:// dependency, its own template, and global values."""
    chart = tmp_path / "platform"
    (chart / "templates").mkdir(parents=True)
    meta = {
        "apiVersion": "v2",
        "name": "platform",
        "version": "1.0.0",
        "dependencies": [
            {"name": "iap-run-operator", "version": ">=0.0.0-0", "repository": f"file://{CHART}"},
        ],
    }
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    (chart / "values.yaml").write_text(yaml.safe_dump(UMBRELLA_VALUES))
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-platform\n"
        "data:\n  registry: {{ .Values.global.imageRegistry | quote }}\n"
    )
    helm_offline("dependency", "update", str(chart))
    return chart


def test_umbrella_chart_lints_and_renders_the_subchart(helm_offline: Helm, umbrella: Path) -> None:
    """As a dependency with `global` values set, the chart passes `helm lint --strict` and `helm template`, and
    the values the parent sets under its name reach it."""
    helm_offline("lint", "--strict", str(umbrella))
    out = helm_offline("template", "plat", str(umbrella), "--namespace", "ops").stdout
    manifests = [doc for doc in yaml.safe_load_all(out) if doc]
    deployment = only(manifests, "Deployment")
    assert deployment["metadata"]["labels"]["example.com/team"] == "platform"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "IAPRUN_DEFAULT_PROJECT", "value": "my-project"} in container["env"]
    assert find(manifests, "ServiceMonitor")
    assert only(manifests, "CustomResourceDefinition")
    assert find(manifests, "ConfigMap", "plat-platform")


def test_umbrella_chart_packaged_dependency_renders(helm_offline: Helm, umbrella: Path, tmp_path: Path) -> None:
    """The same through `helm package` of the subchart (what `helm dependency update` fetches from a registry)."""
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    helm_offline("package", str(CHART), "--destination", str(packaged))
    (archive,) = packaged.glob("iap-run-operator-*.tgz")
    shutil.rmtree(umbrella / "charts")
    (umbrella / "charts").mkdir()
    shutil.copy(archive, umbrella / "charts")
    helm_offline("template", "plat", str(umbrella), "--namespace", "ops")


def test_global_is_accepted_but_other_unknown_keys_are_not(render: Render) -> None:
    """`global` is the one key open to anything (it belongs to the parent); a misspelling next to it still fails."""
    render("--set", "global.anything=1")
    with pytest.raises(HelmFailedError, match="additional properties"):
        render("--set", "globals.anything=1")


def _pod(manifests: list[Manifest]) -> dict[str, Any]:
    return dict(only(manifests, "Deployment")["spec"]["template"])


def test_values_max_knobs_reach_the_pod(render: Render) -> None:
    """extraArgs, extraEnv, extraVolumes/Mounts, topology spread, pod labels/annotations: each lands where it
    belongs, after the chart's own entries (which stay)."""
    template = _pod(render(values=(VALUES_MAX,)))
    pod = template["spec"]
    (container,) = pod["containers"]
    assert container["args"][-1] == "--debug-extra-flag"
    assert container["args"][0] == "--log-format=plain"
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"} in container["env"]
    assert {"name": "proxy-ca", "mountPath": "/etc/ssl/proxy-ca", "readOnly": True} in container["volumeMounts"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "proxy-ca", "configMap": {"name": "proxy-ca"}} in pod["volumes"]
    zone, host = pod["topologySpreadConstraints"]
    assert zone["labelSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "iaprun", "app.kubernetes.io/instance": "rel"}
    }
    assert host["labelSelector"] == {"matchLabels": {"app.kubernetes.io/name": "iaprun"}}  # given: kept as is
    assert template["metadata"]["labels"]["team"] == "platform"
    assert template["metadata"]["annotations"]["example.com/audit"] == "true"


def test_common_labels_on_every_object_and_the_pod(render: Render) -> None:
    """commonLabels label every object the chart makes and the pod; the selector stays as it was (immutable)."""
    manifests = render(values=(VALUES_MAX,))
    for manifest in manifests:
        assert manifest["metadata"]["labels"]["example.com/team"] == "platform", manifest["kind"]
    deployment = only(manifests, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"]["example.com/cost-centre"] == "1234"
    assert deployment["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "iaprun", "app.kubernetes.io/instance": "rel"}
    }


@pytest.mark.parametrize("key", ["commonLabels", "podLabels"])
@pytest.mark.parametrize("label", ["app.kubernetes.io/name", "app.kubernetes.io/component", "helm.sh/chart"])
def test_extra_labels_may_not_redefine_the_charts_own(render: Render, key: str, label: str) -> None:
    """A label the chart sets itself (some select the pod) cannot be redefined: the render fails naming it."""
    with pytest.raises(HelmFailedError, match="may not redefine the chart's own label"):
        render("--set-string", f"{key}.{label.replace('.', chr(92) + '.')}=x")


def test_scrape_relabelings_and_the_pod_monitor(render: Render) -> None:
    """ServiceMonitor relabelings reach its endpoint; the PodMonitor scrapes the pod's metrics port with its own."""
    manifests = render(values=(VALUES_MAX,))
    (endpoint,) = only(manifests, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["relabelings"] == [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    assert find(manifests, "PodMonitor") == []
    manifests = render(
        "--set",
        "metrics.serviceMonitor.enabled=false",
        "--set",
        "metrics.podMonitor.enabled=true",
        values=(VALUES_MAX,),
    )
    monitor = only(manifests, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "http-metrics"
    assert endpoint["interval"] == "15s"
    assert endpoint["metricRelabelings"][0]["regex"] == "iaprun_reconcile_duration_seconds_bucket"
    (container,) = _pod(manifests)["spec"]["containers"]
    assert "http-metrics" in {port["name"] for port in container["ports"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "metrics.podMonitor.enabled=true", "--set", "metrics.serviceMonitor.enabled=true"], "scraped twice"),
        (["--set", "metrics.podMonitor.enabled=true", "--set", "metrics.enabled=false"], "nothing to scrape"),
    ],
    ids=["both-monitors", "pod-monitor-without-metrics"],
)
def test_contradictory_monitor_values_fail(render: Render, args: list[str], message: str) -> None:
    """Two monitors would scrape every series twice; a monitor without metrics has nothing to scrape."""
    with pytest.raises(HelmFailedError, match=message):
        render(*args)


def test_crd_is_neither_pruned_nor_deleted_by_argo_cd(render: Render) -> None:
    """Argo CD renders the chart with `helm template` and ignores Helm's resource policy: the CRD carries its
    sync options, so removing it from Git (or deleting the Application) does not delete every object."""
    annotations = only(render(), "CustomResourceDefinition")["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    assert annotations["helm.sh/resource-policy"] == "keep"


def test_chart_metadata_says_where_it_comes_from() -> None:
    """Chart.yaml has home and sources (what `helm show chart` and Artifact Hub display)."""
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["home"].startswith("https://")
    assert meta["sources"]
    assert meta["version"] == meta["appVersion"]


def _leaves(values: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        return {leaf for key, child in values.items() for leaf in _leaves(child, (*path, key))}
    return {path}


def test_values_max_sets_every_value() -> None:
    """tests/chart/values-max.yaml names every value of values.yaml, so lint and template cover every knob."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    maximal = yaml.safe_load(VALUES_MAX.read_text())
    set_there = _leaves(maximal)
    missing = {leaf for leaf in _leaves(defaults) if not any(given[: len(leaf)] == leaf for given in set_there)}
    assert {".".join(leaf) for leaf in missing} == set()
