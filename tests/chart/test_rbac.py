"""The chart's RBAC is exactly what the operator needs: sufficient, and every grant used.

- The table NEEDED below lists each (apiGroup, resource, verb) with the reason the operator needs it. The
  rendered ClusterRole (cluster-wide) and ClusterRole + Role (``watchNamespace``) must grant exactly that set:
  a grant the table does not justify, or a need the chart forgets, fails.
- Sufficient: the chart is installed into the real control plane, and the operator process runs with a token
  of the chart's ServiceAccount (TokenRequest) against the Google emulator; an IapRunService reaches Ready and
  the operator logs no permission error.
- Minimal: for each row of the table, the operator runs with every grant but that one, and the API server's
  refusal of exactly that verb on that resource shows up in the operator's log (kopf logs what it was refused).
  A grant the operator never exercises would produce no refusal, and its case would fail.

Nothing is mocked: real kube-apiserver with RBAC, the operator as a process, the emulator as a process.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chart.conftest import Manifest, Release, find, grants
from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess
from iaprun_operator.ledger import NAME as LEDGER
from integration.harness import OperatorProcess, apply, create_marked_service, manifest, wait_for
from testworld.fixtures import Runner

Render = Callable[..., list[Manifest]]
SINGLE_TENANT = '{"singleTenant": true}'
Grant = tuple[str, str, str]

NEEDED: dict[Grant, str] = {
    # kopf watches CRDs (list, then watch) so that it serves IapRunService as soon as its CRD is established,
    # even when the operator started first; without them it scans once at start-up only.
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"): "kopf's resource observer lists CRDs",
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): "...and watches them for changes",
    # The namespaces index (handlers.py): labels for the tenancy policy, the default-project annotation and the
    # uid of kube-system (the default cluster id). Namespaces are cluster-scoped.
    ("", "namespaces", "list"): "the namespaces index is filled by a list",
    ("", "namespaces", "watch"): "...and kept current by a watch",
    # The objects themselves: watched, and patched for the finalizer, kopf's progress annotations and the
    # last-handled configuration.
    ("iaprun.dev", "iaprunservices", "list"): "kopf's watcher starts with a list",
    ("iaprun.dev", "iaprunservices", "watch"): "...and then watches",
    ("iaprun.dev", "iaprunservices", "patch"): "finalizer, progress and diff-base annotations",
    # The orphan sweep asks the API server itself before it acts on a service whose owner seems gone.
    ("iaprun.dev", "iaprunservices", "get"): "the orphan sweep confirms an owner is gone",
    # Status goes through the status subresource (the CRD declares it), so the main resource's patch does not
    # cover it.
    ("iaprun.dev", "iaprunservices/status", "patch"): "conditions, observedGeneration, url, iap status",
    # Events on the objects (kopf.event posts core/v1 Events; it never reads or updates them).
    ("", "events", "create"): "Events for what the reconcile did",
    # The record of services left untouched at deletion (ObserveOnly, Paused): one ConfigMap in the operator's
    # namespace (a Role there; get and patch name the ConfigMap). Every sweep reads it; the finalizer creates it
    # when first needed and adds entries; the sweep removes entries whose service is gone.
    ("", "configmaps", "get"): "the orphan sweep reads the record of left services",
    ("", "configmaps", "create"): "the finalizer creates the record when it is first needed",
    ("", "configmaps", "patch"): "the finalizer adds entries, the sweep removes them",
}
LEDGER_GRANTS = {grant for grant in NEEDED if grant[1] == "configmaps"}


def test_chart_grants_exactly_the_table(render: Render) -> None:
    """Cluster-wide install: the operator's ClusterRole and the record's Role (in the release's namespace, naming
    its one ConfigMap) grant exactly NEEDED, nothing more, nothing less."""
    manifests = render()
    cluster_role = find(manifests, "ClusterRole", "rel-iap-run-operator")[0]
    assert grants(cluster_role["rules"]) == set(NEEDED) - LEDGER_GRANTS
    (role,) = find(manifests, "Role")
    assert role["metadata"]["namespace"] == "ops"
    assert grants(role["rules"]) == LEDGER_GRANTS
    named = {verb for rule in role["rules"] if rule.get("resourceNames") == [LEDGER] for verb in rule["verbs"]}
    assert named == {"get", "patch"}


def test_namespaced_install_grants_exactly_the_table(render: Render) -> None:
    """watchNamespace install: ClusterRole + Roles together grant exactly NEEDED, object rights only in the Role."""
    manifests = render("--set", "watchNamespace=team-a")
    cluster_role = find(manifests, "ClusterRole", "rel-iap-run-operator")[0]
    role = find(manifests, "Role", "rel-iap-run-operator")[0]
    ledger_role = find(manifests, "Role", "rel-iap-run-operator-left-services")[0]
    assert grants(cluster_role["rules"]) | grants(role["rules"]) | grants(ledger_role["rules"]) == set(NEEDED)
    assert not grants(cluster_role["rules"]) & grants(role["rules"])
    assert grants(ledger_role["rules"]) == LEDGER_GRANTS


@pytest.fixture
def emulator_url(gcp_emulator_process: EmulatorProcess) -> str:
    """The emulator, holding a service marked as owned by an object of this cluster that does not exist (and
    without a deletion policy, so the sweep only reports it): every sweep then asks the API server for it."""
    url = gcp_emulator_process.base_url
    if AdminClient(url).service("demo-project", "asia-northeast1", "rbac-orphan") is None:
        create_marked_service(
            url, "demo-project", "asia-northeast1", "rbac-orphan", "test-cluster/rbac-nowhere/gone", policy=None
        )
    return url


@pytest.fixture
def operators(tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    """Start operator processes (stopped at the end of the test)."""
    started: list[OperatorProcess] = []

    def start(kubeconfig: Path, google_endpoint: str, env: dict[str, str] | None = None) -> OperatorProcess:
        # A single-tenant policy: these tests are about RBAC, and the operator denies everything by default.
        env = {"IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS": "1", "IAPRUN_TENANCY_POLICY": SINGLE_TENANT, **(env or {})}
        proc = OperatorProcess(kubeconfig=str(kubeconfig), google_endpoint=google_endpoint, log_dir=tmp_path, env=env)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.mark.integration
@pytest.mark.parametrize("scope", ["cluster-wide", "watchNamespace"])
def test_operator_reaches_ready_with_the_charts_service_account(
    scope: str,
    release: Release,
    kubectl: Runner,
    namespace: str,
    sa_kubeconfig: Callable[[str, str], Path],
    emulator_url: str,
    operators: Callable[..., OperatorProcess],
    forget_objects: list[tuple[str, str]],
) -> None:
    """helm install (cluster-wide, or with watchNamespace: a Role), then the operator with a TokenRequest token of
    the chart's ServiceAccount reconciles an object to Ready (the Cloud Run service exists in the emulator, with IAP
    on), finalises its deletion (service deleted, finalizer removed), and the API server refused it nothing."""
    # Outside a pod the operator is told its namespace (the chart's downward API does that in a pod).
    env = {"IAPRUN_OPERATOR_NAMESPACE": namespace}
    if scope == "watchNamespace":
        env["IAPRUN_WATCH_NAMESPACE"] = namespace
    watched = ["--set", f"watchNamespace={namespace}"] if scope == "watchNamespace" else []
    release.install("--set", "tenancy.singleTenant=true", *watched)
    operator = operators(sa_kubeconfig(namespace, release.fullname), emulator_url, env)
    name = f"rbac-{uuid.uuid4().hex[:6]}"
    forget_objects.append((namespace, name))
    apply(kubectl, namespace, manifest(name))
    kubectl("wait", "-n", namespace, f"iaprunservice/{name}", "--for=condition=Ready", "--timeout=90s")
    service = AdminClient(emulator_url).service("demo-project", "asia-northeast1", name)
    assert service is not None
    assert service["iapEnabled"] is True
    kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--timeout=90s")
    assert AdminClient(emulator_url).service("demo-project", "asia-northeast1", name) is None
    log = operator.log_path.read_text()
    # RBAC refusals read `User "system:serviceaccount:..." cannot VERB resource ...`; kopf says "Not enough
    # permissions" when it degrades. (Other refusals, e.g. Events into another test's terminating namespace when
    # the operator finalises leftovers cluster-wide, are not about RBAC.)
    refusals = re.findall(r".*(?:cannot \w+ resource|Not enough permissions).*", log)
    assert refusals == []


def _rules_without(missing: Grant) -> list[dict[str, Any]]:
    by_resource: dict[tuple[str, str], list[str]] = {}
    for group, resource, verb in NEEDED:
        if (group, resource, verb) != missing:
            by_resource.setdefault((group, resource), []).append(verb)
    return [{"apiGroups": [g], "resources": [r], "verbs": verbs} for (g, r), verbs in by_resource.items()]


@pytest.fixture
def cluster_role_binding(kube_admin: Any) -> Iterator[Callable[[str, str, list[dict[str, Any]]], None]]:
    """Create a ClusterRole with the given rules bound to a ServiceAccount; both deleted after the test."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(kube_admin)
    names: list[str] = []

    def make(namespace: str, sa: str, rules: list[dict[str, Any]]) -> None:
        name = f"ablation-{uuid.uuid4().hex[:8]}"
        names.append(name)
        rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
            }
        )

    yield make
    for name in names:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


@pytest.mark.integration
@pytest.mark.parametrize("missing", list(NEEDED), ids=["/".join(filter(None, grant)) for grant in NEEDED])
def test_each_grant_is_used(
    missing: Grant,
    crd_installed: None,
    kubectl: Runner,
    namespace: str,
    sa_kubeconfig: Callable[[str, str], Path],
    cluster_role_binding: Callable[[str, str, list[dict[str, Any]]], None],
    emulator_url: str,
    operators: Callable[..., OperatorProcess],
    forget_objects: list[tuple[str, str]],
) -> None:
    """Without this one grant, the API server refuses the operator exactly that verb on that resource. The
    record's create and patch are only needed when an object is deleted under Paused (patch: once the record's
    ConfigMap exists)."""
    group, resource, verb = missing
    kubeconfig = sa_kubeconfig(namespace, "ablation")
    cluster_role_binding(namespace, "ablation", _rules_without(missing))
    operator = operators(kubeconfig, emulator_url, {"IAPRUN_OPERATOR_NAMESPACE": namespace})
    name = f"abl-{uuid.uuid4().hex[:6]}"
    forget_objects.append((namespace, name))
    leave = missing in LEDGER_GRANTS and verb != "get"
    if verb == "patch" and leave:
        kubectl("create", "configmap", LEDGER, "-n", namespace)
    apply(kubectl, namespace, manifest(name, managementPolicy="Paused") if leave else manifest(name))
    if leave:
        kubectl("wait", "-n", namespace, f"iaprunservice/{name}", "--for=condition=Synced=False", "--timeout=60s")
        kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--wait=false")
    refusal = re.compile(
        rf'cannot {verb} resource \\?"{re.escape(resource)}\\?" in API group \\?"{re.escape(group)}\\?"'
    )
    wait_for(
        lambda: refusal.search(operator.log_path.read_text()),
        timeout=60,
        what=f"the refusal of {verb} {resource} in the operator's log ({operator.log_path})",
    )


@pytest.fixture
def crd_installed(kubectl: Runner) -> None:
    from integration.harness import REPO

    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/iaprunservices.iaprun.dev")
