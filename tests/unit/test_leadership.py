"""The Lease rule a standby follows (leadership.may_take) and the settings that keep two replicas from acting.

Proves: a standby takes a Lease only when it is free, released or unchanged for a whole lease duration on its own
clock; the active replica's renew deadline must be shorter than that duration (else it could still act when a
standby takes over), and several shards need Leases. The Lease against a real API server, and two operator
processes, are tests/integration/test_ha.py.
"""

from __future__ import annotations

import pytest

from iaprun_operator.leadership import Record, may_take
from iaprun_operator.settings import SettingsError, from_env

HELD = Record(holder="a", renewed="t1")


@pytest.mark.parametrize(
    ("seen", "seen_at", "now", "expected"),
    [
        (None, 0.0, 0.0, True),  # no Lease yet
        (Record("", "t1"), 100.0, 100.0, True),  # released
        (Record("me", "t1"), 100.0, 100.0, True),  # mine: renew
        (HELD, 100.0, 114.9, False),  # another holder, seen changing 14.9 s ago
        (HELD, 100.0, 115.0, True),  # unchanged for the whole duration: the holder is gone
    ],
)
def test_a_standby_takes_a_lease_only_when_free_mine_or_expired(
    seen: Record | None, seen_at: float, now: float, expected: bool
) -> None:
    assert may_take(seen, seen_at, now, "me", 15.0) is expected


@pytest.mark.parametrize(
    "env",
    [
        {"IAPRUN_LEASE_RENEW_DEADLINE_SECONDS": "15"},  # = duration: the active one could act after a takeover
        {"IAPRUN_LEASE_RETRY_SECONDS": "10"},  # no second attempt before the deadline
        {"IAPRUN_SHARDS": "2"},  # shards without Leases: no fence for hand-offs
        {"IAPRUN_SHARDS": "2", "IAPRUN_SHARD": "2", "IAPRUN_LEASE_NAMESPACE": "ops"},
        {"IAPRUN_SHARDS": "65", "IAPRUN_LEASE_NAMESPACE": "ops"},
    ],
)
def test_unsafe_election_settings_refuse_to_start(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        from_env(env)


def test_sharded_settings_are_read() -> None:
    ha = from_env({"IAPRUN_SHARDS": "4", "IAPRUN_SHARD": "3", "IAPRUN_LEASE_NAMESPACE": "ops"}).ha
    assert (ha.shards, ha.shard, ha.lease_namespace) == (4, 3, "ops")
