"""Which services the orphan sweep may finish, and how: pure rules, no I/O.

An orphan is a Cloud Run service that carries this cluster's ownership marks while the object they name is
gone, so no finalizer will ever look at it again. It happens when a create the operator sent timed out on
the client but was applied by Google after the object's finalizer had found nothing and let the object go,
or when someone removed the finalizer by hand. The sweep finishes what the object's deletion policy (stamped
on the service) asked for. Anything less certain is only reported: a mark from another cluster, a label that
does not match its readable mark, or a service without the deletion-policy stamp is never touched.

A service whose object was deleted under managementPolicy ObserveOnly or Paused was promised to be left as it
is, but it still carries the marks: the finalizer records it (``LeftService``, kept in a ConfigMap by
``ledger``) before it lets the object go, and the sweep never finishes a recorded owner's service. ``released``
says when an entry has served its purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from iaprun_operator.core.names import DELETION_POLICY_ANNOTATION, OWNER_ANNOTATION, OWNER_LABEL, Owner, ServiceRef

LEDGER_LIMIT = 1000
"""Entries the record of left services holds at most (about 200 bytes each, far below a ConfigMap's 1 MiB). A
full record refuses a new entry: the object then waits in deletion rather than its service being at risk."""


class OrphanAction(Enum):
    DELETE = "Delete"
    """The object asked for Delete: delete the service, as its finalizer would have."""
    ABANDON = "Abandon"
    """The object asked for Abandon: remove the ownership marks, as its finalizer would have."""
    REPORT = "Report"
    """No deletion policy stamped (a service marked before the stamp existed): log and count only."""


@dataclass(frozen=True)
class Claim:
    """A service's ownership marks, when they name an object of this cluster."""

    owner: Owner
    action: OrphanAction


def claim(service: Mapping[str, Any], cluster_id: str) -> Claim | None:
    """The object of this cluster that ``service`` names as its owner, or None.

    None when the service carries no owner label, a label from another cluster, or a label that does not
    match its readable annotation (a mark the operator did not write as a whole is nobody's to act on).
    """
    label = (service.get("labels") or {}).get(OWNER_LABEL)
    annotations = service.get("annotations") or {}
    owner = Owner.parse(str(annotations.get(OWNER_ANNOTATION) or ""))
    if not label or owner is None or owner.cluster_id != cluster_id or owner.label != label:
        return None
    stamped = annotations.get(DELETION_POLICY_ANNOTATION)
    action = {a.value: a for a in (OrphanAction.DELETE, OrphanAction.ABANDON)}.get(str(stamped), OrphanAction.REPORT)
    return Claim(owner=owner, action=action)


@dataclass(frozen=True)
class LeftService:
    """An object deleted under ObserveOnly or Paused, and where its service was (None: it could not say)."""

    owner: Owner
    ref: ServiceRef | None
    at: str
    """When it was recorded (RFC 3339): a later entry for the same owner differs, so removing an entry that was
    read earlier never removes a newer one."""

    @property
    def key(self) -> str:
        """The entry's key: the owner label (16 hex digits, a valid ConfigMap key), as the sweep reads it."""
        return self.owner.label

    def encode(self) -> str:
        ref = self.ref
        where = {"project": ref.project, "region": ref.region, "service": ref.service} if ref else None
        return json.dumps({"owner": self.owner.readable, "service": where, "at": self.at}, sort_keys=True)

    @classmethod
    def decode(cls, raw: str) -> LeftService | None:
        """The entry ``raw`` holds, or None when it does not parse (such an entry still protects, never expires)."""
        try:
            data = json.loads(raw)
            owner = Owner.parse(str(data["owner"]))
            where = data["service"]
            ref = None if where is None else ServiceRef(*(str(where[k]) for k in ("project", "region", "service")))
        except (ValueError, TypeError, KeyError):
            return None
        return None if owner is None else cls(owner, ref, str(data.get("at", "")))


def released(
    recorded: Mapping[str, str], project: str, region: str, services: Iterable[Mapping[str, Any]], cluster_id: str
) -> list[str]:
    """Keys of ``recorded`` entries that a listing of (project, region) shows may go: their service is gone, or
    its marks no longer name the recorded owner (another object adopted it, or the marks were removed). Only
    complete listings may be used, taken after ``recorded`` was read (an entry newer than the listing stays).
    """
    owners = {str(s.get("name", "")).rsplit("/", 1)[-1]: claim(s, cluster_id) for s in services}
    keys = []
    for key, raw in recorded.items():
        entry = LeftService.decode(raw)
        if entry is None or entry.ref is None or (entry.ref.project, entry.ref.region) != (project, region):
            continue
        found = owners.get(entry.ref.service)
        if found is None or found.owner != entry.owner:
            keys.append(key)
    return keys
