"""Conditions (kstatus rules) and the status bookkeeping around them (the tenancy policy: test_tenancy.py).

Conditions: Ready always present; Reconciling/Stalled only when True; lastTransitionTime kept while the
status is unchanged; every condition carries the generation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from iaprun_operator.core import conditions as cond

T0 = datetime(2026, 11, 29, tzinfo=UTC)
STEPS = [cond.Condition(t, True, "Ok") for t in cond.STEP_TYPES]


def test_ready_when_all_steps_true_and_no_abnormal_conditions() -> None:
    out = cond.render(cond.summarise(STEPS), [], generation=3, now=T0)
    types = {c["type"]: c for c in out}
    assert types["Ready"]["status"] == "True"
    assert "Reconciling" not in types
    assert "Stalled" not in types
    assert all(c["observedGeneration"] == 3 for c in out)


def test_stalled_and_reconciling_are_exclusive_and_only_true() -> None:
    stalled = cond.render(
        cond.summarise([], failure=cond.Failure("PermissionDenied", "no", stalled=True)), [], generation=1, now=T0
    )
    assert {c["type"] for c in stalled} == {"Ready", "Stalled"}
    progressing = cond.render(
        cond.summarise([], progress=cond.Progress("Creating", "wait")), stalled, generation=1, now=T0
    )
    assert {c["type"]: c["status"] for c in progressing} == {"Ready": "False", "Reconciling": "True"}


def test_transition_time_kept_while_status_unchanged() -> None:
    first = cond.render(cond.summarise(STEPS), [], generation=1, now=T0)
    later = cond.render(cond.summarise(STEPS), first, generation=2, now=T0 + timedelta(hours=1))
    assert first[0]["lastTransitionTime"] == later[0]["lastTransitionTime"]
    failed = cond.render(
        cond.summarise(STEPS, failure=cond.Failure("X", "y", stalled=False)),
        later,
        generation=2,
        now=T0 + timedelta(hours=2),
    )
    assert failed[0]["lastTransitionTime"] != later[0]["lastTransitionTime"]


def test_a_condition_holds_only_when_true_and_of_the_generation_asked() -> None:
    conditions = [
        {"type": "Ready", "status": "True", "observedGeneration": 2},
        {"type": "InvokerGranted", "status": "False", "observedGeneration": 2},
    ]
    assert cond.holds(conditions, "Ready")
    assert cond.holds(conditions, "Ready", 2)
    assert not cond.holds(conditions, "Ready", 3)  # set by an older pass than the one asked about
    assert not cond.holds(conditions, "InvokerGranted")
    assert not cond.holds(conditions, "AccessorsSynced")  # absent


def test_pending_step_makes_ready_false_with_dependency_reason() -> None:
    steps = [*STEPS[:-1], cond.Condition(cond.ACCESSORS_SYNCED, False, "Pending", "not yet")]
    out = cond.render(cond.summarise(steps), [], generation=1, now=T0)
    assert out[0]["reason"] == "DependencyNotReady"


def test_status_changes_skip_what_the_object_already_shows() -> None:
    from iaprun_operator.handlers import status_changes

    current = {"url": "https://a", "iap": {"resource": "r", "foreignMembers": []}, "observedGeneration": 2}
    same = {
        "url": "https://a",
        "iap": {"resource": "r", "foreignMembers": [], "nextExpiry": None},
        "observedGeneration": 2,
    }
    assert status_changes(current, same) == {}
    assert status_changes(current, {**same, "observedGeneration": 3}) == {"observedGeneration": 3}
    assert status_changes(current, {"iap": {"resource": "r2"}}) == {"iap": {"resource": "r2"}}


def test_the_additive_ledger_comes_from_the_stored_status_not_the_cache() -> None:
    """A cached ledger may be of a patch that failed: only the stored one may let a grant through."""
    from iaprun_operator.handlers import with_stored_ledger

    cached = {"templateHash": "h2", "iap": {"addedMembers": ["user:new@example.com"], "resource": "r"}}
    assert with_stored_ledger(cached, {"iap": {"addedMembers": []}})["iap"] == {"addedMembers": [], "resource": "r"}
    assert "addedMembers" not in with_stored_ledger(cached, {})["iap"]
    assert with_stored_ledger(cached, {})["templateHash"] == "h2"
