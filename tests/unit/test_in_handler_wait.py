"""Which come-backs the reconcile handler sleeps out itself instead of handing them to kopf (three fewer PATCHes
and two fewer watch events per Cloud Run operation of a few seconds).

Proves: only work in flight is waited for (a failure's backoff goes through kopf, its progress stored); only up to
``IN_HANDLER_WAIT`` seconds in a row (a long operation still shows its progress in the status); never when the
pass put Additive accessors in the ledger, which must be stored before they are granted. And the status patch
built over several passes of one handler call is the merge of what they changed: a later pass setting a field
back to its stored value is not lost. Pure functions (``schedule``, ``status``), no kopf.
"""

from __future__ import annotations

from typing import Any

from iaprun_operator.results import Requeue, Result
from iaprun_operator.schedule import IN_HANDLER_WAIT, waits_in_handler
from iaprun_operator.status import merged, status_changes

STORED: dict[str, Any] = {"iap": {"addedMembers": ["user:a@example.com"]}}


def test_an_operation_in_flight_is_waited_for_within_the_bound() -> None:
    assert waits_in_handler(Result(requeue=Requeue.PROGRESS), STORED, waited=1.0)
    assert waits_in_handler(Result(requeue=Requeue.PROGRESS), STORED, waited=IN_HANDLER_WAIT)
    assert not waits_in_handler(Result(requeue=Requeue.PROGRESS), STORED, waited=IN_HANDLER_WAIT + 0.1)


def test_a_failure_or_a_settled_pass_is_not() -> None:
    assert not waits_in_handler(Result(requeue=Requeue.RETRY), STORED, waited=1.0)
    assert not waits_in_handler(Result(), STORED, waited=1.0)


def test_never_while_the_ledger_names_members_not_yet_stored() -> None:
    recorded = Result(requeue=Requeue.PROGRESS, status={"iap": {"addedMembers": ["user:a@example.com", "user:b"]}})
    assert not waits_in_handler(recorded, STORED, waited=1.0)
    unchanged = Result(requeue=Requeue.PROGRESS, status={"iap": {"addedMembers": ["user:a@example.com"]}})
    assert waits_in_handler(unchanged, STORED, waited=1.0)


def test_a_later_pass_of_the_same_handler_call_can_set_a_field_back() -> None:
    stored = {"url": "https://a", "observedGeneration": 1}
    patch: dict[str, Any] = {}
    for result in ({"url": "https://b"}, {"url": "https://a", "observedGeneration": 2}):
        patch.update(status_changes(merged(stored, patch), result))
    assert merged(stored, patch) == {"url": "https://a", "observedGeneration": 2}
