"""The drift interval an object asks for: at least the operator's floor, or the object stalls.

A tenant must not be able to have the operator check its objects every timer tick (``0``, ``-5``, ``nan``)
or never again (``inf``); each such annotation is refused with a message naming it and the floor, and the
timer then comes back no sooner than the floor.
"""

from __future__ import annotations

import time

import pytest

from iaprun_operator.core.model import InvalidSpecError
from iaprun_operator.schedule import DRIFT_ANNOTATION, drift_interval, next_drift
from iaprun_operator.settings import Settings, from_env


@pytest.mark.parametrize(("raw", "expected"), [("60", 60.0), ("300s", 300.0), (" 120 ", 120.0), ("1e3", 1000.0)])
def test_an_interval_at_or_above_the_floor_is_used(raw: str, expected: float) -> None:
    assert drift_interval({DRIFT_ANNOTATION: raw}, default=600, floor=60) == expected


def test_no_annotation_means_the_operators_default_even_below_the_floor() -> None:
    assert drift_interval({}, default=600, floor=60) == 600
    assert drift_interval({DRIFT_ANNOTATION: ""}, default=2, floor=60) == 2  # the platform's own choice


@pytest.mark.parametrize("raw", ["59", "0", "-5", "nan", "NaN", "inf", "-inf", "infinity", "soon", "1m", "5ss"])
def test_below_the_floor_or_not_a_finite_number_is_invalid_spec(raw: str) -> None:
    with pytest.raises(InvalidSpecError) as refused:
        drift_interval({DRIFT_ANNOTATION: raw}, default=600, floor=60)
    assert DRIFT_ANNOTATION in str(refused.value)
    assert "at least 60" in str(refused.value)
    assert "IAPRUN_MIN_DRIFT_INTERVAL_SECONDS" in str(refused.value)


@pytest.mark.parametrize("raw", ["0", "nan", "inf", "-5"])
def test_a_refused_annotation_brings_the_timer_back_no_sooner_than_the_floor(raw: str) -> None:
    settings = Settings(drift_interval=5, min_drift_interval=60, drift_jitter=0.1)
    assert next_drift({DRIFT_ANNOTATION: raw}, settings) - time.monotonic() >= 59


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "x"])
def test_the_floor_setting_itself_must_be_a_positive_number(raw: str) -> None:
    with pytest.raises(ValueError, match="IAPRUN_MIN_DRIFT_INTERVAL_SECONDS"):
        from_env({"IAPRUN_MIN_DRIFT_INTERVAL_SECONDS": raw})


def test_the_floor_defaults_to_a_minute() -> None:
    assert from_env({}).min_drift_interval == 60
