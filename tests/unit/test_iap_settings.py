"""The pure part of IAP settings: parsing ``spec.iap.settings``, planning the masked write, who can sign in,
``status.access``, and the tenancy decision on OAuth client secrets."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from iaprun_operator.core.iapsettings import (
    SecretRef,
    access_status,
    cannot_sign_in,
    parse_settings,
    plan_settings,
)
from iaprun_operator.core.model import InvalidSpecError, parse_spec
from iaprun_operator.core.references import extract
from iaprun_operator.core.tenancy import Rule, TenancyPolicy, check

OAUTH = "accessSettings.oauthSettings"
SECRET_PATH = f"{OAUTH}.clientSecret"
CLIENT = "123-abc.apps.googleusercontent.com"


def declared(**access: Any) -> dict[str, Any]:
    return {"accessSettings": access}


def custom_client(secret: str = "oauth-secret", version: str = "latest") -> dict[str, Any]:
    return declared(
        oauthSettings={
            "clientId": CLIENT,
            "clientSecretSource": {"secretKeyRef": {"secret": secret, "version": version}},
            "loginHint": "example.com",
        }
    )


def test_declared_leaves_are_mask_paths_and_the_secret_is_a_reference() -> None:
    spec = parse_settings(
        {
            **custom_client(),
            "applicationSettings": {"cookieDomain": "example.com"},
        }
    )
    assert spec is not None
    assert dict(spec.fields) == {
        f"{OAUTH}.clientId": CLIENT,
        f"{OAUTH}.loginHint": "example.com",
        "applicationSettings.cookieDomain": "example.com",
    }
    assert dict(spec.secrets) == {SECRET_PATH: SecretRef("oauth-secret", "latest")}
    assert SecretRef("oauth-secret").resolve("p1") == "projects/p1/secrets/oauth-secret/versions/latest"


def test_reauth_settings_are_one_leaf_as_google_requires() -> None:
    spec = parse_settings(declared(reauthSettings={"method": "LOGIN", "maxAge": "3600s"}))
    assert spec is not None
    assert dict(spec.fields) == {"accessSettings.reauthSettings": {"method": "LOGIN", "maxAge": "3600s"}}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (declared(oauthSettings={"clientId": CLIENT, "clientSecret": "hunter2"}), "never written in the object"),
        (declared(oauthSettings={"clientSecretSource": {"secretKeyRef": {"secret": "s"}}}), "needs the clientId"),
        (declared(oauthsettings={}), "unknown field"),
        (declared(reauthSettings={"maxAge": "1h"}), "duration"),
        (declared(identitySources=["GOOGLE"]), "not one of"),
        (declared(corsSettings={"allowHttpOptions": "yes"}), "true or false"),
        (
            declared(oauthSettings={"clientId": CLIENT, "clientSecretSource": {"secretKeyRef": {"secret": "a/b"}}}),
            "secret",
        ),
    ],
)
def test_invalid_settings_are_refused_before_any_call(raw: dict[str, Any], words: str) -> None:
    spec = {"region": "us-central1", "template": {"containers": [{"image": "x"}]}, "iap": {"settings": raw}}
    with pytest.raises(InvalidSpecError, match=words):
        parse_spec(spec, name="svc")


def test_matching_settings_need_no_write() -> None:
    spec = parse_settings(declared(corsSettings={"allowHttpOptions": True}, allowedDomainsSettings={"enable": False}))
    observed = {"accessSettings": {"corsSettings": {"allowHttpOptions": True}}}
    decided = plan_settings(
        observed,
        spec,
        ["accessSettings.corsSettings.allowHttpOptions", "accessSettings.allowedDomainsSettings.enable"],
        {},
    )
    assert not decided.write
    assert decided.mask == ()


def test_first_write_records_the_fields_before_writing_them() -> None:
    spec = parse_settings(declared(corsSettings={"allowHttpOptions": True}))
    decided = plan_settings({}, spec, [], {})
    assert decided.record_first
    assert not decided.write
    assert decided.ledger == ("accessSettings.corsSettings.allowHttpOptions",)
    again = plan_settings({}, spec, decided.ledger, {})
    assert again.write
    assert again.wire_mask == "iapSettings.accessSettings.corsSettings.allowHttpOptions"
    assert again.body == {"accessSettings": {"corsSettings": {"allowHttpOptions": True}}}


def test_drift_rewrites_only_the_declared_field_that_changed() -> None:
    spec = parse_settings(custom_client())
    secret = "s3cret"
    observed = {
        "accessSettings": {
            "oauthSettings": {
                "clientId": CLIENT,
                "clientSecretSha256": hashlib.sha256(secret.encode()).hexdigest(),
                "loginHint": "evil.example",
                "programmaticClients": ["someone-elses"],
            }
        }
    }
    ledger = [f"{OAUTH}.clientId", SECRET_PATH, f"{OAUTH}.loginHint"]
    decided = plan_settings(observed, spec, ledger, {SECRET_PATH: secret})
    assert decided.mask == (f"{OAUTH}.loginHint",)
    assert decided.body == {"accessSettings": {"oauthSettings": {"loginHint": "example.com"}}}


def test_a_changed_secret_is_seen_through_its_digest_and_never_shown() -> None:
    spec = parse_settings(custom_client())
    observed = {
        "accessSettings": {
            "oauthSettings": {"clientId": CLIENT, "clientSecretSha256": "0" * 64, "loginHint": "example.com"}
        }
    }
    ledger = [f"{OAUTH}.clientId", SECRET_PATH, f"{OAUTH}.loginHint"]
    decided = plan_settings(observed, spec, ledger, {SECRET_PATH: "rotated"})
    assert decided.mask == (SECRET_PATH,)
    assert decided.body == {"accessSettings": {"oauthSettings": {"clientSecret": "rotated"}}}
    assert "rotated" not in " ".join(c.describe() for c in decided.changes)


def test_a_field_removed_from_the_spec_is_cleared_only_if_it_was_ours() -> None:
    observed = {
        "applicationSettings": {"cookieDomain": "example.com"},
        "accessSettings": {"corsSettings": {"allowHttpOptions": True}},
    }
    decided = plan_settings(observed, None, ["applicationSettings.cookieDomain"], {})
    assert decided.write
    assert decided.mask == ("applicationSettings.cookieDomain",)
    assert decided.body == {}  # named in the mask, absent from the body: Google clears it
    assert decided.ledger == ()
    untouched = plan_settings(observed, None, [], {})
    assert not untouched.write  # corsSettings was never this object's


def test_the_google_managed_client_lets_in_only_the_organisations_people() -> None:
    members = [
        "user:a@example.com",
        "user:b@partner.example",
        "group:g@example.com",
        "domain:other.org",
        "serviceAccount:ci@p.iam.gserviceaccount.com",
    ]
    assert cannot_sign_in(members, ["example.com"]) == ["user:b@partner.example", "domain:other.org"]
    assert cannot_sign_in(members, None) == members[:4]


def test_access_status_audience_is_the_custom_client_else_the_url() -> None:
    status = {
        "url": "https://svc-abc-uc.a.run.app",
        "urls": ["https://svc-1.us-central1.run.app"],
        "traffic": [{"tag": "blue", "uri": "https://blue---svc-abc-uc.a.run.app"}],
    }
    managed = access_status(status, {})
    assert managed == {
        "urls": [
            "https://svc-abc-uc.a.run.app",
            "https://svc-1.us-central1.run.app",
            "https://blue---svc-abc-uc.a.run.app",
        ],
        "googleManagedClient": True,
        "audience": "https://svc-abc-uc.a.run.app",
        "programmaticClients": [],
    }
    custom = access_status(
        status, {"accessSettings": {"oauthSettings": {"clientId": CLIENT, "programmaticClients": ["cli"]}}}
    )
    assert custom["audience"] == CLIENT
    assert not custom["googleManagedClient"]
    assert custom["programmaticClients"] == ["cli"]


def test_the_tenancy_policy_decides_which_oauth_secrets_the_operator_reads() -> None:
    spec = parse_spec(
        {
            "region": "us-central1",
            "template": {"containers": [{"image": "img"}]},
            "iap": {"settings": custom_client("projects/shared/secrets/team-b-oauth")},
        },
        name="svc",
    )
    refs = extract(spec, "team-a")
    assert refs.oauth_client_secrets == ("projects/shared/secrets/team-b-oauth",)
    base = {
        "name": "a",
        "namespaces": ("a",),
        "projects": ("*",),
        "regions": ("*",),
        "service_names": ("*",),
        "allow_default_service_account": True,
        "images": ("*",),
    }
    refused = check(
        TenancyPolicy(rules=(Rule(**base),)), namespace="a", namespace_labels={}, refs=refs, operator_account=None
    )
    assert refused
    assert "OAuth client secret" in refused
    assert "team-b-oauth" in refused
    allowed = Rule(
        **base, oauth_client_secrets=("projects/shared/secrets/team-a-*", "projects/shared/secrets/team-b-*")
    )
    assert (
        check(TenancyPolicy(rules=(allowed,)), namespace="a", namespace_labels={}, refs=refs, operator_account=None)
        is None
    )
