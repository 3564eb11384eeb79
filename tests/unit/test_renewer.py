"""The active replica stops acting when it cannot renew its Lease (leadership.Renewer).

Proves: a Renewer whose renewals fail calls ``on_lost`` once the renew deadline has passed, and not while
renewals succeed. The Lease here is a stand-in answering yes or no (the real Lease against the API server is
tests/integration/test_ha.py); the Renewer's own thread and clock are real, with short periods, and the test
waits on the event ``on_lost`` sets, never on a sleep.
"""

from __future__ import annotations

import threading

from iaprun_operator.leadership import Renewer


class Answers:
    """A Lease whose renewals succeed while ``ok`` is set."""

    name = "shard-0"

    def __init__(self) -> None:
        self.ok = threading.Event()
        self.ok.set()
        self.attempts = 0

    def try_acquire_or_renew(self) -> bool:
        self.attempts += 1
        return self.ok.is_set()


def test_a_replica_that_cannot_renew_gives_up_after_the_deadline() -> None:
    lease, lost = Answers(), threading.Event()
    renewer = Renewer(lease, retry=0.01, deadline=0.1, on_lost=lost.set)  # type: ignore[arg-type]
    renewer.start()
    try:
        attempts = lease.attempts
        while lease.attempts < attempts + 20:  # twenty successful renewals: not lost
            assert not lost.wait(0.01)
        lease.ok.clear()
        assert lost.wait(5)
    finally:
        renewer.stop()
