"""The record of services left untouched at deletion, kept in a ConfigMap so it outlives the operator process.

Deleting an object under managementPolicy ObserveOnly or Paused leaves its Cloud Run service as it is, marks
included: no Google call may remove them (Paused makes none). Without a record, the orphan sweep would meet a
marked service whose object is gone and finish it as the stamped deletion policy says, perhaps deleting it. So
the finalizer records the object here before it lets the object go (``record``; a failure keeps the object in
deletion), and the sweep asks here before it finishes a service whose owner is gone (``holds``; unsure means
"recorded"). The rules about entries (their shape, when one may go) are in ``core.orphans``.

One ConfigMap, one key per object (its owner label), in the operator's own namespace. Entries are added with a
merge patch of one key and removed with a JSON patch that tests the value first, so concurrent writers never
lose each other's entries.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from iaprun_operator.core.orphans import LEDGER_LIMIT, LeftService
from iaprun_operator.kube import api_client, reason

log = logging.getLogger(__name__)
NAME = "iap-run-operator-left-services"
"""The ConfigMap's name (the chart's Role grants get and patch on this name only)."""
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class LedgerError(Exception):
    """The record could not be written (the API server refused, could not be reached, or the record is full)."""


class Ledger(Protocol):
    """What the finalizer and the sweep need of the record (``ConfigMapLedger``; a test may pass anything)."""

    async def record(self, entry: LeftService) -> None: ...
    async def entries(self) -> dict[str, str]: ...
    async def holds(self, key: str) -> bool: ...
    async def forget(self, key: str, raw: str) -> bool: ...


def namespace_of_operator(configured: str) -> str:
    """The setting, else the pod's own namespace (its ServiceAccount's), else ``default`` (outside a cluster)."""
    if configured:
        return configured
    try:
        return POD_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


class ConfigMapLedger:
    """The record, one ConfigMap in ``namespace``; every method is one or two API calls, run off the event loop."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._api = client.CoreV1Api(api_client())

    async def record(self, entry: LeftService) -> None:
        """Add (or refresh) ``entry``; raises ``LedgerError`` unless it is stored."""
        await asyncio.to_thread(self._record, entry)

    async def entries(self) -> dict[str, str]:
        """Every entry, raw (key -> encoded ``LeftService``); raises ``LedgerError`` when unreadable."""
        return await asyncio.to_thread(self._entries)

    async def holds(self, key: str) -> bool:
        """Is an object with owner label ``key`` recorded? Read now, not cached; unsure means yes (fail closed)."""
        try:
            return key in await self.entries()
        except LedgerError as error:
            log.warning("Could not read the record of left services (%s); treating %s as recorded", error, key)
            return True

    async def forget(self, key: str, raw: str) -> bool:
        """Remove the entry ``key`` if it still holds ``raw`` (False: it changed, went, or the API refused)."""
        return await asyncio.to_thread(self._forget, key, raw)

    def _entries(self) -> dict[str, str]:
        try:
            return self._entries_or_none() or {}
        except ApiException as error:
            raise LedgerError(reason(error)) from None
        except Exception as error:  # connection errors and the like
            raise LedgerError(str(error)) from None

    def _record(self, entry: LeftService) -> None:
        try:
            data = self._read_or_create(entry)
            if data is None:
                return  # created with the entry in it
            if entry.key not in data and len(data) >= LEDGER_LIMIT:
                raise LedgerError(
                    f"the record of left services ({self.namespace}/{NAME}) is full ({LEDGER_LIMIT} entries)"
                )
            body = {"data": {entry.key: entry.encode()}}
            self._api.patch_namespaced_config_map(NAME, self.namespace, body, _request_timeout=30)
        except ApiException as error:
            raise LedgerError(reason(error)) from None
        except LedgerError:
            raise
        except Exception as error:
            raise LedgerError(str(error)) from None

    def _read_or_create(self, entry: LeftService) -> dict[str, str] | None:
        """The entries now, or None when the ConfigMap did not exist and was just created holding ``entry``."""
        data = self._entries_or_none()
        if data is not None:
            return data
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=NAME, labels={"app.kubernetes.io/managed-by": "iap-run-operator"}),
            data={entry.key: entry.encode()},
        )
        try:
            self._api.create_namespaced_config_map(self.namespace, body, _request_timeout=30)
        except ApiException as error:
            if error.status != 409:  # 409: another writer created it first; patch it as usual
                raise
            return self._entries()
        return None

    def _entries_or_none(self) -> dict[str, str] | None:
        try:
            found = self._api.read_namespaced_config_map(NAME, self.namespace, _request_timeout=30)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(found.data or {})

    def _forget(self, key: str, raw: str) -> bool:
        ops = [{"op": "test", "path": f"/data/{key}", "value": raw}, {"op": "remove", "path": f"/data/{key}"}]
        try:
            self._api.patch_namespaced_config_map(NAME, self.namespace, ops, _request_timeout=30)
        except Exception as error:  # the entry changed or went (422), or the API refused: it stays, no harm
            detail = reason(error) if isinstance(error, ApiException) else str(error)
            log.info("Kept the record of %s (%s)", key, detail)
            return False
        return True
