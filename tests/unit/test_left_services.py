"""The record of services left untouched at deletion (ObserveOnly, Paused): its entries, when one may go, and
how the orphan sweep and the ConfigMap store treat it.

Proves: an entry round-trips and is keyed by the owner label the sweep reads off a service; ``released`` lets
an entry go only when a listing of its own place shows the service gone or marked for someone else (or for
nobody), never for an entry it cannot read or that names no service; the sweep never finishes a recorded
owner's service, and finishes an unrecorded one as before; the store fails closed (an unreadable record
"holds" every owner) and refuses a new entry when full. Pure rules and in-process fakes, no servers.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from iaprun_operator.core.names import Owner, ServiceRef
from iaprun_operator.core.orphans import LEDGER_LIMIT, LeftService, released
from iaprun_operator.ledger import ConfigMapLedger, LedgerError
from iaprun_operator.sweep import sweep

CLUSTER = "test-cluster"
OWNER = Owner(CLUSTER, "shop", "web")
ENTRY = LeftService(OWNER, ServiceRef("p", "r", "web"), "2026-12-02T01:00:00+00:00")


def listed(name: str, readable: str | None, project: str = "p", region: str = "r") -> dict[str, Any]:
    """A service as services.list returns it, marked for ``readable`` (marks computed here) or unmarked."""
    service: dict[str, Any] = {"name": f"projects/{project}/locations/{region}/services/{name}", "etag": "e"}
    if readable is not None:
        label = hashlib.sha256(readable.encode()).hexdigest()[:16]
        service["labels"] = {"iaprun-owner": label}
        service["annotations"] = {"iaprun.dev/owner": readable, "iaprun.dev/deletion-policy": "Delete"}
    return service


def test_an_entry_round_trips_and_is_keyed_by_the_owner_label() -> None:
    assert LeftService.decode(ENTRY.encode()) == ENTRY
    assert ENTRY.key == listed("web", OWNER.readable)["labels"]["iaprun-owner"]
    assert LeftService.decode(LeftService(OWNER, None, "t").encode()) == LeftService(OWNER, None, "t")
    assert LeftService.decode("{not json") is None
    assert LeftService.decode('{"owner": "no-slashes", "service": null}') is None


@pytest.mark.parametrize(
    ("services", "goes"),
    [
        ([], True),  # the service is gone
        ([listed("web", f"{CLUSTER}/shop/other")], True),  # another object adopted it
        ([listed("web", None)], True),  # its marks were removed
        ([listed("web", OWNER.readable)], False),  # still marked for the deleted object: the record protects it
        ([listed("web", "other-cluster/shop/web")], True),  # marked by another cluster: not this sweep's
    ],
    ids=["gone", "adopted", "unmarked", "still-marked", "other-cluster"],
)
def test_an_entry_goes_when_its_place_shows_the_service_gone_or_someone_elses(
    services: list[dict[str, Any]], goes: bool
) -> None:
    recorded = {ENTRY.key: ENTRY.encode()}
    assert released(recorded, "p", "r", services, CLUSTER) == ([ENTRY.key] if goes else [])


def test_an_entry_stays_unless_a_listing_of_its_own_place_says_otherwise() -> None:
    recorded = {
        ENTRY.key: ENTRY.encode(),
        "unreadable": "{",
        "nowhere": LeftService(Owner(CLUSTER, "shop", "x"), None, "t").encode(),
    }
    assert released(recorded, "p", "other-region", [], CLUSTER) == []
    assert released(recorded, "p", "r", [], CLUSTER) == [ENTRY.key]


class FakeLedger:
    def __init__(self, entries: dict[str, str]) -> None:
        self.data = dict(entries)

    async def record(self, entry: LeftService) -> None:
        self.data[entry.key] = entry.encode()

    async def entries(self) -> dict[str, str]:
        return dict(self.data)

    async def holds(self, key: str) -> bool:
        return key in self.data

    async def forget(self, key: str, raw: str) -> bool:
        return self.data.pop(key, None) is not None


class FakeRun:
    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services, self.writes = services, []  # type: list[dict[str, Any]], list[str]

    async def list(self, project: str, region: str) -> list[dict[str, Any]]:
        return self.services

    async def delete(self, ref: ServiceRef, *, etag: str = "") -> None:
        self.writes.append(f"delete {ref.service}")

    async def update(self, ref: ServiceRef, body: Any, mask: Any) -> None:
        self.writes.append(f"update {ref.service}")


class FakeGoogle:
    def __init__(self, run: FakeRun) -> None:
        self.run = run


async def gone(namespace: str, name: str) -> bool:
    return False


def test_the_sweep_never_finishes_a_recorded_owners_service_and_finishes_the_rest() -> None:
    run = FakeRun([listed("web", OWNER.readable), listed("api", f"{CLUSTER}/shop/api")])
    ledger = FakeLedger({ENTRY.key: ENTRY.encode()})
    google: Any = FakeGoogle(run)
    report = asyncio.run(sweep([("p", "r")], google, CLUSTER, gone, ledger))
    assert run.writes == ["delete api"]
    assert report.left == ["projects/p/locations/r/services/web"]
    assert ledger.data == {ENTRY.key: ENTRY.encode()}, "the service is still there and marked: the entry stays"


class RefusingApi:
    def read_namespaced_config_map(self, *args: Any, **kwargs: Any) -> Any:
        raise ApiException(status=403, reason="Forbidden")


class FullApi:
    def __init__(self) -> None:
        self.patched = False

    def read_namespaced_config_map(self, *args: Any, **kwargs: Any) -> Any:
        class Found:
            data = {f"{i:016x}": "{}" for i in range(LEDGER_LIMIT)}

        return Found()

    def patch_namespaced_config_map(self, *args: Any, **kwargs: Any) -> None:
        self.patched = True


def _ledger_over(api: Any) -> ConfigMapLedger:
    ledger = ConfigMapLedger.__new__(ConfigMapLedger)
    ledger.namespace, ledger._api = "ops", api
    return ledger


def test_an_unreadable_record_holds_every_owner() -> None:
    assert asyncio.run(_ledger_over(RefusingApi()).holds("anything")) is True


def test_a_full_record_refuses_a_new_entry() -> None:
    api = FullApi()
    with pytest.raises(LedgerError, match="full"):
        asyncio.run(_ledger_over(api).record(ENTRY))
    assert not api.patched
