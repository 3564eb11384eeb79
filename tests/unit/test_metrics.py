"""The object gauges and build info of iaprun_operator.metrics: counts by condition and reason, never by object.

Proves: an object's summary condition is the kstatus one (Stalled or Reconciling when True, else Ready or NotReady)
with that condition's reason; one object counts once however often it is observed; a finalized object counts no
more; accessor expiries are counted by window at scrape time (the clock moves, the counts follow); no label
names an object; and iaprun_build_info carries the package version.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from iaprun_operator import __version__, metrics

DAY = 86400.0
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def status(ready: str, reason: str, *extra: tuple[str, str], expiry: str | None = None) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready, "reason": reason}]
    conditions += [{"type": kind, "status": "True", "reason": why} for kind, why in extra]
    out: dict[str, Any] = {"conditions": conditions}
    if expiry:
        out["iap"] = {"nextExpiry": expiry}
    return out


def scrape(states: metrics.ObjectStates) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(states)
    samples: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_summary_condition_follows_kstatus() -> None:
    """Stalled and Reconciling (True) win over Ready; Ready=False alone is NotReady; no Ready yet: not counted."""
    assert metrics.object_state(status("True", "UpToDate")) == metrics.ObjectState("Ready", "UpToDate", None)
    stalled = status("False", "PermissionDenied", ("Stalled", "PermissionDenied"))
    assert metrics.object_state(stalled) == metrics.ObjectState("Stalled", "PermissionDenied", None)
    creating = status("False", "Creating", ("Reconciling", "Creating"))
    assert metrics.object_state(creating) == metrics.ObjectState("Reconciling", "Creating", None)
    pending = status("False", "DependencyNotReady")
    assert metrics.object_state(pending) == metrics.ObjectState("NotReady", "DependencyNotReady", None)
    assert metrics.object_state({}) is None


def test_objects_are_counted_by_condition_and_reason_once_each() -> None:
    """Re-observing an object moves it between series; forgetting it removes it; labels never name objects."""
    states = metrics.ObjectStates(clock=lambda: NOW)
    states.observe("uid-1", status("True", "UpToDate"))
    states.observe("uid-2", status("True", "UpToDate"))
    states.observe("uid-3", status("False", "InvalidSpec", ("Stalled", "InvalidSpec")))
    states.observe("uid-3", status("False", "PermissionDenied", ("Stalled", "PermissionDenied")))
    got = scrape(states)
    assert got['iaprun_objects{condition="Ready",reason="UpToDate"}'] == 2
    assert got['iaprun_objects{condition="Stalled",reason="PermissionDenied"}'] == 1
    assert 'iaprun_objects{condition="Stalled",reason="InvalidSpec"}' not in got
    states.forget("uid-3")
    states.forget("uid-unknown")
    got = scrape(states)
    assert not any('condition="Stalled"' in key for key in got)
    assert not any("uid" in key for key in got)


def test_expiring_accessors_are_counted_by_window_at_scrape_time() -> None:
    """An object whose next accessor expiry falls within 1, 7 or 30 days counts in those windows, as of the scrape."""
    clock = [NOW]
    states = metrics.ObjectStates(clock=lambda: clock[0])
    states.observe("soon", status("True", "UpToDate", expiry="2027-01-17T08:00:00Z"))  # in 2 days
    states.observe("later", status("True", "UpToDate", expiry="2027-02-04T08:00:00Z"))  # in 20 days
    states.observe("never", status("True", "UpToDate"))
    got = scrape(states)
    window = 'iaprun_objects_with_expiring_accessors{{within="{}"}}'.format
    assert (got[window("1d")], got[window("7d")], got[window("30d")]) == (0, 1, 2)
    clock[0] = NOW + 19 * DAY
    got = scrape(states)
    assert (got[window("1d")], got[window("7d")], got[window("30d")]) == (2, 2, 2)


def test_build_info_names_the_version() -> None:
    """iaprun_build_info{version, python} 1 is in the default registry the endpoint serves."""
    text = generate_latest().decode()
    assert 'iaprun_build_info{python="' in text
    assert f'version="{__version__}"}} 1.0' in text
    assert "iaprun_objects_with_expiring_accessors" in text
