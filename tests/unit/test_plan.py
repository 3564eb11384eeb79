"""The plan as rendered (``core.plan``) and computed (``planner``), issue 16.

Proves: a masked update becomes one entry per changed leaf with its value before and after; a policy write
becomes the grants and revocations it makes (conditions included), and no write none; an adoption's ownership
marks are listed but are no change; an ``ObserveOnly`` reconcile pass and the CLI's planner only ever read
(a Google fake that fails on any write), and the plan's entries are the steps' own decisions; a ``Paused`` pass
makes no call at all and keeps the conditions as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from iaprun_operator import planner
from iaprun_operator.cli.planning import OPEN_POLICY
from iaprun_operator.core import conditions as cond
from iaprun_operator.core import references, tenancy
from iaprun_operator.core.model import ManagementPolicy, management_policy, parse_spec
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.plan import FieldChange, Plan, field_changes, grant_changes
from iaprun_operator.core.service import desired_service, template_hash
from iaprun_operator.reconcile import reconcile
from iaprun_operator.results import ObjectView
from iaprun_operator.settings import Settings

ACCESSOR, INVOKER = "roles/iap.httpsResourceAccessor", "roles/run.invoker"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "projectID": "demo-project",
    "region": "asia-northeast1",
    "template": {"containers": [{"image": "hello", "env": [{"name": "A", "value": "1"}]}]},
    "iap": {"accessors": [{"member": "user:alice@example.com"}]},
    "managementPolicy": "ObserveOnly",
}
REF = ServiceRef("demo-project", "asia-northeast1", "hello")
OPEN = Settings(tenancy=OPEN_POLICY)
AGENT = "serviceAccount:service-123@gcp-sa-iap.iam.gserviceaccount.com"


def test_template_changes_are_listed_leaf_by_leaf() -> None:
    desired = {"template": {"containers": [{"image": "hello:v2", "env": [{"name": "A", "value": "1"}]}]}}
    observed = {"template": {"containers": [{"image": "hello", "env": [{"name": "A", "value": "1"}], "ports": []}]}}
    assert field_changes(("template",), desired, observed) == (
        FieldChange("template.containers[0].image", "hello", "hello:v2"),
    )


def test_label_and_scalar_changes_name_the_key_and_both_values() -> None:
    desired = {"labels": {"team": "b", "new": "x"}, "iapEnabled": True}
    observed = {"labels": {"team": "a", "gone": "y"}, "iapEnabled": False}
    assert field_changes(("labels", "iapEnabled"), desired, observed) == (
        FieldChange("labels.gone", "y", None),
        FieldChange("labels.new", None, "x"),
        FieldChange("labels.team", "a", "b"),
        FieldChange("iapEnabled", False, True),
    )


def test_a_policy_write_is_its_grants_and_revocations() -> None:
    expiry = {"title": "t", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")'}
    before = {"bindings": [{"role": ACCESSOR, "members": ["user:a@example.com", "user:b@example.com"]}]}
    after = {
        "bindings": [
            {"role": ACCESSOR, "members": ["user:a@example.com"]},
            {"role": ACCESSOR, "members": ["user:b@example.com"], "condition": expiry},
        ]
    }
    changes = grant_changes("IAP", before, after)
    assert [(g.member, g.action, g.condition) for g in changes] == [
        ("user:b@example.com", "Grant", expiry["expression"]),
        ("user:b@example.com", "Revoke", ""),
    ]
    assert grant_changes("IAP", before, None) == [], "no write, no change"


def test_ownership_marks_alone_are_no_change_but_are_listed() -> None:
    marks = (
        FieldChange("labels.iaprun-owner", None, "abc"),
        FieldChange("annotations.iaprun.dev/owner", None, "c/n/x"),
    )
    adopted = Plan("Update", marks)
    assert adopted.empty
    assert adopted.to_status(3)["changes"] == 0
    assert len(adopted.to_status(3)["service"]["fields"]) == 2
    assert "ownership marks" in adopted.summary()
    assert not Plan("Update", (*marks, FieldChange("iapEnabled", False, True))).empty
    assert not Plan("Create").empty


def test_management_policy_parses_and_reads_on_its_own() -> None:
    assert parse_spec(SPEC, name="hello").management_policy is ManagementPolicy.OBSERVE_ONLY
    assert (
        parse_spec({**SPEC, "managementPolicy": None} | {"managementPolicy": "Full"}, name="h").management_policy.value
        == "Full"
    )
    with pytest.raises(ValueError, match="managementPolicy"):
        parse_spec({**SPEC, "managementPolicy": "Sometimes"}, name="hello")
    assert management_policy({"managementPolicy": "Paused"}) is ManagementPolicy.PAUSED
    assert management_policy({}) is ManagementPolicy.FULL
    assert management_policy({"managementPolicy": ["?"]}) is ManagementPolicy.PAUSED, "unreadable: the careful one"


class ReadOnly:
    """Google as the planner sees it: reads answer from fixed values; any write (or a read of what was not given:
    IAP settings, a secret) fails the test. Shared with ``test_plan_settings``."""

    def __init__(
        self,
        service: Mapping[str, Any] | None,
        run_policy: dict[str, Any],
        iap_policy: dict[str, Any],
        settings: Mapping[str, Any] | None = None,
        secret: Any = None,
    ):
        self.service, self.run_policy, self.iap_policy = service, run_policy, iap_policy
        self.settings, self.secret = settings, secret
        self.calls: list[str] = []
        self.run, self.iap, self.projects, self.secrets = self, _Iap(self), self, self

    async def number(self, project: str) -> str:
        self.calls.append("number")
        return "123"

    async def get(self, ref: ServiceRef) -> Mapping[str, Any] | None:
        self.calls.append("get")
        return self.service

    async def get_iam_policy(self, ref: ServiceRef) -> dict[str, Any]:
        self.calls.append("run.getIamPolicy")
        return self.run_policy

    async def access(self, version: str, project: str) -> str:
        if self.secret is None:
            raise AssertionError("the planner read a secret")
        self.calls.append(f"secrets.access {version}")
        if isinstance(self.secret, Exception):
            raise self.secret
        return str(self.secret)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the planner called {name}, a write")


class _Iap:
    def __init__(self, world: ReadOnly) -> None:
        self.world = world

    async def get_iam_policy(self, resource: str, project: str) -> dict[str, Any]:
        self.world.calls.append("iap.getIamPolicy")
        return self.world.iap_policy

    async def get_settings(self, resource: str, project: str) -> dict[str, Any]:
        if self.world.settings is None:
            raise AssertionError("the planner read IAP settings")
        self.world.calls.append("iap.getIapSettings")
        return dict(self.world.settings)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the planner called iap.{name}, a write")


def _obj(spec: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> ObjectView:
    applied = {"templateHash": template_hash(parse_spec(spec, name="hello"))}
    return ObjectView("team-a", "hello", 4, spec, applied if status is None else status, "c1")


def _drifted() -> ReadOnly:
    spec = parse_spec(SPEC, name="hello")
    service = desired_service(spec, _obj(SPEC).owner)
    service["template"] = {"containers": [{"image": "other", "env": [{"name": "A", "value": "1"}]}]}
    service["terminalCondition"] = {"state": "CONDITION_SUCCEEDED"}
    run_policy = {"bindings": [{"role": INVOKER, "members": ["allUsers"]}], "etag": "e"}
    iap_policy = {"bindings": [{"role": ACCESSOR, "members": ["user:mallory@example.com"]}], "etag": "e"}
    return ReadOnly(service, run_policy, iap_policy)


async def test_observe_only_pass_reads_and_publishes_the_steps_decisions() -> None:
    google: Any = _drifted()
    result = await reconcile(_obj(SPEC), google, OPEN, NOW)
    assert set(google.calls) == {"number", "get", "run.getIamPolicy", "iap.getIamPolicy"}
    plan = result.status["plan"]
    assert plan["observedGeneration"] == 4
    assert plan["service"]["fields"] == [{"field": "template.containers[0].image", "from": "other", "to": "hello"}]
    assert {(g["policy"], g["member"], g["action"]) for g in plan["iam"]} == {
        ("Service", AGENT, "Grant"),
        ("IAP", "user:alice@example.com", "Grant"),
        ("IAP", "user:mallory@example.com", "Revoke"),
    }
    assert [(g["member"], g["action"]) for g in plan["publicBindings"]] == [("allUsers", "Revoke")]
    assert plan["changes"] == 5
    synced = cond.find(result.status["conditions"], cond.SYNCED)
    assert synced is not None
    assert synced["status"] == "False"
    assert "templateHash" not in result.status, "an ObserveOnly pass records no applied template"


async def test_the_plan_of_a_missing_service_is_its_creation_and_its_grants() -> None:
    google: Any = ReadOnly(None, {}, {})
    seen = await planner.plan(google, _obj(SPEC), parse_spec(SPEC, name="hello"), REF, OPEN, NOW)
    assert seen.plan.service_action == "Create"
    assert {(g.member, g.action) for g in seen.plan.grants} == {(AGENT, "Grant"), ("user:alice@example.com", "Grant")}
    assert google.calls == ["number", "get"], "a service that does not exist has no policy to read"


async def test_paused_pass_calls_nothing_and_keeps_the_conditions() -> None:
    previous = [{"type": "Ready", "status": "True", "reason": "UpToDate", "message": "", "observedGeneration": 3}]
    google: Any = ReadOnly(None, {}, {})
    obj = _obj({**SPEC, "managementPolicy": "Paused"}, {"conditions": previous, "observedGeneration": 3})
    result = await reconcile(obj, google, OPEN, NOW)
    assert google.calls == []
    types = [(c["type"], c["status"], c["reason"]) for c in result.status["conditions"]]
    assert types == [("Ready", "True", "UpToDate"), ("Synced", "False", "Paused")]
    assert "observedGeneration" not in result.status, "a paused object has not acted on its spec"


def test_cli_errors_exit_1_never_2_which_means_changes(tmp_path: Any) -> None:
    from iaprun_operator.cli import main

    with pytest.raises(SystemExit) as usage:
        main(["plan"])
    assert usage.value.code == 1
    assert main(["plan", "-f", str(tmp_path / "missing.yaml")]) == 1
    (tmp_path / "other.yaml").write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    assert main(["plan", "-f", str(tmp_path / "other.yaml")]) == 1


def test_cli_reads_a_directory_of_manifests(tmp_path: Any) -> None:
    from iaprun_operator.cli.planning import manifests

    (tmp_path / "a.yaml").write_text("kind: IapRunService\nmetadata: {name: a}\n---\nkind: ConfigMap\n")
    (tmp_path / "b.yml").write_text("kind: List\nitems: [{kind: IapRunService, metadata: {name: b}}]\n")
    (tmp_path / "notes.txt").write_text("kind: IapRunService\n")
    assert [d["metadata"]["name"] for d in manifests(str(tmp_path))] == ["a", "b"]


async def test_observe_only_on_a_service_owned_elsewhere_stalls_as_a_pass_would_and_plans_nothing() -> None:
    google = _drifted()
    google.service = {**dict(google.service or {}), "labels": {"iaprun-owner": "someone-else"}}
    result = await reconcile(_obj(SPEC), google, OPEN, NOW)  # type: ignore[arg-type]
    assert result.status["plan"]["service"]["action"] == "Refuse"
    assert result.status["plan"]["changes"] == 0
    stalled = cond.find(result.status["conditions"], cond.STALLED)
    assert stalled is not None
    assert stalled["reason"] == "ManagementConflict"
    assert "run.getIamPolicy" not in google.calls


def test_the_cli_policy_allows_every_reference_a_spec_can_make() -> None:
    """The CLI plans what the operator would write, so its open policy refuses nothing (it is singleTenant's rule
    plus public access, never a copy that misses a newer kind of reference)."""
    template = {
        "containers": [{"image": "gcr.io/x/y"}],
        "vpcAccess": {"networkInterfaces": [{"network": "default"}]},
        "volumes": [{"name": "v", "gcs": {"bucket": "b"}}],
    }
    spec = parse_spec(
        {
            "region": "asia-northeast1",
            "template": template,
            "invokerIamDisabled": True,
            "binaryAuthorization": {"useDefault": True, "breakglassJustification": "incident"},
        },
        name="hello",
    )
    refs = references.extract(spec, "demo-project")
    assert refs.networks
    assert refs.buckets
    assert refs.binary_authorization_breakglass
    allowed = tenancy.check(OPEN_POLICY, namespace="any", namespace_labels={}, refs=refs, operator_account=None)
    assert allowed is None
