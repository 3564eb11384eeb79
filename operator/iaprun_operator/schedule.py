"""When each object is looked at next: its typed per-object state, and the pure decisions over it.

kopf runs the reconcile handler on events and a timer on every object; the timer decides from this state
whether a drift check is due (the object's interval, or an accessor expiring), or a pass that kopf owes
the object and has not run (a lost watch event: the rescue). Kept out of ``handlers`` so that module stays a
list of "on this event, run that", and so these rules are tested without kopf.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from iaprun_operator import backoff
from iaprun_operator.core.model import InvalidSpecError, parse_timestamp
from iaprun_operator.results import Requeue, Result
from iaprun_operator.settings import Settings

DRIFT_ANNOTATION = "iaprun.dev/drift-interval"


@dataclass
class ObjectState:
    """What this process remembers about one object between handler calls (kept in kopf's per-object memo)."""

    handling: int = 0
    """Reconcile handler calls in flight for the object: the timer leaves it alone meanwhile."""
    due_by: float | None = None
    """Monotonic time by which kopf owes the object a pass it asked for (None: nothing owed)."""
    next_drift: float | None = None
    """Monotonic time of the next drift check (None: no pass has finished in this process yet)."""
    drift_retry: int = 0
    """Drift passes in a row that asked to come back: the backoff attempt."""
    first_tick: float | None = None
    """Monotonic time of the timer's first tick, while no pass has finished."""
    status: dict[str, Any] | None = None
    """The status as this process last wrote it (a lagging watch may hand over an older one)."""


def state_of(memo: Any) -> ObjectState:
    """The object's state in kopf's per-object memo, made on first use."""
    state = memo.get("object")
    if not isinstance(state, ObjectState):
        state = memo["object"] = ObjectState()
    return state


def now(settings: Settings) -> datetime:
    """The wall clock that judges accessor expiry (shifted by ``clock_offset`` in tests)."""
    return datetime.now(UTC) + timedelta(seconds=settings.clock_offset)


def come_back_after(result: Result, attempt: int) -> float | None:
    """Seconds until the pass a result asks for (None: it asks for none): the one backoff policy."""
    if result.requeue is Requeue.PROGRESS:
        return backoff.PROGRESS.delay(attempt)
    if result.requeue is Requeue.RETRY:
        return result.retry_after or backoff.RETRY.delay(attempt)
    return None


def drift_interval(annotations: Mapping[str, str], *, default: float, floor: float) -> float:
    """The object's drift interval: its annotation (seconds, ``s`` suffix allowed), else the operator's default.

    An annotation below ``floor``, or not a finite number, raises ``InvalidSpecError``: the object stalls with a
    message naming the annotation and the floor, rather than being checked every tick (or never) as it asks.
    """
    raw = str(annotations.get(DRIFT_ANNOTATION) or "").strip()
    if not raw:
        return default  # the platform's own choice, not bound by the floor it sets for tenants
    try:
        value = float(raw.removesuffix("s"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < floor:
        raise InvalidSpecError(
            f"annotation {DRIFT_ANNOTATION}: {raw!r} is not a number of seconds of at least {floor:g} (the "
            f'operator\'s floor, IAPRUN_MIN_DRIFT_INTERVAL_SECONDS); write one such as "{max(floor, 600):g}" '
            "or remove the annotation"
        )
    return value


def listing_age(annotations: Mapping[str, str], settings: Settings) -> float:
    """How old a regional ``services.list`` may be to stand in for a drift or resume pass's read of the service:
    ``IAPRUN_SERVICE_LIST_MAX_AGE_SECONDS``, and never more than half the object's drift interval, so a change
    outside the operator is still seen within one and a half of the object's intervals."""
    try:
        interval = drift_interval(annotations, default=settings.drift_interval, floor=settings.min_drift_interval)
    except InvalidSpecError:
        return 0.0
    return max(0.0, min(settings.service_list_max_age, interval / 2))


def next_drift(annotations: Mapping[str, str], settings: Settings) -> float:
    """When the object's next drift pass is due: its interval with jitter, and never sooner than the floor when
    the interval came from (or was refused in) its annotation."""
    floor = settings.min_drift_interval
    try:
        interval = drift_interval(annotations, default=settings.drift_interval, floor=floor)
    except InvalidSpecError:  # the pass stalled the object; look again no sooner than the floor allows
        interval = max(settings.drift_interval, floor)
    jitter = interval * settings.drift_jitter
    delay = interval + random.uniform(-jitter, jitter)
    if annotations.get(DRIFT_ANNOTATION):
        delay = max(delay, floor)
    return time.monotonic() + delay


def rescue_due(state: ObjectState, grace: float, now: float) -> bool:
    """Whether the timer should run a pass that kopf owes the object and has not run (a lost watch event).

    kopf owes a pass when it has not finished one in this process (the object's first event is being handled;
    owed by ``grace`` after the timer's first tick), or when a pass asked to come back (owed by the delay plus
    ``grace``: ``due_by``, cleared when any pass starts). Never while the reconcile handler runs: it owns the
    object (a create waiting for quota, say), and a timer pass would queue behind it and then act on the
    status from before it (no applied template hash: a needless PATCH).
    """
    if state.handling:
        return False
    due = state.due_by
    if due is None and state.next_drift is None:
        if state.first_tick is None:
            state.first_tick = now
        due = state.first_tick + grace
    return due is not None and now >= due


def drift_due(state: ObjectState, status: Mapping[str, Any], settings: Settings) -> bool:
    """A drift check is due at the object's own interval, or earlier when an accessor expires."""
    if state.next_drift is None:
        return False
    if time.monotonic() >= state.next_drift:
        return True
    expiry = (status.get("iap") or {}).get("nextExpiry")
    if expiry:
        try:
            return parse_timestamp(str(expiry)) <= now(settings)
        except ValueError:
            return True
    return False


def after_drift_pass(state: ObjectState, result: Result) -> None:
    """A drift pass that started work (a correcting patch) or hit a transient error looks again soon, not a whole
    drift interval later; one that settled resets the backoff."""
    delay = come_back_after(result, state.drift_retry)
    if delay is None:
        state.drift_retry = 0
        return
    state.drift_retry += 1
    state.next_drift = time.monotonic() + delay
