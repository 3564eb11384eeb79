"""The local control plane validates custom resources the way a real cluster does.

A mock would accept anything; these tests prove that the CRD's CEL rules and list bounds are enforced by
the real kube-apiserver, and that generation/status-subresource semantics (what observedGeneration
relies on) hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration

GROUP = "world.iaprun.test"
PLURAL = "widgets"
CEL_MESSAGE = "spec.replicas must not exceed spec.maxReplicas"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas", "maxReplicas"],
                                "properties": {
                                    "replicas": {"type": "integer"},
                                    "maxReplicas": {"type": "integer"},
                                    "members": {
                                        "type": "array",
                                        "maxItems": 3,
                                        "items": {"type": "string", "maxLength": 63},
                                    },
                                },
                                "x-kubernetes-validations": [
                                    {"rule": "self.replicas <= self.maxReplicas", "message": CEL_MESSAGE}
                                ],
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "observedGeneration": {"type": "integer", "format": "int64"},
                                    "phase": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _wait_established(api: client.ApiextensionsV1Api, name: str, timeout: int = 60) -> None:
    """Watch the CRD until its Established condition is True."""
    w = watch.Watch()
    for event in w.stream(
        api.list_custom_resource_definition, field_selector=f"metadata.name={name}", timeout_seconds=timeout
    ):
        conditions = event["object"].status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            w.stop()
            return
    raise AssertionError(f"CRD {name} not Established within {timeout}s")


@pytest.fixture(scope="module")
def widget_crd(kube_admin: Any) -> Iterator[str]:
    api = client.ApiextensionsV1Api(kube_admin)
    name = WIDGET_CRD["metadata"]["name"]
    api.create_custom_resource_definition(WIDGET_CRD)
    _wait_established(api, name)
    yield name
    api.delete_custom_resource_definition(name)


def _widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_cel_rule_rejects_bad_object_with_its_message(widget_crd: str, namespace: str, kube_admin: Any) -> None:
    """The real server evaluates the CRD's x-kubernetes-validations rule and returns its message (422)."""
    objects = client.CustomObjectsApi(kube_admin)
    with pytest.raises(ApiException) as err:
        objects.create_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, _widget("too-many", replicas=5, maxReplicas=2)
        )
    assert err.value.status == 422
    assert CEL_MESSAGE in err.value.body


def test_bounded_list_rejects_too_many_items(widget_crd: str, namespace: str, kube_admin: Any) -> None:
    """maxItems on a list is enforced by the structural schema: four members where three are allowed fail."""
    objects = client.CustomObjectsApi(kube_admin)
    with pytest.raises(ApiException) as err:
        objects.create_namespaced_custom_object(
            GROUP,
            "v1",
            namespace,
            PLURAL,
            _widget("crowded", replicas=1, maxReplicas=1, members=list("abcd")),
        )
    assert err.value.status == 422
    assert "must have at most 3 items" in err.value.body


def test_generation_counts_spec_changes_not_status(widget_crd: str, namespace: str, kube_admin: Any) -> None:
    """A good object starts at generation 1; a status-subresource patch keeps it; a spec change bumps it."""
    objects = client.CustomObjectsApi(kube_admin)
    created = objects.create_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, _widget("good", replicas=1, maxReplicas=3, members=["a", "b"])
    )
    assert created["metadata"]["generation"] == 1

    patched = objects.patch_namespaced_custom_object_status(
        GROUP, "v1", namespace, PLURAL, "good", {"status": {"observedGeneration": 1, "phase": "Ready"}}
    )
    assert patched["metadata"]["generation"] == 1
    assert patched["status"] == {"observedGeneration": 1, "phase": "Ready"}

    # The status subresource ignores spec, and the main resource ignores status.
    respec = objects.patch_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "good", {"spec": {"replicas": 2}, "status": {"phase": "Ignored"}}
    )
    assert respec["metadata"]["generation"] == 2
    assert respec["status"]["phase"] == "Ready"
