"""Which services the orphan sweep may finish, and how: pure rules, no I/O.

An orphan is a Cloud Run service that carries this cluster's ownership marks while the object they name is
gone, so no finalizer will ever look at it again. It happens when a create the operator sent timed out on
the client but was applied by Google after the object's finalizer had found nothing and let the object go,
or when someone removed the finalizer by hand. The sweep finishes what the object's deletion policy (stamped
on the service) asked for. Anything less certain is only reported: a mark from another cluster, a label that
does not match its readable mark, or a service without the deletion-policy stamp is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from iaprun_operator.core.names import DELETION_POLICY_ANNOTATION, OWNER_ANNOTATION, OWNER_LABEL, Owner


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
