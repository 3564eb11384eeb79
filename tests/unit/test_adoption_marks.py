"""The abandoned-by mark: left by Abandon so the same owner can take the service back, and nothing more.

Proves: abandoning removes the ownership marks and leaves ``iaprun.dev/abandoned-by`` with the owner label it
had; that mark never makes a service owned (for the reconcile loop or the orphan sweep); adopting removes it
again. Pure functions, no I/O.
"""

from __future__ import annotations

from iaprun_operator.core.model import parse_spec
from iaprun_operator.core.names import Owner
from iaprun_operator.core.orphans import claim
from iaprun_operator.core.service import abandoned_by, desired_service, ownership, without_owner

CLUSTER = "c1"
OWNER = Owner(CLUSTER, "team-a", "hello")
SPEC = parse_spec({"region": "asia-northeast1", "template": {"containers": [{"image": "i"}]}}, name="hello")


def test_abandon_leaves_the_former_owner_label_and_nothing_that_claims() -> None:
    owned = desired_service(SPEC, OWNER)
    owned["annotations"]["other-tool/note"] = "kept"
    bare = without_owner(owned)
    assert bare["annotations"] == {"other-tool/note": "kept", "iaprun.dev/abandoned-by": OWNER.label}
    assert "iaprun-owner" not in bare["labels"]
    assert ownership(bare) is None
    assert claim(bare, CLUSTER) is None
    assert abandoned_by(bare) == OWNER.label


def test_the_mark_alone_never_claims_even_with_a_readable_owner() -> None:
    forged = {"labels": {}, "annotations": {"iaprun.dev/abandoned-by": OWNER.label, "iaprun.dev/owner": OWNER.readable}}
    assert ownership(forged) is None
    assert claim(forged, CLUSTER) is None


def test_abandoning_an_unowned_service_writes_no_mark() -> None:
    assert abandoned_by(without_owner({"labels": {"team": "a"}})) is None


def test_adopting_removes_the_mark() -> None:
    observed = without_owner(desired_service(SPEC, OWNER))
    assert "iaprun.dev/abandoned-by" not in desired_service(SPEC, OWNER, observed)["annotations"]
