"""A controllable clock: real time plus an offset that tests move through the admin API.

Everything time-dependent in the emulator (IAM condition evaluation, createTime/updateTime, quota refill)
reads this clock, so a test can "wait an hour" in a millisecond.
"""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    """Wall time (UTC) = real time + ``offset`` seconds; ``monotonic`` moves with the offset too."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), tz=dt.UTC)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def set(self, when: dt.datetime) -> None:
        self.offset = when.timestamp() - time.time()

    def reset(self) -> None:
        self.offset = 0.0

    def rfc3339(self) -> str:
        return rfc3339(self.time())


def rfc3339(ts: float) -> str:
    """Google's Timestamp JSON form: UTC, 'Z', fractional seconds (microsecond precision here)."""
    d = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset, up to nanosecond fractions)."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i], rest[i:]
        s = f"{head}.{(frac + '000000')[:6]}{tz}"
    d = dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        raise ValueError(f"timestamp without zone: {text}")
    return d
