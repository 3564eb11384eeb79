"""The orphan sweep's rules: which services carry a claim of this cluster, and what finishing them means.

Proves: only a mark written whole by this cluster (label = hash of the readable annotation, same cluster
id) is a claim; the stamped deletion policy decides Delete or Abandon; without a stamp the sweep only
reports. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib

import pytest

from iaprun_operator.core.names import Owner
from iaprun_operator.core.orphans import OrphanAction, claim

CLUSTER = "0b6c7f7e-cluster"


def marked(readable: str, *, policy: str | None = "Delete", label: str | None = None) -> dict[str, object]:
    """A service as Cloud Run lists it, carrying ownership marks computed here (not by the operator)."""
    annotations = {"iaprun.dev/owner": readable, "other-tool/note": "x"}
    if policy is not None:
        annotations["iaprun.dev/deletion-policy"] = policy
    digest = hashlib.sha256(readable.encode()).hexdigest()[:16]
    return {"labels": {"iaprun-owner": label or digest, "team": "a"}, "annotations": annotations}


@pytest.mark.parametrize(
    ("policy", "action"),
    [("Delete", OrphanAction.DELETE), ("Abandon", OrphanAction.ABANDON), (None, OrphanAction.REPORT)],
)
def test_the_stamped_policy_decides(policy: str | None, action: OrphanAction) -> None:
    found = claim(marked(f"{CLUSTER}/team-a/hello", policy=policy), CLUSTER)
    assert found is not None
    assert found.owner == Owner(CLUSTER, "team-a", "hello")
    assert found.action is action


def test_an_unknown_stamp_is_only_reported() -> None:
    found = claim(marked(f"{CLUSTER}/team-a/hello", policy="delete"), CLUSTER)
    assert found is not None
    assert found.action is OrphanAction.REPORT


@pytest.mark.parametrize(
    "service",
    [
        {},
        {"labels": {"team": "a"}},
        marked("other-cluster/team-a/hello"),
        marked(f"{CLUSTER}/team-a/hello", label="0123456789abcdef"),
        {"labels": {"iaprun-owner": "0123456789abcdef"}},
        marked("team-a/hello"),
        marked(f"{CLUSTER}//hello"),
    ],
    ids=["bare", "unmarked", "other-cluster", "label-mismatch", "label-only", "malformed", "empty-namespace"],
)
def test_no_claim_without_a_whole_mark_of_this_cluster(service: dict[str, object]) -> None:
    assert claim(service, CLUSTER) is None


def test_a_cluster_id_may_contain_slashes() -> None:
    cluster = "projects/p/locations/l/clusters/c"
    found = claim(marked(f"{cluster}/team-a/hello"), cluster)
    assert found is not None
    assert found.owner == Owner(cluster, "team-a", "hello")
