"""What every step shares: its outcome type, and the IAM policy read-modify-write with its backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from iaprun_operator import backoff
from iaprun_operator.core import conditions as cond
from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.results import Event

log = logging.getLogger(__name__)

IAM_ATTEMPTS = 4
IAM_BACKOFF = backoff.IAM_CONFLICT.base
"""Seconds before repeating an IAM read-modify-write that met ABORTED; doubled each time, jittered down to half."""


@dataclass
class StepOutcome:
    """What one step found and did: step conditions, Events, status fields, and how the pass goes on."""

    conditions: list[cond.Condition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    progress: cond.Progress | None = None
    """Work this step started or waits for: the pass comes back soon."""
    failure: cond.Failure | None = None
    """The step cannot go on: the pass ends here, reporting this failure."""


class PolicyPlan(Protocol):
    """A plan for one IAM policy: the policy to write, or None when it is right as it is."""

    @property
    def policy(self) -> dict[str, Any] | None: ...


P = TypeVar("P", bound=PolicyPlan)


async def read_modify_write(
    read: Callable[[], Awaitable[dict[str, Any]]],
    plan: Callable[[dict[str, Any]], P],
    write: Callable[[dict[str, Any]], Awaitable[Any]],
    *,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> P:
    """Read, plan and write a policy with its etag; a concurrent change (ABORTED) restarts the cycle after a
    backoff, as Google asks ("retry the whole read-modify-write with exponential backoff")."""
    for attempt in range(IAM_ATTEMPTS):
        decided = plan(await read())
        if decided.policy is None:
            return decided
        try:
            await write(decided.policy)
            return decided
        except GoogleError as error:
            if error.kind is not Kind.CONFLICT or attempt == IAM_ATTEMPTS - 1:
                raise
            log.info("IAM policy changed concurrently; retrying the read-modify-write (%s)", error.message)
            await pause(backoff.IAM_CONFLICT.delay(attempt))
    raise AssertionError("unreachable")
