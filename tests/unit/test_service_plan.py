"""The service step's plan is a value: decided from the object and what was observed, with no I/O, and
``apply`` writes exactly that plan (the object an observe-only mode would publish is the one written).
Also: finalize decides on the parsed deletion policy, and a policy it cannot parse deletes, as the default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from iaprun_operator.core.model import DeletionPolicy, parse_spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.service import desired_service, template_hash
from iaprun_operator.finalize import deletion_policy
from iaprun_operator.results import ObjectView
from iaprun_operator.settings import Settings
from iaprun_operator.steps import service
from iaprun_operator.steps.service import ServiceAction

SPEC: dict[str, Any] = {
    "region": "asia-northeast1",
    "template": {"containers": [{"image": "hello"}]},
    "iap": {"enabled": True},
}
APPLIED = {"templateHash": template_hash(parse_spec(SPEC, name="hello"))}
OBJ = ObjectView(namespace="team-a", name="hello", generation=1, spec=SPEC, status=APPLIED, cluster_id="c1")
REF = ServiceRef("p", "asia-northeast1", "hello")


class Writes:
    """Records the writes ``apply`` makes (the only port methods it may call)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, Mapping[str, Any], tuple[str, ...]]] = []

    async def create(self, ref: ServiceRef, body: Mapping[str, Any]) -> str:
        self.made.append(("create", body, ()))
        return "op"

    async def update(self, ref: ServiceRef, body: Mapping[str, Any], mask: Sequence[str]) -> str:
        self.made.append(("update", body, tuple(mask)))
        return "op"


class Ports:
    def __init__(self) -> None:
        self.run = Writes()


def plan(observed: Mapping[str, Any] | None, spec: Mapping[str, Any] = SPEC) -> service.ServicePlan:
    return service.plan(OBJ, parse_spec(spec, name="hello"), REF, observed, Settings())


async def test_the_applied_update_is_the_planned_one() -> None:
    spec = parse_spec(SPEC, name="hello")
    observed = {**desired_service(spec, OBJ.owner), "iapEnabled": False}
    decided = plan(observed)
    assert decided.action is ServiceAction.UPDATE
    assert decided.mask == ("iapEnabled",)
    ports = Ports()
    assert await service.apply(ports, decided, spec) is None  # type: ignore[arg-type]
    assert ports.run.made == [("update", decided.body, decided.mask)]


def test_absent_is_created_and_unowned_is_refused_without_a_write() -> None:
    assert plan(None).action is ServiceAction.CREATE
    refused = plan(desired_service(parse_spec(SPEC, name="hello"), None))
    assert refused.action is ServiceAction.REFUSE
    assert refused.refusal is not None
    assert refused.refusal.reason == "ManagementConflict"


@pytest.mark.parametrize(
    ("raw", "policy"),
    [("Abandon", DeletionPolicy.ABANDON), ("Delete", DeletionPolicy.DELETE), (None, DeletionPolicy.DELETE),
     ("abandon", DeletionPolicy.DELETE), (["Abandon"], DeletionPolicy.DELETE)],
)  # fmt: skip
def test_finalize_reads_the_parsed_deletion_policy(raw: object, policy: DeletionPolicy) -> None:
    assert deletion_policy({"deletionPolicy": raw}) is policy
