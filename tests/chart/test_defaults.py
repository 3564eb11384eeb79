"""The chart's default values are the operator's defaults: rendered with no values, every IAPRUN_* variable
the Deployment sets reads back as the settings dataclass's own default (the one place defaults are written),
so a default changed on one side only fails here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

from chart.conftest import Manifest, only
from iaprun_operator.settings import QuotaSettings, Settings, from_env


def test_chart_defaults_are_the_settings_defaults(render: Callable[..., list[Manifest]]) -> None:
    container = only(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container["env"] if e["name"].startswith("IAPRUN_")}
    read, defaults = from_env({**env, "IAPRUN_TENANCY_POLICY_FILE": ""}), Settings()  # the file is mounted
    differ = [
        f"{f.metadata['env']}: chart {getattr(got, f.name)!r}, settings {getattr(want, f.name)!r}"
        for got, want in ((read, defaults), (read.quotas, defaults.quotas))
        for f in fields(type(want))
        if f.metadata.get("env") in env and getattr(got, f.name) != getattr(want, f.name)
    ]
    assert not differ, "chart defaults differ from settings defaults:\n" + "\n".join(differ)
    assert {f.metadata["env"] for cls in (Settings, QuotaSettings) for f in fields(cls) if "env" in f.metadata} - {
        "IAPRUN_GOOGLE_API_ENDPOINT",  # only set when the chart points the operator at an emulator
        "IAPRUN_WATCH_NAMESPACE",
        "IAPRUN_DEFAULT_PROJECT",
        "IAPRUN_CLUSTER_ID",
    } <= set(env)
