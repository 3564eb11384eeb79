"""The emulated world's data: projects, Cloud Run services, operations, IAM/IAP policies, service agents.

Plain records, no HTTP. Everything here is touched only from the emulator's event loop, so no locks.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from gcpemu.config import EmulatorConfig
from gcpemu.iam import Policy


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    number: str


@dataclass
class ServiceRecord:
    """A Cloud Run service. ``data`` is the stored Service JSON (enum names, int64 as strings)."""

    project: Project
    region: str
    service_id: str
    data: dict[str, Any]
    seq: int
    revisions: int = 0
    deleting: bool = False
    ready_once: bool = False
    hosts: tuple[str, ...] = ()
    ready_revision_image: str = ""
    ready_revisions: set[str] = field(default_factory=set)
    """Short names of the revisions that became ready (traffic may name these)."""
    created_revisions: dict[str, Any] = field(default_factory=dict)
    """Short revision name -> its template, for every revision cut (``template.revision`` reuse is checked here)."""
    tag_hosts: dict[str, str] = field(default_factory=dict)
    """``{tag}---{svc}-{hash}-{code}.a.run.app`` -> the short name of the revision that tag serves."""
    render_cache: dict[bool, dict[str, Any]] = field(default_factory=dict)
    """Rendered GET bodies (by int-enum flag); ``touch()`` after every change to ``data``."""

    def touch(self) -> None:
        self.render_cache.clear()


@dataclass
class OperationRecord:
    """A long-running operation (Cloud Run or Service Usage)."""

    name: str
    method: str
    done: bool = False
    metadata: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created: float = 0.0
    seq: int = 0
    event: asyncio.Event | None = None
    timer: asyncio.TimerHandle | None = None
    kind: str = "run"  # run | serviceusage


@dataclass
class World:
    """All mutable emulator state; ``reset()`` returns it to the configured starting point."""

    config: EmulatorConfig
    projects_by_id: dict[str, Project] = field(default_factory=dict)
    projects_by_number: dict[str, Project] = field(default_factory=dict)
    services: dict[tuple[str, str, str], ServiceRecord] = field(default_factory=dict)
    hosts: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    operations: dict[str, OperationRecord] = field(default_factory=dict)
    run_policies: dict[tuple[str, str, str], Policy] = field(default_factory=dict)
    iap_policies: dict[tuple[str, str, str], Policy] = field(default_factory=dict)
    iap_other_policies: dict[str, Policy] = field(default_factory=dict)
    project_policies: dict[str, Policy] = field(default_factory=dict)
    """Project-level IAM (set out of band through the admin API), keyed by project number."""
    iap_settings: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    agents: dict[tuple[str, str], float] = field(default_factory=dict)
    """(project number, agent kind e.g. 'iap') -> clock time when the agent was created."""
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.load_projects()

    def load_projects(self) -> None:
        self.projects_by_id.clear()
        self.projects_by_number.clear()
        for pid, num in self.config.projects.items():
            self.add_project(pid, str(num))

    def add_project(self, pid: str, number: str) -> Project:
        p = Project(pid, number)
        self.projects_by_id[pid] = p
        self.projects_by_number[number] = p
        return p

    def resolve_project(self, ref: str) -> Project | None:
        """A project by ID or number; with ``auto_register_projects`` unknown IDs are created on use."""
        p = self.projects_by_id.get(ref) or self.projects_by_number.get(ref)
        if p is None and self.config.auto_register_projects and ref and not ref.isdigit():
            num = str(100000000000 + int(hashlib.sha256(ref.encode()).hexdigest(), 16) % 900000000000)
            p = self.add_project(ref, num)
        return p

    def organization(self, project: Project) -> str | None:
        """The organisation id of ``project``, or None when it has none."""
        orgs = self.config.project_organizations
        return orgs.get(project.id, self.config.default_organization)

    def org_domains(self, project: Project) -> list[str] | None:
        """The domains of the project's organisation (None: no organisation)."""
        org = self.organization(project)
        return None if org is None else list(self.config.organizations.get(org, []))

    def cancel_timers(self) -> None:
        for op in self.operations.values():
            if op.timer is not None:
                op.timer.cancel()
