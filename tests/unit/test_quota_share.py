"""Google's quotas are per project (and region), shared by every shard: each shard's buckets take 1/N of them.

Proves: with ``IAPRUN_SHARDS=N`` every client-side bucket the adapters draw from refills at 1/N of the configured
quota, so N shards together stay under Google's limit; one shard keeps the whole quota. Built with the real
adapters pointed at an endpoint nothing listens on (no call is made).
"""

from __future__ import annotations

import pytest

from iaprun_operator.google.bundle import Google
from iaprun_operator.settings import from_env


@pytest.mark.parametrize("shards", [1, 4])
def test_each_shard_takes_an_equal_share_of_every_quota(shards: int) -> None:
    env = {"IAPRUN_GOOGLE_API_ENDPOINT": "http://127.0.0.1:9", "IAPRUN_SHARDS": str(shards)}
    settings = from_env({**env, "IAPRUN_LEASE_NAMESPACE": "ops", "IAPRUN_QUOTA_RUN_WRITES_PER_MINUTE": "120"})
    google = Google.build(settings)
    try:
        limiter = google.run._limiter
        per_minute = {kind: limiter.bucket(kind, "p", "r").rate_per_second * 60 for kind in ("run_write", "run_read")}
        assert per_minute == pytest.approx({"run_write": 120 / shards, "run_read": 1000 / shards})
        assert limiter.bucket("iap", "p").rate_per_second * 60 == pytest.approx(600 / shards)
    finally:
        google.calls.close()
