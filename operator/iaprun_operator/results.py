"""The values a pass is about and returns: the object as the loop sees it, Events, and the pass's result.

Kept apart from the loop so steps, finalize and the kopf wiring share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from iaprun_operator.core.names import Owner


@dataclass(frozen=True)
class ObjectView:
    """What the loop needs to know about the Kubernetes object and its namespace."""

    namespace: str
    name: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    cluster_id: str
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    namespace_annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> Owner:
        return Owner(self.cluster_id, self.namespace, self.name)


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str

    @classmethod
    def normal(cls, reason: str, message: str) -> Event:
        return cls(EventType.NORMAL, reason, message)

    @classmethod
    def warning(cls, reason: str, message: str) -> Event:
        return cls(EventType.WARNING, reason, message)


class Requeue(StrEnum):
    """Why a pass asks to come back (a pass that asks nothing has ``requeue`` None: settled or stalled)."""

    PROGRESS = "progress"
    """Work in flight (a Cloud Run operation, a ledger to store first): poll soon."""
    RETRY = "retry"
    """A transient failure: back off."""


@dataclass
class Facts:
    """What a pass found or changed that the operator counts (``metrics.count`` is the one place that does)."""

    changes: list[str] = field(default_factory=list)
    """Reasons of the changes made, one per change."""
    public_invoker_found: int = 0
    foreign_members: int | None = None
    """Members holding access this object does not declare (None: not looked at in this pass)."""


@dataclass
class Result:
    """The outcome of one pass: status fields to write, Events, and when to look again."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    requeue: Requeue | None = None
    retry_after: float | None = None
    message: str = ""
    done: bool = False
    """Deletion only: the finalizer may go."""
    facts: Facts = field(default_factory=Facts)
