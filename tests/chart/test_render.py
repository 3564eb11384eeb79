"""The chart as text: lint, render and schema, with the pinned helm 4 and no cluster.

Matrix: default values and tests/chart/values-max.yaml (every value set) through ``helm lint --strict`` and
``helm template``; the generated schema rejecting a misspelled key at each nesting level; every ``fail`` in
_helpers.tpl for contradictory values; and what the rendered objects must say (restricted security
context, single Recreate replica, the CRD equal to crds/, each IAPRUN_* setting reachable from values and
the tenancy policy accepted by the operator's own parser). Nothing is mocked: helm is the real binary.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from chart.conftest import CHART, VALUES_MAX, HelmFailedError, Manifest, find, grants, only
from iaprun_operator.core.tenancy import TenancyPolicy
from iaprun_operator.settings import from_env
from integration.harness import REPO

Render = Callable[..., list[Manifest]]
Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("values", [(), (VALUES_MAX,)], ids=["defaults", "values-max"])
def test_lint_strict_and_template_pass(helm_offline: Helm, render: Render, values: tuple[Path, ...]) -> None:
    """`helm lint --strict` and `helm template` succeed for the defaults and for the maximal values file."""
    files = [arg for path in values for arg in ("-f", str(path))]
    helm_offline("lint", "--strict", str(CHART), *files)
    kinds = {m["kind"] for m in render(values=values)}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"} <= kinds


def test_values_max_renders_every_optional_object(render: Render) -> None:
    """The maximal values file switches on every optional object, so the template test above covers them all."""
    kinds = [m["kind"] for m in render(values=(VALUES_MAX,))]
    for kind in (
        "ServiceMonitor",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Service",
        "PrometheusRule",
    ):
        assert kind in kinds
    assert kinds.count("ClusterRole") == 3  # the operator's, plus aggregated view and edit
    assert kinds.count("ConfigMap") == 2  # the tenancy policy and the Grafana dashboard


@pytest.mark.parametrize(
    "misspelled",
    [
        "replicaCount=2",
        "image.tagg=x",
        "config.quotas.iapPerMinit=1",
        "crds.kepp=false",
        "podSecurityContext.runAsUsr=1",
    ],
)
def test_schema_rejects_a_misspelled_value(render: Render, misspelled: str) -> None:
    """additionalProperties: false at every level: an unknown key fails the render, naming the key."""
    with pytest.raises(HelmFailedError) as failed:
        render("--set", misspelled)
    key = misspelled.split("=")[0].rsplit(".", 1)[-1]
    assert "additional properties" in failed.value.stderr
    assert key in failed.value.stderr


def test_schema_rejects_a_wrong_type(render: Render) -> None:
    """Types come from the defaults: a string where a number belongs is refused before rendering."""
    with pytest.raises(HelmFailedError):
        render("--set-string", "config.workers=many")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "serviceAccount.create=false"], "serviceAccount.create=false needs serviceAccount.name"),
        (["--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"], "nothing to scrape"),
        (["--set", "metrics.port=8081"], "need their own ports"),
        (["--set", "podDisruptionBudget.enabled=true", "--set", "podDisruptionBudget.minAvailable=1"], "not both"),
        (["--set", "rbac.create=false"], "rbac.aggregate=true needs rbac.create=true"),
        (
            [
                "--set",
                "config.googleApiEndpoint=http://127.0.0.1:1",
                "--set",
                "serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=a@p.iam.gserviceaccount.com",
            ],
            "contradicts a Workload Identity annotation",
        ),
    ],
    ids=[
        "sa-without-name",
        "monitor-without-metrics",
        "port-clash",
        "pdb-both",
        "aggregate-without-rbac",
        "emu-and-wi",
    ],
)
def test_contradictory_values_fail_with_a_message(render: Render, args: list[str], message: str) -> None:
    """Each `fail` in _helpers.tpl: the render stops and says which values contradict each other."""
    with pytest.raises(HelmFailedError) as failed:
        render(*args)
    assert message in failed.value.stderr


def test_deployment_is_one_restricted_recreated_replica(render: Render) -> None:
    """One active operator (replicas 1, Recreate), kopf's liveness probe, and the restricted Pod Security profile:
    non-root 65532, seccomp RuntimeDefault, no privilege escalation, no capabilities, read-only root with /tmp."""
    deployment = only(render(), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert "--liveness=http://0.0.0.0:8081/healthz" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {"name": "healthz", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]


def test_every_operator_setting_is_reachable_from_values(render: Render) -> None:
    """Each IAPRUN_* variable the operator reads is set by the chart (the inline tenancy policy is the file's
    alternative), no other IAPRUN_* variable is set, and the values survive the operator's own parser."""
    settings_source = (REPO / "operator" / "iaprun_operator" / "settings.py").read_text()
    read = set(re.findall(r'"(IAPRUN_[A-Z_]+)"', settings_source)) - {"IAPRUN_TENANCY_POLICY"}
    manifests = render(values=(VALUES_MAX,))
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "pod-name") for e in container["env"] if e["name"].startswith("IAPRUN_")}
    assert set(env) == read - {"IAPRUN_GOOGLE_API_ENDPOINT"}  # empty in values-max: not set at all
    namespace = next(e for e in container["env"] if e["name"] == "IAPRUN_OPERATOR_NAMESPACE")  # the pod's own
    assert namespace["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    policy_json = find(manifests, "ConfigMap", "iaprun-max-tenancy")[0]["data"]["policy.json"]
    settings = from_env({**env, "IAPRUN_TENANCY_POLICY_FILE": "", "IAPRUN_TENANCY_POLICY": policy_json})
    assert settings.workers == 8
    assert settings.drift_interval == 120.5
    assert settings.watch_namespace == "team-a"
    assert settings.default_project == "my-project"
    assert settings.metrics_port == 9090
    assert settings.tenancy == TenancyPolicy.from_dict(json.loads(policy_json))
    assert len(json.loads(policy_json)["rules"]) == 2


def test_metrics_off_means_port_zero_and_no_service(render: Render) -> None:
    """metrics.enabled=false turns the endpoint off in the operator (port 0) and drops the Service."""
    manifests = render("--set", "metrics.enabled=false")
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert {"name": "IAPRUN_METRICS_PORT", "value": "0"} in container["env"]
    assert find(manifests, "Service") == []


def test_tenancy_change_rolls_the_pod(render: Render) -> None:
    """The operator reads its policy once, so the pod template carries a checksum of it."""

    def checksum(*args: str) -> str:
        deployment = only(render(*args), "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/tenancy"])

    assert checksum() != checksum("--set", "tenancy.rules[0].name=a", "--set", "tenancy.rules[0].namespaces[0]=team-a")


def test_crd_template_is_the_crd_in_crds(render: Render) -> None:
    """The chart's CRD is crds/iaprun.dev_iaprunservices.yaml (same spec), labelled, and kept on uninstall (and by
    Argo CD, which ignores Helm's resource policy)."""
    source = yaml.safe_load((REPO / "crds" / "iaprun.dev_iaprunservices.yaml").read_text())
    crd = only(render(), "CustomResourceDefinition")
    assert crd["spec"] == source["spec"]
    assert crd["metadata"]["name"] == source["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep",
        "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
    }
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crd_switches(render: Render) -> None:
    """crds.keep=false drops the keep annotation; crds.enabled=false drops the CRD."""
    crd = only(render("--set", "crds.keep=false"), "CustomResourceDefinition")
    assert "annotations" not in crd["metadata"]
    assert find(render("--set", "crds.enabled=false"), "CustomResourceDefinition") == []


def test_watch_namespace_moves_object_rights_into_a_role(render: Render) -> None:
    """With watchNamespace, rights on IapRunService objects and Events live in a Role in that namespace only;
    the ClusterRole keeps what is cluster-scoped by nature (CRDs, namespaces)."""
    manifests = render("--set", "watchNamespace=team-a")
    cluster_role = find(manifests, "ClusterRole", "rel-iap-run-operator")[0]
    role = find(manifests, "Role", "rel-iap-run-operator")[0]
    assert role["metadata"]["namespace"] == "team-a"
    assert find(manifests, "RoleBinding", "rel-iap-run-operator")[0]["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": "rel-iap-run-operator",
        "namespace": "ops",
    }
    cluster_wide = {resource for _, resource, _ in grants(cluster_role["rules"])}
    assert cluster_wide == {"customresourcedefinitions", "namespaces"}
    assert {resource for _, resource, _ in grants(role["rules"])} == {
        "iaprunservices",
        "iaprunservices/status",
        "events",
    }
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert {"name": "IAPRUN_WATCH_NAMESPACE", "value": "team-a"} in container["env"]


def test_aggregated_roles_give_tenants_objects_but_never_status(render: Render) -> None:
    """rbac.aggregate: view reads IapRunService objects, edit also writes them; neither may write status."""
    roles = {m["metadata"]["name"]: m for m in find(render(), "ClusterRole")}
    view, edit = roles["rel-iap-run-operator-view"], roles["rel-iap-run-operator-edit"]
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    written = {(r, v) for _, r, v in grants(view["rules"]) | grants(edit["rules"]) if v not in ("get", "list", "watch")}
    assert ("iaprunservices", "create") in written
    assert not any(resource.endswith("/status") for resource, _ in written)
    assert find(render("--set", "rbac.aggregate=false"), "ClusterRole", "rel-iap-run-operator-view") == []


def test_optional_objects_are_off_by_default(render: Render) -> None:
    """The monitors and rules (they need the prometheus-operator CRDs), the dashboard, PodDisruptionBudget and
    NetworkPolicy are opt-in."""
    manifests = render()
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    # The one Role by default: the record of left services, in the release's namespace (test_rbac.py).
    assert [m["metadata"]["name"] for m in find(manifests, "Role")] == ["rel-iap-run-operator-left-services"]
    assert [m["metadata"]["name"] for m in find(manifests, "ConfigMap")] == ["rel-iap-run-operator-tenancy"]
