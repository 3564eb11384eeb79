"""No spec can crash the reconcile loop: whatever the parser cannot use becomes ``InvalidSpecError``.

The API server's schema normally keeps odd values out, but an object may predate the schema or the CRD may
be installed without it; and some values pass the schema yet cannot be handled (a timestamp whose UTC time is
before year 1). An exception other than ``InvalidSpecError`` would escape the pass: no status written, the
object retried for ever, its deletion stuck. These tests prove the parser never lets one out.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iaprun_operator.core.model import InvalidSpecError, parse_spec, parse_timestamp
from iaprun_operator.reconcile import ObjectView, finalize
from iaprun_operator.settings import Settings

BASE: dict[str, Any] = {"region": "asia-northeast1", "template": {"containers": [{"image": "hello"}]}}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Keys the parser looks at, so generated specs reach deep into it instead of being refused at the region.
SPEC_KEYS = st.sampled_from(
    [
        "region",
        "serviceName",
        "projectID",
        "labels",
        "ingress",
        "launchStage",
        "iap",
        "template",
        "deletionPolicy",
        "adoption",
        "description",
    ]
)
IAP = st.fixed_dictionaries(
    {},
    optional={
        "enabled": json_values,
        "accessors": st.lists(
            st.fixed_dictionaries(
                {"member": st.sampled_from(["user:a@example.com", "group:g@example.com"]) | json_values},
                optional={"expires": st.datetimes().map(lambda d: d.isoformat()) | json_values},
            )
            | json_values,
            max_size=3,
        )
        | json_values,
        "accessorsPolicy": json_values,
        "publicInvokerBindings": json_values,
    },
)
TEMPLATE = st.fixed_dictionaries(
    {},
    optional={
        "containers": st.lists(
            st.fixed_dictionaries(
                {"image": json_values},
                optional={
                    "env": st.lists(st.dictionaries(st.sampled_from(["name", "value", "valueFrom"]), json_values))
                },
            )
            | json_values,
            max_size=2,
        )
        | json_values,
        "executionEnvironment": json_values,
    },
)


def _only_invalid_spec(spec: Any) -> None:
    with contextlib.suppress(InvalidSpecError):
        parse_spec(spec, name="hello")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(SPEC_KEYS, json_values, max_size=6))
def test_arbitrary_top_level_values_raise_only_invalid_spec(raw: dict[str, Any]) -> None:
    _only_invalid_spec({**BASE, **raw})


@settings(max_examples=200, deadline=None)
@given(IAP, TEMPLATE)
def test_arbitrary_iap_and_template_raise_only_invalid_spec(iap: dict[str, Any], template: dict[str, Any]) -> None:
    _only_invalid_spec({**BASE, "iap": iap, "template": {**BASE["template"], **template}})


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_a_spec_that_is_not_even_a_mapping_is_invalid(raw: Any) -> None:
    _only_invalid_spec(raw)


@pytest.mark.parametrize(
    "expires",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "not a time", "2026-13-01T00:00:00Z", ""],
)
def test_unrepresentable_expiry_is_invalid_spec(expires: str) -> None:
    spec = {**BASE, "iap": {"accessors": [{"member": "user:a@example.com", "expires": expires or "x"}]}}
    with pytest.raises(InvalidSpecError, match=r"spec.iap.accessors\[0\].expires"):
        parse_spec(spec, name="hello")


@settings(max_examples=200, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_parse_timestamp_is_utc_or_value_error(moment: datetime) -> None:
    """Any ISO time with any offset: a UTC time, or ValueError when UTC cannot represent it."""
    try:
        parsed = parse_timestamp(moment.isoformat())
    except ValueError:
        return
    assert parsed.tzinfo is UTC


class _ReachedGoogleError(Exception):
    """The finalizer got as far as asking Google: the spec did not stop it."""


class _Unreachable:
    def __getattr__(self, name: str) -> Any:
        raise _ReachedGoogleError(name)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(SPEC_KEYS, json_values, max_size=6).map(lambda raw: {**BASE, **raw}) | json_values)
def test_the_finalizer_never_raises_on_a_spec(raw: Any) -> None:
    """Whatever the spec, deletion goes on: done (nothing can have been created) or on to Google, never an
    exception from the spec."""
    obj = ObjectView(namespace="n", name="hello", generation=1, spec=raw, status={}, cluster_id="c")
    google: Any = _Unreachable()
    try:
        result = asyncio.run(finalize(obj, google, Settings(default_project="demo-project"), deleting_started=False))
    except _ReachedGoogleError:
        return
    assert result.done
