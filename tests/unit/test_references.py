"""The one extractor of delegated references: everything a spec asks the operator to use on its behalf.

Proves: each reference the tenancy policy judges is read from where the spec (Cloud Run v2 shape, or the
Kubernetes ``valueFrom`` spelling) puts it; a bare secret name belongs to the service's project; nothing is
invented (no account means the default compute account, None). Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

from iaprun_operator.core.model import parse_spec
from iaprun_operator.core.references import LiteralEnv, extract, secret_project

SPEC: dict[str, Any] = {
    "region": "asia-northeast1",
    "serviceName": "shop",
    "invokerIamDisabled": True,
    "template": {
        "serviceAccount": "shop@team-a-prod.iam.gserviceaccount.com",
        "containers": [
            {
                "name": "app",
                "image": "asia-northeast1-docker.pkg.dev/team-a-prod/shop/app:1",
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "KEY", "valueFrom": {"secretKeyRef": {"secret": "api-key"}}},
                    {"name": "DB", "valueSource": {"secretKeyRef": {"secret": "projects/shared-db/secrets/pw"}}},
                ],
            },
            {"image": "docker.io/library/nginx", "env": [{"name": "X", "value": ""}]},
        ],
        "volumes": [{"name": "cert", "secret": {"secret": "projects/pki-prod/secrets/tls"}}],
    },
    "iap": {
        "enabled": False,
        "publicInvokerBindings": "Report",
        "accessors": [{"member": "group:devs@example.com"}, {"member": "domain:example.com"}],
    },
}


def test_every_delegated_reference_is_extracted() -> None:
    refs = extract(parse_spec(SPEC, name="ignored"), "team-a-prod")
    assert refs.project == "team-a-prod"
    assert refs.region == "asia-northeast1"
    assert refs.service_name == "shop"
    assert refs.service_account == "shop@team-a-prod.iam.gserviceaccount.com"
    assert refs.secret_projects == ("team-a-prod", "shared-db", "pki-prod")
    assert refs.images == ("asia-northeast1-docker.pkg.dev/team-a-prod/shop/app:1", "docker.io/library/nginx")
    assert refs.accessors == ("group:devs@example.com", "domain:example.com")
    assert (refs.iap_enabled, refs.public_invoker_bindings, refs.invoker_iam_disabled) == (False, True, True)
    assert refs.literal_env == (LiteralEnv("app", "MODE"), LiteralEnv("containers[1]", "X"))


def test_defaults_ask_for_nothing_extra() -> None:
    refs = extract(
        parse_spec({"region": "asia-northeast1", "template": {"containers": [{"image": "i"}]}}, name="a"), "p"
    )
    assert refs.service_account is None  # the project's default compute account
    assert (refs.secret_projects, refs.accessors, refs.literal_env) == ((), (), ())
    assert (refs.iap_enabled, refs.public_invoker_bindings, refs.invoker_iam_disabled) == (True, False, False)


def test_a_secret_names_its_project_or_the_services() -> None:
    assert secret_project("projects/other/secrets/s", "mine") == "other"
    assert secret_project("projects/other/secrets/s/versions/3", "mine") == "other"
    assert secret_project("s", "mine") == "mine"
    assert secret_project("s", None) is None
