"""The one Kubernetes read the operator makes outside kopf: does an object exist right now?

kopf's watch and indexes lag the API server. Before the orphan sweep deletes a service because its object
is gone, it asks the API server itself, and anything but a clear 404 counts as "exists" (fail closed).
"""

from __future__ import annotations

import asyncio
import json
import logging

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

log = logging.getLogger(__name__)


class ObjectExistence:
    """Answers "does this custom object exist?" with a GET against the API server."""

    def __init__(self, group: str, version: str, plural: str) -> None:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        self._api = client.CustomObjectsApi(client.ApiClient(configuration))
        self._where = (group, version, plural)

    def _exists(self, namespace: str, name: str) -> bool:
        group, version, plural = self._where
        try:
            self._api.get_namespaced_custom_object(group, version, namespace, plural, name, _request_timeout=30)
        except Exception as error:  # refusals, connection errors and the like: unsure means "exists"
            if isinstance(error, ApiException) and error.status == 404:
                return False
            reason = _reason(error) if isinstance(error, ApiException) else str(error)
            log.warning("Could not tell whether %s/%s exists (%s); treating it as existing", namespace, name, reason)
        return True

    async def __call__(self, namespace: str, name: str) -> bool:
        return await asyncio.to_thread(self._exists, namespace, name)


def _reason(error: ApiException) -> str:
    """The API server's own message (e.g. an RBAC refusal), else the HTTP status line."""
    try:
        return str(json.loads(error.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"
