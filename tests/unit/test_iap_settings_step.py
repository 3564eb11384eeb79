"""The IAP settings step's decisions that need no Google: what it reports when the settings cannot be read, when
a secret cannot be read, and what a rollout poll (which does not read the settings) keeps in status.access.

The ports are a small in-memory stand-in (unit level; the integration tests use the emulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.model import parse_spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.results import ObjectView
from iaprun_operator.steps import iapsettings

REF = ServiceRef("demo-project", "us-central1", "svc")
STATUS = {"url": "https://svc-abc-uc.a.run.app"}


class Ports:
    def __init__(self, settings: Any = None, secret: Any = "s3cret", domains: Any = ("example.com",)) -> None:
        self._settings, self._secret, self._domains = settings, secret, domains
        self.writes: list[tuple[Mapping[str, Any], str]] = []

    @property
    def iap(self) -> Ports:
        return self

    @property
    def secrets(self) -> Ports:
        return self

    @property
    def organizations(self) -> Ports:
        return self

    async def get_settings(self, resource: str, project: str) -> dict[str, Any]:
        if isinstance(self._settings, GoogleError):
            raise self._settings
        return dict(self._settings or {})

    async def update_settings(self, resource: str, project: str, settings: Mapping[str, Any], mask: str) -> Any:
        self.writes.append((settings, mask))
        return dict(settings)

    async def access(self, version: str, project: str) -> str:
        if isinstance(self._secret, GoogleError):
            raise self._secret
        return str(self._secret)

    async def domains(self, project: str) -> Any:
        return self._domains


def spec(iap: dict[str, Any]) -> Any:
    return parse_spec({"region": "us-central1", "template": {"containers": [{"image": "x"}]}, "iap": iap}, name="svc")


def view(status: dict[str, Any] | None = None) -> ObjectView:
    return ObjectView("ns", "svc", 1, {}, status or {}, "cluster")


def run(ports: Ports, iap: dict[str, Any], status: dict[str, Any] | None = None) -> Any:
    return asyncio.run(iapsettings.run(ports, view(status), spec(iap), REF, "123", dict(STATUS)))  # type: ignore[arg-type]


def denied() -> GoogleError:
    return GoogleError(Kind.PERMISSION, "Permission 'iap.webServices.getSettings' denied", api="iap", method="get")


def test_unreadable_settings_do_not_stall_an_object_that_declares_none() -> None:
    out = run(Ports(settings=denied()), {"accessors": [{"member": "user:a@example.com"}]})
    assert out.failure is None
    assert [(c.type, c.status, c.reason) for c in out.conditions] == [("IapSettingsSynced", True, "NotDeclared")]
    assert out.status["access"] == {"urls": [STATUS["url"]]}  # nothing claimed about the OAuth client


def test_unreadable_settings_fail_an_object_that_declares_some() -> None:
    with pytest.raises(GoogleError):
        run(Ports(settings=denied()), {"settings": {"applicationSettings": {"cookieDomain": "example.com"}}})


def test_an_unreadable_secret_stalls_with_its_name_and_writes_nothing() -> None:
    oauth = {"clientId": "c", "clientSecretSource": {"secretKeyRef": {"secret": "iap-oauth"}}}
    ports = Ports(secret=GoogleError(Kind.PERMISSION, "denied", api="secretmanager", method="access"))
    out = run(ports, {"settings": {"accessSettings": {"oauthSettings": oauth}}})
    assert out.failure is not None
    assert out.failure.stalled
    assert "projects/demo-project/secrets/iap-oauth/versions/latest" in out.failure.message
    assert ports.writes == []


def test_outside_members_warn_once_per_change() -> None:
    iap = {"accessors": [{"member": "user:a@example.com"}, {"member": "user:b@partner.example"}]}
    first = run(Ports(), iap)
    (sign_in,) = [c for c in first.conditions if c.type == "AccessorsCanSignIn"]
    assert (sign_in.status, sign_in.reason) == (False, "OutsideOrganization")
    assert [e.reason for e in first.events] == ["AccessorsCannotSignIn"]
    shown = {"conditions": [{"type": "AccessorsCanSignIn", "status": "False", "message": sign_in.message}]}
    assert run(Ports(), iap, shown).events == []


def test_a_rollout_poll_keeps_the_known_client_and_refreshes_the_urls() -> None:
    known = {"access": {"urls": [], "audience": "c.apps", "googleManagedClient": False, "programmaticClients": ["p"]}}
    status: dict[str, Any] = dict(STATUS)
    iapsettings.refresh_access(view(known), status)
    assert status["access"] == {
        "urls": [STATUS["url"]],
        "googleManagedClient": False,
        "audience": "c.apps",
        "programmaticClients": ["p"],
    }


def test_a_steady_pass_of_an_object_without_settings_reads_nothing() -> None:
    """Once a pass of this generation read the settings, later passes of an object declaring none make no
    call (the drift budget stays three reads per pass) and keep status.access with the current URLs."""
    settled = {
        "conditions": [{"type": "IapSettingsSynced", "status": "True", "observedGeneration": 1}],
        "access": {"urls": [], "audience": "old", "googleManagedClient": True, "programmaticClients": []},
    }
    unreachable = GoogleError(Kind.TRANSIENT, "no call expected", api="iap", method="get")
    out = run(Ports(settings=unreachable), {"accessors": [{"member": "user:a@example.com"}]}, settled)
    assert out.conditions == []
    assert out.status["access"]["urls"] == [STATUS["url"]]
    assert out.status["access"]["audience"] == STATUS["url"]
    with pytest.raises(GoogleError):  # a new generation reads again
        run(Ports(settings=unreachable), {"accessors": []}, {**settled, "conditions": []})
