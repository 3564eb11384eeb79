"""Cluster-side lifecycle an operator relies on: namespace deletion, ownerReference garbage collection,
and a control-plane restart that keeps its data.

These need the kube-controller-manager controllers that run in the control-plane process (namespace
and garbage-collector controllers); the restart test is the basis of later reliability tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from testworld.cluster import ControlPlane

pytestmark = pytest.mark.integration


def _wait_deleted(list_fn: Callable[..., Any], name: str, timeout: int = 90, **kwargs: Any) -> None:
    """Watch until the named object is DELETED (list+watch, so a deletion before the watch counts too)."""
    initial = list_fn(field_selector=f"metadata.name={name}", **kwargs)
    if not initial.items:
        return
    w = watch.Watch()
    for event in w.stream(
        list_fn,
        field_selector=f"metadata.name={name}",
        resource_version=initial.metadata.resource_version,
        timeout_seconds=timeout,
        **kwargs,
    ):
        if event["type"] == "DELETED":
            w.stop()
            return
    raise AssertionError(f"{name} still exists after {timeout}s")


def test_namespace_deletion_completes(kube_admin: Any) -> None:
    """Deleting a namespace that holds objects finishes: the namespace controller empties it and removes
    the kubernetes finalizer, so the namespace is really gone (not stuck Terminating)."""
    core = client.CoreV1Api(kube_admin)
    name = f"world-ns-deletion-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    core.delete_namespace(name)
    _wait_deleted(core.list_namespace, name)
    with pytest.raises(ApiException) as err:
        core.read_namespace(name)
    assert err.value.status == 404


def test_owner_reference_garbage_collection(kube_admin: Any, namespace: str) -> None:
    """Deleting an owner makes the garbage collector delete its dependents (background propagation)."""
    core = client.CoreV1Api(kube_admin)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dependent", owner_references=[ref]))
    )
    core.delete_namespaced_config_map("owner", namespace)
    _wait_deleted(core.list_namespaced_config_map, "dependent", namespace=namespace)


@pytest.mark.slow
def test_restart_keeps_objects_and_credentials(tmp_path: Path) -> None:
    """A second control plane stopped with SIGTERM and started again on the same data directory still has
    its objects and its URL, and a ServiceAccount kubeconfig minted before the restart still authenticates;
    after a SIGKILL it comes back with its objects too."""
    cp = ControlPlane(controller_manager=False)
    try:
        cp.start(tmp_path / "data")
        with cp.api_client() as api:
            core = client.CoreV1Api(api)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="kept")))
            core.create_namespaced_config_map(
                "kept", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="survivor"), data={"k": "v"})
            )
        sa_kubeconfig = cp.sa_kubeconfig("kept", "robot")
        first_pid, first_url = cp.pid, cp.url

        cp.restart()
        assert cp.pid != first_pid
        assert cp.url == first_url  # same port: existing kubeconfigs and clients keep working

        with cp.api_client() as api:
            survivor = client.CoreV1Api(api).read_namespaced_config_map("survivor", "kept")
            assert survivor.data == {"k": "v"}
        # The token was minted before the restart; the signing key lives in the data directory.
        with config.new_client_from_config(config_file=str(sa_kubeconfig)) as sa_api:
            review = client.AuthenticationV1Api(sa_api).create_self_subject_review(
                client.V1SelfSubjectReview(metadata=client.V1ObjectMeta())
            )
            assert review.status.user_info.username == "system:serviceaccount:kept:robot"

        # A crash (SIGKILL) loses nothing either: etcd's writes are in the page cache.
        cp.kill()
        cp.restart()
        with cp.api_client() as api:
            assert client.CoreV1Api(api).read_namespaced_config_map("survivor", "kept").data == {"k": "v"}
    finally:
        cp.close()
    assert not cp.running
