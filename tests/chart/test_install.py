"""The chart against the real control plane: install, upgrade, uninstall (no kubelet runs, so no pod starts and
nothing waits for one).

Proves that the API server accepts every object the chart renders (schema, RBAC escalation checks, the
restricted Pod Security profile), that an upgrade changes settings, the tenancy policy and the RBAC shape in
place, and that ``helm uninstall`` with the default ``crds.keep`` leaves the CRD and users' IapRunService
objects where they were. The CRD is shared by the whole test session, so no test here deletes it
(``crds.keep=false`` is covered by rendering in test_render.py).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import yaml

from chart.conftest import CHART, CRD_NAME, Release
from integration.harness import apply, kubectl_json, manifest
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration


def _manifest_objects(release: Release) -> list[dict[str, Any]]:
    out = release.helm("get", "manifest", release.name, "--namespace", release.namespace).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _exists(kubectl: Runner, obj: dict[str, Any], namespace: str) -> bool:
    kind = f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}" if "/" in obj["apiVersion"] else obj["kind"]
    args = ["get", kind, obj["metadata"]["name"]]
    if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
        args += ["-n", obj["metadata"].get("namespace", namespace)]
    return kubectl(*args, check=False).returncode == 0


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_install_creates_every_object_under_the_restricted_profile(
    release: Release, kubectl: Runner, namespace: str
) -> None:
    """With the namespace enforcing Pod Security `restricted`, `helm install` succeeds without a PodSecurity
    warning, every object of the release exists, and the CRD now belongs to the release."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted")
    installed = release.install()
    assert "PodSecurity" not in installed.stderr, installed.stderr
    objects = _manifest_objects(release)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ServiceAccount", "ConfigMap", "Service", "ClusterRole", "ClusterRoleBinding"} <= kinds
    assert "CustomResourceDefinition" in kinds
    missing = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if not _exists(kubectl, o, namespace)]
    assert missing == []
    crd = kubectl_json(kubectl, "get", "crd", CRD_NAME)
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release.name
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD_NAME}")
    deployment = kubectl_json(kubectl, "get", "-n", namespace, f"deployment/{release.fullname}")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65532


def test_the_restricted_check_can_fail(helm: Runner, kubectl: Runner, namespace: str) -> None:
    """Counter-test for the one above: a privileged setting does draw the PodSecurity warning from the server."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted")
    rendered = helm(
        "template",
        "rel",
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "containerSecurityContext.allowPrivilegeEscalation=true",
        "--show-only",
        "templates/deployment.yaml",
    ).stdout
    dry_run = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered)
    assert "would violate PodSecurity" in dry_run.stderr


def test_upgrade_changes_settings_policy_and_rbac_in_place(release: Release, kubectl: Runner, namespace: str) -> None:
    """`helm upgrade` with new values: the Deployment's settings and the tenancy ConfigMap change (and the pod
    template's checksum with it), and switching to watchNamespace creates the Role/RoleBinding there."""
    release.install()
    before = kubectl_json(kubectl, "get", "-n", namespace, f"deployment/{release.fullname}")
    rule = json.dumps([{"name": "tests", "namespaces": [namespace], "projects": ["demo-*"]}])
    release.upgrade(
        "--reuse-values",
        "--set",
        "config.workers=8",
        "--set-json",
        f"tenancy.rules={rule}",
        "--set",
        f"watchNamespace={namespace}",
    )
    status = json.loads(release.helm("status", release.name, "-n", namespace, "-o", "json").stdout)
    assert status["version"] == 2
    after = kubectl_json(kubectl, "get", "-n", namespace, f"deployment/{release.fullname}")
    assert _env(after)["IAPRUN_WORKERS"] == "8"
    assert _env(after)["IAPRUN_WATCH_NAMESPACE"] == namespace
    annotations = "checksum/tenancy"
    assert (
        after["spec"]["template"]["metadata"]["annotations"][annotations]
        != before["spec"]["template"]["metadata"]["annotations"][annotations]
    )
    policy = kubectl_json(kubectl, "get", "-n", namespace, f"configmap/{release.fullname}-tenancy")
    assert json.loads(policy["data"]["policy.json"]) == {"singleTenant": False, "rules": json.loads(rule)}
    role = kubectl_json(kubectl, "get", "-n", namespace, f"role/{release.fullname}")
    assert {r for rule_ in role["rules"] for r in rule_["resources"]} == {
        "iaprunservices",
        "iaprunservices/status",
        "events",
    }
    kubectl("get", "-n", namespace, f"rolebinding/{release.fullname}")


def test_uninstall_keeps_the_crd_and_users_objects(
    release: Release, kubectl: Runner, namespace: str, forget_objects: list[tuple[str, str]]
) -> None:
    """With crds.keep (the default), `helm uninstall` removes the operator's objects but leaves the CRD and the
    IapRunService objects users created (and so their Cloud Run services)."""
    release.install("--set", "tenancy.singleTenant=true")
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD_NAME}")
    name = f"kept-{uuid.uuid4().hex[:6]}"
    forget_objects.append((namespace, name))
    apply(kubectl, namespace, manifest(name))
    objects = _manifest_objects(release)
    uninstalled = release.uninstall()
    assert "kept due to the resource policy" in uninstalled.stdout + uninstalled.stderr
    gone = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    remaining = [f"{o['kind']}/{o['metadata']['name']}" for o in gone if _exists(kubectl, o, namespace)]
    assert remaining == []
    kubectl("get", "crd", CRD_NAME)
    kubectl("get", "-n", namespace, f"iaprunservice/{name}")
