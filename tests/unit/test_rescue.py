"""When the timer runs a pass that kopf owes an object (the safety net for a lost watch event).

Proves: nothing while the reconcile handler runs; the first pass is owed by the grace after the timer's
first tick; a requested come-back is owed by its due time; a finished pass with nothing requested owes
nothing (the drift interval takes over). Pure function over the object's state, with the clock passed in.
"""

from __future__ import annotations

from iaprun_operator.schedule import ObjectState, rescue_due

GRACE = 60.0


def test_the_first_pass_is_owed_by_the_grace_after_the_first_tick() -> None:
    state = ObjectState()
    assert not rescue_due(state, GRACE, now=100.0)  # the first tick only starts the clock
    assert not rescue_due(state, GRACE, now=159.9)
    assert rescue_due(state, GRACE, now=160.0)


def test_never_while_the_reconcile_handler_runs() -> None:
    state = ObjectState(first_tick=0.0, handling=1, due_by=5.0)
    assert not rescue_due(state, GRACE, now=1000.0)
    state.handling = 0
    assert rescue_due(state, GRACE, now=1000.0)


def test_a_requested_come_back_is_owed_by_its_due_time() -> None:
    state = ObjectState(next_drift=700.0, due_by=200.0)
    assert not rescue_due(state, GRACE, now=199.0)
    assert rescue_due(state, GRACE, now=200.0)


def test_a_settled_object_owes_nothing_before_its_drift() -> None:
    state = ObjectState(next_drift=700.0)
    assert not rescue_due(state, GRACE, now=10_000.0)
