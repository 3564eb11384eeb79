"""A drift or resume pass may take its service from a regional listing; it never acts on a stale copy.

Proved on the service step with a recording port (no network): a routine pass whose listed copy only confirms the
status reads nothing else; a listed copy that would change anything (drift, a rollout, another revision, not
listed) and any non-routine pass read the service itself, and the plan comes from that fresh read. And on the
Cloud Run adapter: concurrent passes share one listing, a listing older than its max age is not reused, and a
failed listing is not asked again within it (the passes read their services instead). A listing is never older
than half the object's drift interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.model import parse_spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.service import desired_service, template_hash
from iaprun_operator.google.calls import Calls
from iaprun_operator.google.cloudrun import CloudRun
from iaprun_operator.google.ratelimit import Limiter
from iaprun_operator.results import ObjectView
from iaprun_operator.schedule import DRIFT_ANNOTATION, listing_age
from iaprun_operator.settings import Settings
from iaprun_operator.steps import service
from iaprun_operator.steps.service import ServiceAction

SPEC: dict[str, Any] = {"region": "asia-northeast1", "template": {"containers": [{"image": "hello"}]}}
REF = ServiceRef("p", "asia-northeast1", "hello")
PARSED = parse_spec(SPEC, name="hello")
STATUS = {
    "templateHash": template_hash(PARSED),
    "latestReadyRevision": "hello-001",
    "latestCreatedRevision": "hello-001",
    "url": "https://hello.run.app",
    "conditions": [{"type": "Ready", "status": "True", "reason": "UpToDate"}],
}
ROUTINE = ObjectView("team-a", "hello", 1, SPEC, STATUS, "c1", listing_age=30.0)


def served(**changes: Any) -> dict[str, Any]:
    """The service as Cloud Run shows it when it is as the spec says, ready and settled."""
    body = {
        **desired_service(PARSED, ROUTINE.owner),
        "name": REF.name,
        "latestReadyRevision": "hello-001",
        "latestCreatedRevision": "hello-001",
        "uri": "https://hello.run.app",
        "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED"},
    }
    return body | changes


class Reads:
    def __init__(self, listed: Mapping[str, Any] | None, fresh: Mapping[str, Any] | None) -> None:
        self._listed, self._fresh = listed, fresh
        self.calls: list[str] = []

    async def listed(self, ref: ServiceRef, *, max_age: float) -> dict[str, Any] | None:
        self.calls.append("listed")
        return None if self._listed is None else dict(self._listed)

    async def get(self, ref: ServiceRef) -> dict[str, Any] | None:
        self.calls.append("get")
        return None if self._fresh is None else dict(self._fresh)


class Ports:
    def __init__(self, listed: Mapping[str, Any] | None, fresh: Mapping[str, Any] | None) -> None:
        self.run = Reads(listed, fresh)


async def observe(obj: ObjectView, ports: Ports) -> tuple[dict[str, Any] | None, service.ServicePlan]:
    return await service.observe_and_plan(ports, obj, PARSED, REF, Settings())  # type: ignore[arg-type]


async def test_an_object_not_ready_reads_its_service_without_listing() -> None:
    """Only a Ready status can be confirmed by a listed copy: a stalled object (say, a ManagementConflict checked
    every second) would list and then read anyway, doubling its reads and starving the others' creates."""
    stalled = {**STATUS, "conditions": [{"type": "Ready", "status": "False", "reason": "ManagementConflict"}]}
    ports = Ports(served(), served())
    await observe(ObjectView("team-a", "hello", 1, SPEC, stalled, "c1", listing_age=30.0), ports)
    assert ports.run.calls == ["get"]


async def test_a_listed_copy_that_confirms_the_status_is_the_only_read() -> None:
    ports = Ports(served(), served())
    observed, decided = await observe(ROUTINE, ports)
    assert ports.run.calls == ["listed"]
    assert decided.action is ServiceAction.KEEP
    assert observed == served()


@pytest.mark.parametrize(
    "listed",
    [
        served(template={"containers": [{"image": "drifted"}]}),
        served(reconciling=True),
        served(terminalCondition={"type": "Ready", "state": "CONDITION_FAILED"}),
        served(latestReadyRevision="hello-002"),
        served(uri="https://elsewhere.run.app"),
        served(labels={}),
        None,
    ],
    ids=["drifted", "rolling-out", "failed", "new-revision", "new-url", "not-owned", "not-listed"],
)
async def test_a_listed_copy_that_would_change_anything_is_read_again(listed: dict[str, Any] | None) -> None:
    fresh = served(template={"containers": [{"image": "fresh-drift"}]})
    ports = Ports(listed, fresh)
    observed, decided = await observe(ROUTINE, ports)
    assert ports.run.calls[-1] == "get"
    assert observed == fresh
    assert decided.action is ServiceAction.UPDATE  # planned from the fresh read, not the listing


async def test_a_pass_acting_on_a_change_never_uses_a_listing() -> None:
    ports = Ports(served(), served())
    await observe(dataclasses.replace(ROUTINE, listing_age=0.0), ports)
    assert ports.run.calls == ["get"]


def test_a_listing_is_never_older_than_half_the_objects_drift_interval() -> None:
    settings = Settings(service_list_max_age=30.0, drift_interval=600.0, min_drift_interval=1.0)
    assert listing_age({}, settings) == 30.0
    assert listing_age({DRIFT_ANNOTATION: "2"}, settings) == 1.0
    assert listing_age({DRIFT_ANNOTATION: "0.5"}, settings) == 0.0  # refused: the pass reads its service
    assert listing_age({}, dataclasses.replace(settings, service_list_max_age=0.0)) == 0.0


class CountedRun(CloudRun):
    """The adapter with its ``services.list`` pages replaced by a counter (no network)."""

    def __init__(self, fail: bool = False) -> None:
        limiter = Limiter({"run_read": 1e6, "run_write": 1e6})
        super().__init__(
            calls=Calls(threads=1),
            limiter=limiter,
            creds=AnonymousCredentials(),
            endpoint="http://127.0.0.1:9",
            timeout=1,
        )
        self.lists = 0
        self.fail = fail

    async def _list(self, project: str, region: str) -> tuple[run_v2.Service, ...]:
        self.lists += 1
        await asyncio.sleep(0)
        if self.fail:
            raise GoogleError(Kind.PERMISSION, "run.services.list denied", api="run", method="services.list", code=403)
        return run_v2.Service(name=REF.name), run_v2.Service(name="projects/p/locations/asia-northeast1/services/other")


async def test_concurrent_passes_share_one_listing_until_it_is_too_old() -> None:
    run = CountedRun()
    found = await asyncio.gather(*(run.listed(REF, max_age=60) for _ in range(5)))
    assert run.lists == 1
    assert found == [{"name": REF.name}] * 5
    assert await run.listed(ServiceRef("p", "asia-northeast1", "absent"), max_age=60) is None
    assert run.lists == 1
    await run.listed(REF, max_age=0)  # older than 0 s: listed again
    assert run.lists == 2
    await run.listed(ServiceRef("p", "europe-west1", "hello"), max_age=60)  # another place, another listing
    assert run.lists == 3


async def test_a_failed_listing_is_not_asked_again_within_its_max_age() -> None:
    run = CountedRun(fail=True)
    assert await run.listed(REF, max_age=60) is None
    assert await run.listed(REF, max_age=60) is None
    assert run.lists == 1
