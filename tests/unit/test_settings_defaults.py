"""Each default is written once, on the settings dataclass field: ``from_env`` of an empty environment is
exactly ``Settings()``, and each field that names a variable is read from it (the chart side is checked in
tests/chart/test_defaults.py)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from iaprun_operator.settings import HaSettings, QuotaSettings, Settings, from_env


def test_an_empty_environment_gives_the_dataclass_defaults() -> None:
    assert from_env({}) == Settings()


@pytest.mark.parametrize(
    ("cls", "name"),
    [(cls, f.name) for cls in (Settings, QuotaSettings, HaSettings) for f in fields(cls) if "env" in f.metadata],
)
def test_each_variable_sets_its_field(cls: type, name: str) -> None:
    field = next(f for f in fields(cls) if f.name == name)
    raw = "7" if isinstance(field.default, int | float) else "set-by-env"
    # The Lease and shard settings are checked together: the rest of them set so that one value stays valid.
    valid = {
        "IAPRUN_SHARDS": "8",
        "IAPRUN_LEASE_NAMESPACE": "ops",
        "IAPRUN_LEASE_DURATION_SECONDS": "30",
        "IAPRUN_LEASE_RENEW_DEADLINE_SECONDS": "3" if name == "lease_duration" else "8",
        "IAPRUN_LEASE_RETRY_SECONDS": "1",
    }
    read = from_env({**(valid if cls is HaSettings else {}), field.metadata["env"]: raw})
    holder = {QuotaSettings: read.quotas, HaSettings: read.ha}.get(cls, read)
    expected = raw if field.default is None else type(field.default)(raw)
    assert getattr(holder, name) == expected
    assert expected != field.default
