"""The Google operations the loop uses, as interfaces: the loop depends on these, not on the adapters.

``google.bundle.Google`` satisfies ``GooglePorts``; a test may pass anything that does.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from iaprun_operator.core.names import ServiceRef


class RunPort(Protocol):
    """Cloud Run Admin API: services and their IAM policy."""

    async def get(self, ref: ServiceRef) -> dict[str, Any] | None: ...
    async def list(self, project: str, region: str) -> builtins.list[dict[str, Any]]: ...
    async def create(self, ref: ServiceRef, body: Mapping[str, Any]) -> str: ...
    async def update(self, ref: ServiceRef, body: Mapping[str, Any], mask: Sequence[str]) -> str: ...
    async def delete(self, ref: ServiceRef, *, etag: str = "") -> str | None: ...
    async def get_iam_policy(self, ref: ServiceRef) -> dict[str, Any]: ...
    async def set_iam_policy(self, ref: ServiceRef, policy: Mapping[str, Any]) -> dict[str, Any]: ...


class IapPort(Protocol):
    """IAP API: the IAM policy and the IAP settings of a service's IAP resource."""

    async def get_iam_policy(self, resource: str, project: str) -> dict[str, Any]: ...
    async def set_iam_policy(self, resource: str, project: str, policy: Mapping[str, Any]) -> dict[str, Any]: ...
    async def get_settings(self, resource: str, project: str) -> dict[str, Any]: ...
    async def update_settings(
        self, resource: str, project: str, settings: Mapping[str, Any], mask: str
    ) -> dict[str, Any]: ...


class SecretsPort(Protocol):
    """Secret Manager: the value of a secret version the operator itself must hand to Google (an OAuth
    client secret for IAP settings); read only when the spec names one and the tenancy policy allows it."""

    async def access(self, version: str, project: str) -> str: ...


class OrganizationsPort(Protocol):
    """Resource Manager: the domains of a project's organisation (who the Google-managed OAuth client lets
    sign in); None when the project has no organisation."""

    async def domains(self, project: str) -> tuple[str, ...] | None: ...


class ProjectsPort(Protocol):
    """Resource Manager and Service Usage: a project's number and its IAP service agent."""

    async def number(self, project: str) -> str: ...
    async def iap_agent(self, project: str, number: str) -> str: ...


class GooglePorts(Protocol):
    @property
    def run(self) -> RunPort: ...
    @property
    def iap(self) -> IapPort: ...
    @property
    def projects(self) -> ProjectsPort: ...
    @property
    def secrets(self) -> SecretsPort: ...
    @property
    def organizations(self) -> OrganizationsPort: ...
