"""Spec parsing: defaults, enum mapping, and the fail-closed rules the operator re-checks itself.

The API server enforces the same rules at admission; these prove the operator refuses them even when an
object got past a CRD without them (InvalidSpec, before any Google call).
"""

from __future__ import annotations

import pytest

from iaprun_operator.core.model import (
    AccessorsPolicy,
    Adoption,
    DeletionPolicy,
    InvalidSpecError,
    parse_spec,
)

BASE = {"region": "asia-northeast1", "template": {"containers": [{"image": "hello"}]}}


def test_defaults() -> None:
    spec = parse_spec(BASE, name="hello")
    assert spec.service_name == "hello"
    assert spec.ingress == "INGRESS_TRAFFIC_ALL"
    assert spec.iap.enabled is True
    assert spec.iap.policy is AccessorsPolicy.AUTHORITATIVE
    assert spec.deletion_policy is DeletionPolicy.DELETE
    assert spec.adoption is Adoption.NEVER
    assert spec.invoker_iam_disabled is False


def test_invoker_iam_disabled_is_a_strict_boolean() -> None:
    """Cloud Run's "allow public access" switch: only a real true turns it on, anything else is refused."""
    assert parse_spec({**BASE, "invokerIamDisabled": True}, name="hello").invoker_iam_disabled is True
    assert parse_spec({**BASE, "invokerIamDisabled": None}, name="hello").invoker_iam_disabled is False
    with pytest.raises(InvalidSpecError, match=r"spec\.invokerIamDisabled: 'true' is not true or false"):
        parse_spec({**BASE, "invokerIamDisabled": "true"}, name="hello")


def test_enums_map_to_cloud_run_names() -> None:
    spec = parse_spec(
        {
            **BASE,
            "ingress": "InternalAndCloudLoadBalancing",
            "template": {**BASE["template"], "executionEnvironment": "Gen2"},
        },
        name="hello",
    )
    assert spec.ingress == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert spec.template["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"


def test_members_are_normalised() -> None:
    spec = parse_spec({**BASE, "iap": {"accessors": [{"member": "user:Alice@Example.COM"}]}}, name="x")
    assert spec.iap.accessors[0].member == "user:alice@example.com"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"iap": {"accessors": [{"member": "allUsers"}]}}, "public"),
        ({"iap": {"accessors": [{"member": " AllAuthenticatedUsers"}]}}, "public"),
        ({"iap": {"accessors": [{"member": "alice@example.com"}]}}, "not a supported IAM member"),
        ({"iap": {"accessors": [{"member": "user:a@x.com"}, {"member": "user:A@x.com"}]}}, "twice"),
        ({"iap": {"accessors": [{"member": "user:a@x.com", "expires": "tomorrow"}]}}, "RFC 3339"),
        ({"region": "Tokyo"}, "region"),
        ({"serviceName": "Bad_Name"}, "serviceName"),
        ({"serviceName": "a" * 50}, "serviceName"),
        ({"projectID": "X"}, "projectID"),
        ({"labels": {"iaprun-owner": "x"}}, "reserved"),
        ({"template": {"containers": []}}, "at least one container"),
        ({"ingress": "Public"}, "ingress"),
        ({"deletionPolicy": "Orphan"}, "deletionPolicy"),
    ],
)
def test_invalid_specs_are_refused(patch: dict, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_spec({**BASE, **patch}, name="hello")


def test_secret_env_maps_to_cloud_run_value_source() -> None:
    ref = {"secretKeyRef": {"secret": "db-password", "version": "latest"}}
    spec = parse_spec(
        {**BASE, "template": {"containers": [{"image": "hello", "env": [{"name": "PW", "valueFrom": ref}]}]}},
        name="hello",
    )
    assert spec.template["containers"][0]["env"] == [{"name": "PW", "valueSource": ref}]
