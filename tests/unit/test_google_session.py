"""The Cloud Run session reads the environment once: proxies and the CA bundle still apply, per call nothing is
looked up (``trust_env`` off: no ``.netrc`` or variable lookups on every request)."""

from __future__ import annotations

import pytest
import requests

from iaprun_operator.google.cloudrun import read_environment_once


def test_proxy_and_ca_bundle_from_the_environment_apply_without_per_call_lookups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corp.pem")
    session = requests.Session()

    read_environment_once(session, "https://run.googleapis.com")

    assert session.proxies["https"] == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/corp.pem"
    assert session.trust_env is False


def test_an_endpoint_under_no_proxy_goes_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    session = requests.Session()

    read_environment_once(session, "http://127.0.0.1:8090")

    assert "https" not in session.proxies
    assert "http" not in session.proxies
