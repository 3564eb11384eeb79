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


def test_enums_are_cloud_run_v2_values_as_written() -> None:
    spec = parse_spec(
        {
            **BASE,
            "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            "template": {**BASE["template"], "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2"},
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
        ({"ingress": "All"}, "ingress"),
        ({"deletionPolicy": "Orphan"}, "deletionPolicy"),
        ({"template": {"containers": [{"image": "a"}], "executionEnvironment": "Gen2"}}, "executionEnvironment"),
        ({"annotations": {"run.googleapis.com/ingress": "all"}}, "system annotation"),
        ({"annotations": {"autoscaling.knative.dev/maxScale": "3"}}, "system annotation"),
        ({"annotations": {"iaprun.dev/owner": "me"}}, "reserved for the operator"),
        ({"template": {"containers": [{"image": "a"}], "annotations": {"run.googleapis.com/x": "1"}}}, "system"),
        ({"template": {"containers": [{"image": "a"}], "labels": {"iaprun-owner": "x"}}}, "reserved"),
        ({"template": {"containers": [{"name": "a", "image": "a"}, {"name": "a", "image": "b"}]}}, "twice"),
        ({"template": {"containers": [{"image": "a"}], "volumes": [{"name": "v"}, {"name": "v"}]}}, "twice"),
        (
            {"template": {"containers": [{"image": "a", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]}},
            "no volume",
        ),
        ({"template": {"containers": [{"name": "a", "image": "a", "dependsOn": ["b"]}]}}, "no other container"),
        ({"template": {"containers": [{"name": "a", "image": "a", "dependsOn": ["a"]}]}}, "no other container"),
        (
            {
                "template": {
                    "containers": [
                        {"name": "a", "image": "a", "dependsOn": ["b"]},
                        {"name": "b", "image": "b", "dependsOn": ["a"]},
                    ]
                }
            },
            "cycle",
        ),
        (
            {
                "template": {
                    "containers": [{"image": "a", "ports": [{"containerPort": 1}]}, {"image": "b", "ports": [{}]}]
                }
            },
            "at most one container",
        ),
        (
            {"template": {"containers": [{"image": "a"}], "scaling": {"minInstanceCount": 3, "maxInstanceCount": 2}}},
            "exceeds",
        ),
        ({"scaling": {"minInstanceCount": 3, "maxInstanceCount": 2}}, "exceeds"),
        ({"traffic": [{"percent": 90}]}, "add up to 90"),
        ({"traffic": [{"percent": 50, "tag": "a"}, {"percent": 50, "tag": "a"}]}, "tag 'a' is declared twice"),
        ({"traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "percent": 100}]}, "names its revision"),
        ({"traffic": [{"type": "LATEST", "percent": 100}]}, "is not"),
        ({"defaultUriDisabled": "yes"}, "defaultUriDisabled"),
        ({"customAudiences": [""]}, "customAudiences"),
    ],
)
def test_invalid_specs_are_refused(patch: dict, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_spec({**BASE, **patch}, name="hello")


def test_the_old_value_from_spelling_is_refused_with_the_v2_name() -> None:
    """An object stored before the v2 names must not lose its secret reference silently."""
    ref = {"secretKeyRef": {"secret": "db-password", "version": "latest"}}
    with pytest.raises(InvalidSpecError, match="write valueSource"):
        parse_spec(
            {**BASE, "template": {"containers": [{"image": "hello", "env": [{"name": "PW", "valueFrom": ref}]}]}},
            name="hello",
        )


def test_v2_template_and_service_fields_pass_through_as_declared() -> None:
    template = {
        "containers": [
            {
                "name": "app",
                "image": "a",
                "ports": [{"containerPort": 8080}],
                "volumeMounts": [{"name": "v", "mountPath": "/v"}],
            },
            {"name": "side", "image": "b", "dependsOn": ["app"]},
        ],
        "volumes": [{"name": "v", "emptyDir": {"medium": "MEMORY"}}],
        "vpcAccess": {"networkInterfaces": [{"network": "default"}], "egress": "PRIVATE_RANGES_ONLY"},
    }
    traffic = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100, "tag": "live"}]
    spec = parse_spec(
        {
            **BASE,
            "template": template,
            "traffic": traffic,
            "annotations": {"team.example/x": "1"},
            "defaultUriDisabled": False,
        },
        name="hello",
    )
    assert spec.template == template
    assert spec.fields == {"traffic": traffic, "defaultUriDisabled": False}
    assert spec.annotations == {"team.example/x": "1"}
