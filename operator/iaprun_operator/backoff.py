"""The one backoff policy: exponential, capped, jittered down to half, so retries of many callers spread out.

Its parameterisations (``PROGRESS``, ``RETRY``, ``IAM_CONFLICT``) name every place the operator waits before
trying again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float
    """Seconds before the first repeat (before jitter)."""
    factor: float
    cap: float = math.inf

    def delay(self, attempt: int) -> float:
        """Seconds to wait before repeat number ``attempt`` (0-based): between half and all of the capped delay."""
        delay = min(self.cap, self.base * self.factor**attempt)
        return delay / 2 + random.uniform(0, delay / 2)


PROGRESS = Backoff(base=1.0, factor=1.5, cap=15.0)
"""Polling work in flight (a Cloud Run operation)."""
RETRY = Backoff(base=2.0, factor=1.5, cap=300.0)
"""After a transient failure."""
IAM_CONFLICT = Backoff(base=0.2, factor=2.0)
"""Before repeating an IAM read-modify-write that met ABORTED (Google asks for exponential backoff)."""
