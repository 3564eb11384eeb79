"""Start-up: the tenancy policy and the operator's own account are read once, and a bad policy stops the start.

Proves: a malformed or invalid policy is refused with the variable, the path of the mistake and exit code 2,
before anything runs; the operator's account comes from IAPRUN_OPERATOR_SERVICE_ACCOUNT or, without it, from
a credentials file that names one (read locally, no network), never on the emulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iaprun_operator.__main__ import main
from iaprun_operator.settings import SettingsError, from_env

SA = "iaprun-operator@platform-prod.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"IAPRUN_TENANCY_POLICY": "{rules: []}"}, "IAPRUN_TENANCY_POLICY: unreadable tenancy policy"),
        ({"IAPRUN_TENANCY_POLICY": '{"rules": [{"name": "a", "projets": []}]}'}, "unknown key 'projets'"),
        ({"IAPRUN_TENANCY_POLICY_FILE": "/nonexistent/policy.json"}, "IAPRUN_TENANCY_POLICY_FILE (/nonexistent"),
    ],
)
def test_a_bad_policy_stops_the_start(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as refused:
        from_env(env)
    assert words in str(refused.value)


def test_the_command_exits_with_the_reason(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IAPRUN_TENANCY_POLICY", json.dumps({"rules": [{"name": "a", "allowPublicAccess": "no"}]}))
    monkeypatch.delenv("IAPRUN_TENANCY_POLICY_FILE", raising=False)
    assert main([]) == 2
    assert 'tenancy.rules[0] ("a").allowPublicAccess: expected true or false' in capsys.readouterr().err


def test_an_empty_policy_file_is_an_empty_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("")
    assert from_env({"IAPRUN_TENANCY_POLICY_FILE": str(path)}).tenancy.effective_rules == ()


def test_the_operator_account_from_the_setting() -> None:
    assert from_env({"IAPRUN_OPERATOR_SERVICE_ACCOUNT": SA.upper()}).operator_service_account == SA
    assert from_env({}).operator_service_account is None


def test_the_operator_account_from_a_credentials_file(tmp_path: Path) -> None:
    """An impersonation config (what `gcloud auth application-default login --impersonate-service-account`
    writes) names the account; reading it makes no network call."""
    path = tmp_path / "adc.json"
    path.write_text(
        json.dumps(
            {
                "type": "impersonated_service_account",
                "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/"
                f"serviceAccounts/{SA}:generateAccessToken",
                "source_credentials": {
                    "type": "authorized_user",
                    "client_id": "id",
                    "client_secret": "secret",
                    "refresh_token": "token",
                },
            }
        )
    )
    assert from_env({"GOOGLE_APPLICATION_CREDENTIALS": str(path)}).operator_service_account == SA
    emulated = {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "IAPRUN_GOOGLE_API_ENDPOINT": "http://127.0.0.1:1"}
    assert from_env(emulated).operator_service_account is None
    path.write_text("{not json")
    assert from_env({"GOOGLE_APPLICATION_CREDENTIALS": str(path)}).operator_service_account is None
