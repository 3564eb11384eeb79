"""RBAC is enforced: a ServiceAccount may do exactly what its Role grants.

The operator's Helm chart ships a Role/ClusterRole; only a control plane with RBAC on can prove that
those rules are sufficient and no broader than needed. Tokens come from the TokenRequest API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from testworld.fixtures import Runner

pytestmark = pytest.mark.integration


def _grant_configmap_reader(kube_admin: Any, namespace: str, sa: str) -> None:
    rbac = client.RbacAuthorizationV1Api(kube_admin)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=sa, namespace=namespace)],
        ),
    )


def test_service_account_gets_only_what_its_role_grants(
    namespace: str, kube_admin: Any, sa_kubeconfig: Callable[[str, str], Path]
) -> None:
    """With a token from TokenRequest, the SA may list ConfigMaps (granted) but not create them, nor read
    Secrets, nor read ConfigMaps in another namespace (all 403)."""
    kubeconfig = sa_kubeconfig(namespace, "reader")
    _grant_configmap_reader(kube_admin, namespace, "reader")

    with config.new_client_from_config(config_file=str(kubeconfig)) as sa_api:
        review = client.AuthenticationV1Api(sa_api).create_self_subject_review(
            client.V1SelfSubjectReview(metadata=client.V1ObjectMeta())
        )
        assert review.status.user_info.username == f"system:serviceaccount:{namespace}:reader"

        core = client.CoreV1Api(sa_api)
        assert core.list_namespaced_config_map(namespace).items is not None  # allowed

        forbidden: list[Callable[[], object]] = [
            lambda: core.create_namespaced_config_map(
                namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="nope"))
            ),
            lambda: core.list_namespaced_secret(namespace),
            lambda: core.list_namespaced_config_map("default"),
            lambda: core.list_namespace(),
        ]
        for call in forbidden:
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403, err.value.body


def test_kubectl_auth_can_i_as_service_account(
    namespace: str, kube_admin: Any, sa_kubeconfig: Callable[[str, str], Path], kubectl: Runner
) -> None:
    """kubectl with the SA's kubeconfig sees the same answers from the authorizer."""
    kubeconfig = sa_kubeconfig(namespace, "reader")
    _grant_configmap_reader(kube_admin, namespace, "reader")

    def can_i(*args: str) -> str:
        proc = kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", *args, "-n", namespace, check=False)
        return proc.stdout.strip()

    assert can_i("list", "configmaps") == "yes"
    assert can_i("create", "configmaps") == "no"
    assert can_i("get", "secrets") == "no"
