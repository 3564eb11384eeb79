"""The Kubernetes reads the operator makes outside kopf: does an object exist right now, and which cluster is this?

kopf's watch and indexes lag the API server. Before the orphan sweep deletes a service because its object
is gone, it asks the API server itself, and anything but a clear 404 counts as "exists" (fail closed).
The cluster's identity (the kube-system namespace's uid) is read once at start-up.
"""

from __future__ import annotations

import asyncio
import json
import logging

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "iaprun.dev", "v1alpha1", "iaprunservices"
"""The IapRunService custom resource, as the handlers watch it and the operator's own API calls address it."""


def api_client() -> client.ApiClient:
    """In-cluster ServiceAccount first, then KUBECONFIG (as kopf's login does)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


def _kube_system_uid() -> str | None:
    """The uid of the kube-system namespace (None: there is none), with the ``list`` the operator's RBAC allows."""
    found = client.CoreV1Api(api_client()).list_namespace(
        field_selector="metadata.name=kube-system", _request_timeout=30
    )
    return next((str(ns.metadata.uid) for ns in found.items if ns.metadata), None)


async def cluster_id(configured: str) -> str:
    """This cluster's identity in ownership marks: the setting, else the kube-system namespace's uid, else
    "cluster". Read errors reach the caller (start-up retries): a guessed identity would disown services."""
    if configured:
        return configured
    return await asyncio.to_thread(_kube_system_uid) or "cluster"


class ObjectExistence:
    """Answers "does this custom object exist?" with a GET against the API server."""

    def __init__(self, group: str, version: str, plural: str) -> None:
        self._api = client.CustomObjectsApi(api_client())
        self._where = (group, version, plural)

    def _exists(self, namespace: str, name: str) -> bool:
        group, version, plural = self._where
        try:
            self._api.get_namespaced_custom_object(group, version, namespace, plural, name, _request_timeout=30)
        except Exception as error:  # refusals, connection errors and the like: unsure means "exists"
            if isinstance(error, ApiException) and error.status == 404:
                return False
            why = reason(error) if isinstance(error, ApiException) else str(error)
            log.warning("Could not tell whether %s/%s exists (%s); treating it as existing", namespace, name, why)
        return True

    async def __call__(self, namespace: str, name: str) -> bool:
        return await asyncio.to_thread(self._exists, namespace, name)


def reason(error: ApiException) -> str:
    """The API server's own message (e.g. an RBAC refusal), else the HTTP status line."""
    return api_message(error.body, f"{error.status} {error.reason}")


def api_message(body: str | None, fallback: str) -> str:
    """The ``message`` of the API server's Status answer ``body``, else ``fallback``."""
    try:
        return str(json.loads(body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return fallback
