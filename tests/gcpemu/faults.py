"""Latency and error injection: what makes the emulator slow, flaky or hanging on purpose.

Rules match method ids with fnmatch patterns (``run.services.*``). An error rule fires with a probability
(``rate``) a limited number of times (``count``) and may first delay (``delay``) — a delay longer than the
client's timeout is a hanging request.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from gcpemu.errors import HTTP_TO_STATUS, ApiError


@dataclass
class FaultRule:
    method: str = "*"
    rate: float = 1.0
    count: int | None = None
    """How many more times it fires (None = unlimited)."""
    http: int = 503
    status: str = ""
    message: str = "The service is currently unavailable."
    reason: str = ""
    delay: float = 0.0
    """Seconds to wait before answering (hang) — with ``http=0`` the request then proceeds normally."""
    tag: str = ""
    fired: int = 0
    id: int = 0


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    next_id: int = 1
    rng: random.Random = field(default_factory=lambda: random.Random(1234))

    def add(self, spec: dict[str, Any]) -> FaultRule:
        rule = FaultRule(**{k: v for k, v in spec.items() if k not in ("fired", "id")})
        rule.id = self.next_id
        self.next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, method_id: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.count is not None and rule.count <= 0:
                continue
            if not fnmatch.fnmatchcase(method_id, rule.method):
                continue
            if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                continue
            if rule.count is not None:
                rule.count -= 1
            rule.fired += 1
            return rule
        return None

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rules]


def error_for(rule: FaultRule, domain: str) -> ApiError | None:
    if not rule.http:
        return None
    status = rule.status or HTTP_TO_STATUS.get(rule.http, "UNKNOWN")
    return ApiError(status, rule.message, http=rule.http, reason=rule.reason or None, domain=domain)


def latency_for(table: dict[str, float], method_id: str) -> float:
    best = 0.0
    exact = table.get(method_id)
    if exact is not None:
        return float(exact)
    for pattern, seconds in table.items():
        if fnmatch.fnmatchcase(method_id, pattern):
            best = max(best, float(seconds))
    return best
