"""Desired Cloud Run service and the minimal update: what gets written, and what must not be.

Proves: a spec change writes exactly the template; server-set defaults in the observed template are
not drift; an out-of-band change to a declared value is drift; toggling IAP writes only iapEnabled;
other tools' annotations survive; launchStage read back lower is not drift. Pure functions.
"""

from __future__ import annotations

import copy

import pytest

from iaprun_operator.core.model import InvalidSpecError, Spec, parse_spec
from iaprun_operator.core.names import DELETION_POLICY_ANNOTATION, OWNER_ANNOTATION, OWNER_LABEL, Owner
from iaprun_operator.core.service import (
    ServiceUpdate,
    contains,
    desired_service,
    ownership,
    plan_update,
    template_hash,
    without_owner,
)

OWNER = Owner("cluster", "team-a", "hello")
SPEC = {
    "region": "asia-northeast1",
    "projectID": "demo-project",
    "template": {
        "containers": [
            {"image": "us-docker.pkg.dev/cloudrun/container/hello", "resources": {"limits": {"cpu": "1000m"}}}
        ]
    },
    "iap": {"enabled": True},
    "launchStage": "BETA",
}


def observed_from(desired: dict) -> dict:
    """What Cloud Run returns after applying ``desired``: defaults filled in, launch stage lowered."""
    observed = copy.deepcopy(desired)
    container = observed["template"]["containers"][0]
    container["ports"] = [{"name": "http1", "containerPort": 8080}]
    container["resources"] = {"limits": {"cpu": "1", "memory": "512Mi"}, "cpuIdle": True}
    observed["template"]["maxInstanceRequestConcurrency"] = 80
    observed["template"]["timeout"] = "300s"
    observed["launchStage"] = "GA"
    observed["annotations"]["other-tool/note"] = "kept"
    return observed


def plan(spec: Spec, observed: dict, *, applied: Spec | None = None) -> ServiceUpdate:
    """The update for ``spec`` against ``observed``, the last applied template being ``applied`` (default: same)."""
    return plan_update(
        desired_service(spec, OWNER, observed),
        observed,
        applied_hash=template_hash(applied or spec),
        desired_hash=template_hash(spec),
    )


def test_steady_state_writes_nothing() -> None:
    spec = parse_spec(SPEC, name="hello")
    observed = observed_from(desired_service(spec, OWNER))
    update = plan(spec, observed)
    assert not update


def test_image_change_writes_only_the_template() -> None:
    spec = parse_spec(SPEC, name="hello")
    observed = observed_from(desired_service(spec, OWNER))
    changed = copy.deepcopy(SPEC)
    changed["template"]["containers"][0]["image"] = "us-docker.pkg.dev/cloudrun/container/hello:v2"
    new = parse_spec(changed, name="hello")
    update = plan(new, observed, applied=spec)
    assert update.mask == ("template", "launchStage")


def test_out_of_band_image_change_is_drift() -> None:
    spec = parse_spec(SPEC, name="hello")
    observed = observed_from(desired_service(spec, OWNER))
    observed["template"]["containers"][0]["image"] = "evil/image"
    update = plan(spec, observed)
    assert update.mask == ("template", "launchStage")
    assert "outside the operator" in update.reasons[0]


def test_iap_toggle_writes_only_iap_enabled_and_keeps_foreign_annotations() -> None:
    spec = parse_spec(SPEC, name="hello")
    observed = observed_from(desired_service(spec, OWNER))
    off = parse_spec({**SPEC, "iap": {"enabled": False}}, name="hello")
    desired = desired_service(off, OWNER, observed)
    update = plan_update(desired, observed, applied_hash=template_hash(off), desired_hash=template_hash(off))
    assert update.mask == ("iapEnabled",)
    assert desired["annotations"]["other-tool/note"] == "kept"
    assert desired["iapEnabled"] is False


def test_ownership_marks_and_abandon() -> None:
    spec = parse_spec(SPEC, name="hello")
    observed = observed_from(desired_service(spec, OWNER))
    assert ownership(observed) == OWNER.label
    assert ownership({"labels": {}}) is None
    bare = without_owner(observed)
    assert OWNER_LABEL not in bare["labels"]
    assert OWNER_ANNOTATION not in bare["annotations"]
    assert DELETION_POLICY_ANNOTATION not in bare["annotations"]
    assert bare["annotations"]["other-tool/note"] == "kept"


def test_deletion_policy_is_stamped_and_kept_current() -> None:
    """The orphan sweep honours the policy stamped on the service, so a changed policy is written."""
    spec = parse_spec(SPEC, name="hello")
    observed = observed_from(desired_service(spec, OWNER))
    assert observed["annotations"][DELETION_POLICY_ANNOTATION] == "Delete"
    abandon = parse_spec({**SPEC, "deletionPolicy": "Abandon"}, name="hello")
    update = plan(abandon, observed, applied=spec)
    assert update.mask == ("annotations",)
    assert desired_service(abandon, OWNER, observed)["annotations"][DELETION_POLICY_ANNOTATION] == "Abandon"


def test_a_service_without_the_stamp_is_not_written_for_it_alone() -> None:
    """Services marked before the stamp existed: no write just for the stamp; it rides on the next write."""
    spec = parse_spec(SPEC, name="hello")
    observed = observed_from(desired_service(spec, OWNER))
    del observed["annotations"][DELETION_POLICY_ANNOTATION]
    same = plan(spec, observed)
    assert not same
    changed = parse_spec({**SPEC, "description": "now described"}, name="hello")
    update = plan(changed, observed, applied=spec)
    assert update.mask == ("description", "annotations")


def test_contains_normalises_quantities_and_defaults() -> None:
    assert contains({"cpu": "1000m"}, {"cpu": "1"}, "limits")
    assert contains({"memory": "1Gi"}, {"memory": "1024Mi"})
    assert contains({"timeout": "300s"}, {"timeout": "300s", "x": 1})
    assert contains({"env": [{"name": "A", "value": ""}]}, {"env": [{"name": "A"}]})
    assert not contains({"env": [{"name": "A"}]}, {"env": []})
    assert not contains({"image": "a"}, {"image": "b"})


def test_invoker_iam_check_is_written_on_and_a_public_switch_is_drift() -> None:
    """invokerIamDisabled is in every body the operator writes (false by default); Google omits a false value
    on read, which is no drift; a service switched to public access out of band is patched back, alone."""
    spec = parse_spec(SPEC, name="hello")
    desired = desired_service(spec, OWNER)
    assert desired["invokerIamDisabled"] is False
    observed = observed_from(desired)
    del observed["invokerIamDisabled"]  # a real read-back omits false
    assert not plan(spec, observed)
    observed["invokerIamDisabled"] = True
    update = plan(spec, observed)
    assert update.mask == ("invokerIamDisabled",)
    assert update.reasons == ("invokerIamDisabled is True, want False",)


def test_invoker_iam_disabled_only_when_the_spec_says_so() -> None:
    public = parse_spec({**SPEC, "invokerIamDisabled": True}, name="hello")
    assert public.invoker_iam_disabled is True
    observed = observed_from(desired_service(parse_spec(SPEC, name="hello"), OWNER))
    assert plan(public, observed).mask == ("invokerIamDisabled",)
    assert not plan(public, observed_from(desired_service(public, OWNER)))


def test_invoker_iam_disabled_must_be_a_boolean() -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.invokerIamDisabled"):
        parse_spec({**SPEC, "invokerIamDisabled": "yes"}, name="hello")
