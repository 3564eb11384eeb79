"""Prerequisites and organisation policy are told apart from permission and invalid-argument errors, and the
access-level conditions the operator writes read back as what they grant.

A disabled API mislabelled ``PermissionDenied`` sends the platform team to the wrong fix (roles, not
``gcloud services enable``); a domain-restricted-sharing refusal mislabelled ``UpdateFailed`` hides the members
and the constraint. Real client exceptions built from Google's envelopes, both client families.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from iaprun_operator.core.errors import GoogleError, Kind, org_policy_refusal, prerequisite
from iaprun_operator.core.iam import Grant, grant_of_condition, parse_expression
from iaprun_operator.google.calls import to_google_error
from unit.test_error_mapping import FAMILIES

DISABLED = {
    "code": 403,
    "status": "PERMISSION_DENIED",
    "message": "Cloud Run Admin API has not been used in project 111111111111 before or it is disabled.",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
            "metadata": {"service": "run.googleapis.com", "consumer": "projects/111111111111"},
        }
    ],
}
DENIED = {**DISABLED, "details": [{**DISABLED["details"][0], "reason": "IAM_PERMISSION_DENIED", "metadata": {}}]}
DRS = {
    "code": 400,
    "status": "FAILED_PRECONDITION",
    "message": "One or more users named in the policy do not belong to a permitted customer.",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
            "violations": [
                {
                    "type": "constraints/iam.allowedPolicyMemberDomains",
                    "subject": "orgpolicy:projects/p?configvalue=m@outside.test",
                    "description": "User m@outside.test is not in permitted organization.",
                }
            ],
        }
    ],
}
DRS_BARE = {  # Cloud Run's v1 IAM answer as Terraform shows it: the message alone
    "code": 400,
    "status": "INVALID_ARGUMENT",
    "message": "One or more users named in the policy do not belong to a permitted customer,  perhaps due to an "
    "organization policy.",
}


def mapped(family: str, error: dict[str, object]) -> GoogleError:
    raised = FAMILIES[family](int(str(error["code"])), json.dumps({"error": error}).encode())
    found = to_google_error(raised, api="run", method="m")
    assert found is not None
    return found


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_service_disabled_is_not_a_permission_error(family: str) -> None:
    assert mapped(family, DISABLED).kind is Kind.API_NOT_ENABLED
    assert mapped(family, DENIED).kind is Kind.PERMISSION


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_domain_restricted_sharing_is_an_org_policy_refusal_naming_the_member(family: str) -> None:
    error = mapped(family, DRS)
    assert error.kind is Kind.ORG_POLICY
    refusal = org_policy_refusal(error)
    assert (refusal.constraint, refusal.members) == ("constraints/iam.allowedPolicyMemberDomains", ("m@outside.test",))
    assert mapped(family, DRS_BARE).kind is Kind.ORG_POLICY


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_command_names_the_objects_project_or_the_credentials_project(family: str) -> None:
    error = mapped(family, DISABLED)
    own = prerequisite(error, project="my-app", number="111111111111")
    assert own.command == "gcloud services enable run.googleapis.com --project=my-app"
    elsewhere = prerequisite(error, project="my-app", number="999999999999")
    assert elsewhere.command == "gcloud services enable run.googleapis.com --project=111111111111"
    assert "credentials" in elsewhere.describe()


def test_conditions_the_operator_writes_read_back_as_their_grant() -> None:
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    for grant in (
        Grant(until),
        Grant(None, ("accessPolicies/1/accessLevels/a",)),
        Grant(until, ("accessPolicies/1/accessLevels/a", "accessPolicies/1/accessLevels/b")),
    ):
        assert grant_of_condition(grant.condition()) == grant
    foreign = "'accessPolicies/1/accessLevels/corp' in request.auth.access_levels"
    assert parse_expression(foreign) is None  # single quotes: someone else's spelling, never rewritten
    assert grant_of_condition({"title": "corp-device", "expression": Grant(until).condition()["expression"]}) is None
    b, a = (f'"accessPolicies/1/accessLevels/{x}" in request.auth.access_levels' for x in "ba")
    unsorted = f"({b} || {a})"
    assert parse_expression(unsorted) is None


def test_the_project_number_comes_from_status_only_for_the_same_project() -> None:
    """An earlier pass's number spares Resource Manager; a number recorded for another project is never used."""
    from iaprun_operator.reconcile import _pinned_number
    from iaprun_operator.results import ObjectView

    def view(status: dict[str, str]) -> ObjectView:
        return ObjectView(namespace="ns", name="o", generation=1, spec={}, status=status, cluster_id="c")

    assert _pinned_number(view({"projectID": "p", "projectNumber": "42"}), "p") == "42"
    assert _pinned_number(view({"projectID": "q", "projectNumber": "42"}), "p") is None
    assert _pinned_number(view({}), "p") is None


@pytest.mark.parametrize(
    "levels",
    [
        ["corp"],
        ["accessPolicies/x/accessLevels/corp"],
        ["accessPolicies/1/accessLevels/9corp"],
        ['accessPolicies/1/accessLevels/a" || true || "'],
        [f"accessPolicies/1/accessLevels/l{i}" for i in range(11)],
    ],
)
def test_access_levels_that_are_not_level_names_are_refused_before_any_call(levels: list[str]) -> None:
    """Only well-formed level names reach a condition: nothing a spec says can change its expression's shape."""
    from iaprun_operator.core.model import InvalidSpecError, parse_spec

    spec = {
        "region": "asia-northeast1",
        "template": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]},
        "iap": {"accessors": [{"member": "user:a@example.com", "accessLevels": levels}]},
    }
    with pytest.raises(InvalidSpecError, match="accessLevels"):
        parse_spec(spec, name="o")


def test_a_remembered_number_spares_resource_manager_for_the_whole_project() -> None:
    """Once any object's status has told the adapter a project's number, asking for it makes no call (the
    adapter has no Google client here: a call would fail)."""
    import asyncio
    from typing import Any, cast

    from iaprun_operator.google.calls import Calls
    from iaprun_operator.google.projects import Projects
    from iaprun_operator.google.ratelimit import Limiter

    async def scenario() -> str:
        projects = Projects(
            calls=Calls(threads=1), limiter=Limiter({"crm": 60.0}), clients=cast(Any, None), iap=cast(Any, None)
        )
        projects.remember("p", "42")
        projects.remember("p", "43")  # the first answer stands
        return await projects.number("p")

    assert asyncio.run(scenario()) == "42"
