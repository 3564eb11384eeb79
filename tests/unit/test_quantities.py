"""CPU and memory compare by value with Kubernetes' own quantity grammar (``kubernetes.utils.parse_quantity``),
so Cloud Run's spelling of a declared value ("1536Mi" for "1.5Gi") is no drift and costs no PATCH, while a
different value is drift. Anything that is not a quantity is compared as written."""

from __future__ import annotations

import pytest

from iaprun_operator.core.service import contains


@pytest.mark.parametrize(
    ("key", "declared", "observed"),
    [
        ("cpu", "1000m", "1"),
        ("cpu", "0.5", "500m"),
        ("cpu", "2", 2),
        ("memory", "1Gi", "1024Mi"),
        ("memory", "1.5Gi", "1536Mi"),
        ("memory", "1G", "1000M"),
        ("memory", "512Mi", "536870912"),
    ],
)
def test_equal_quantities_spelt_differently_are_the_same(key: str, declared: str, observed: object) -> None:
    assert contains({key: declared}, {key: observed})


@pytest.mark.parametrize(("key", "declared", "observed"), [("cpu", "1", "2"), ("memory", "512Mi", "512M")])
def test_different_quantities_are_drift(key: str, declared: str, observed: str) -> None:
    assert not contains({key: declared}, {key: observed})


def test_a_value_that_is_no_quantity_is_compared_as_written() -> None:
    assert contains({"memory": "lots"}, {"memory": "lots"})
    assert not contains({"memory": "lots"}, {"memory": "1Gi"})
