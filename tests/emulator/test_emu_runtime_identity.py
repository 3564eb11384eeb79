"""Conformance: what Cloud Run checks about a service's runtime identity, through the unmodified run_v2 client.

Proves: deploying as an account the caller may not act as is refused with Google's 403 (also the default
compute account, also on update, per caller); a revision referencing a secret its runtime account cannot read
fails the Operation and the service the way Google does; ``invokerIamDisabled`` is stored, returned,
validated, needs ``run.services.setIamPolicy`` to change, and decides the protected URL as Google does
(IAP off: public; IAP on: IAP still applies).
"""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import run_v2
from google.protobuf.field_mask_pb2 import FieldMask

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

PARENT = "projects/demo-project/locations/us-central1"
APP_SA = "app@demo-project.iam.gserviceaccount.com"
OTHER_SA = "other@other-project.iam.gserviceaccount.com"
DEFAULT_SA = "123456789012-compute@developer.gserviceaccount.com"
ACCESSOR = "roles/iap.httpsResourceAccessor"


def _service(account: str | None = None, env: list[run_v2.EnvVar] | None = None, **kw: Any) -> run_v2.Service:
    container = run_v2.Container(image="us-docker.pkg.dev/demo-project/apps/hello:1", env=env or [])
    return run_v2.Service(template=run_v2.RevisionTemplate(containers=[container], service_account=account or ""), **kw)


def _secret_env(name: str, secret: str) -> run_v2.EnvVar:
    ref = run_v2.SecretKeySelector(secret=secret, version="latest")
    return run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(secret_key_ref=ref))


def test_act_as_is_required_on_the_runtime_account(run_client: Any, gcp_admin: AdminClient) -> None:
    """Google's 403 on create (a named account, and the default compute account when none is named) and on
    an update that switches accounts; the stored service is unchanged by a refused update."""
    gcp_admin.set_operation_delay(0)
    gcp_admin.set_act_as("*", [APP_SA])
    with pytest.raises(gexc.Forbidden) as denied:
        run_client.create_service(parent=PARENT, service=_service(OTHER_SA), service_id="as-other")
    assert denied.value.message.endswith(
        f"Permission 'iam.serviceaccounts.actAs' denied on service account {OTHER_SA} (or it may not exist)."
    )
    assert denied.value.reason == "IAM_PERMISSION_DENIED"
    with pytest.raises(gexc.Forbidden, match=DEFAULT_SA):
        run_client.create_service(parent=PARENT, service=_service(), service_id="as-default")
    created = run_client.create_service(parent=PARENT, service=_service(APP_SA), service_id="as-app").result()
    assert created.template.service_account == APP_SA
    created.template.service_account = OTHER_SA
    with pytest.raises(gexc.Forbidden, match=OTHER_SA):
        run_client.update_service(service=created)
    after = run_client.get_service(name=f"{PARENT}/services/as-app")
    assert (after.template.service_account, after.generation) == (APP_SA, 1)
    assert gcp_admin.service("demo-project", "us-central1", "as-other") is None


def test_act_as_is_per_caller(run_client: Any, gcp_admin: AdminClient) -> None:
    """The table is keyed by the caller's identity; ``*`` covers every caller not listed."""
    gcp_admin.set_operation_delay(0)
    gcp_admin.set_act_as(
        "serviceAccount:deployer@ops.iam.gserviceaccount.com", ["*@demo-project.iam.gserviceaccount.com"]
    )
    gcp_admin.set_act_as("*", [])
    as_deployer = [("x-emulator-caller", "serviceAccount:deployer@ops.iam.gserviceaccount.com")]
    run_client.create_service(parent=PARENT, service=_service(APP_SA), service_id="mine", metadata=as_deployer).result()
    with pytest.raises(gexc.Forbidden):
        run_client.create_service(parent=PARENT, service=_service(APP_SA), service_id="theirs")


def test_unreadable_secret_fails_the_revision(run_client: Any, gcp_admin: AdminClient) -> None:
    """The write is accepted; the rollout fails (Operation code 13, terminalCondition CONDITION_FAILED with
    reason SECRETS_ACCESS_CHECK_FAILED) with Google's message naming the reference, the secret version (a bare
    name in the service's project, written with its number) and the runtime account."""
    gcp_admin.set_operation_delay(0)
    gcp_admin.set_secret_access("projects/demo-project/secrets/db", [APP_SA])
    ok = run_client.create_service(
        parent=PARENT, service=_service(APP_SA, [_secret_env("DB", "db")]), service_id="reads"
    ).result()
    assert ok.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    volume = run_v2.Volume(name="v", secret=run_v2.SecretVolumeSource(secret="projects/other-project/secrets/key"))
    service = _service(OTHER_SA, [_secret_env("A", "db")])
    service.template.volumes = [volume]
    op = run_client.create_service(parent=PARENT, service=service, service_id="denied")
    with pytest.raises(gexc.InternalServerError) as failed:
        op.result(timeout=30)
    message = failed.value.message
    assert message.startswith("Revision 'denied-00001-")
    assert (
        "is not ready and cannot serve traffic. "
        "spec.template.spec.containers[0].env[0].value_from.secret_key_ref.name: "
        f"Permission denied on secret: projects/123456789012/secrets/db/versions/latest for Revision service account "
        f"{OTHER_SA}. The service account used must be granted the 'Secret Manager Secret Accessor' role "
        "(roles/secretmanager.secretAccessor) at the secret, project or higher level."
    ) in message
    assert "spec.template.spec.volumes[0].secret.secret_name: Permission denied on secret: " in message
    assert "projects/other-project/secrets/key/versions/latest" in message
    stored = run_client.get_service(name=f"{PARENT}/services/denied")
    assert stored.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    assert stored.terminal_condition.reason == run_v2.Condition.CommonReason.SECRETS_ACCESS_CHECK_FAILED
    assert stored.latest_ready_revision == ""


def test_invoker_iam_disabled_is_stored_validated_and_guarded(
    run_client: Any, gcp_base_url: str, gcp_admin: AdminClient
) -> None:
    """Stored and returned (a false value is omitted on read, as Google does); a non-boolean is Google's 400;
    switching it needs run.services.setIamPolicy (Cloud Run's "allow public access" is an IAM decision)."""
    gcp_admin.set_operation_delay(0)
    public = run_client.create_service(
        parent=PARENT, service=_service(invoker_iam_disabled=True), service_id="pub"
    ).result()
    assert public.invoker_iam_disabled is True
    public.invoker_iam_disabled = False
    run_client.update_service(service=public, update_mask=FieldMask(paths=["invoker_iam_disabled"])).result()
    st, _, raw = raw_request("GET", f"{gcp_base_url}/v2/{PARENT}/services/pub")
    assert st == 200
    assert "invokerIamDisabled" not in raw
    body = {"template": {"containers": [{"image": "i"}]}, "invokerIamDisabled": "yes"}
    st, _, err = raw_request("POST", f"{gcp_base_url}/v2/{PARENT}/services?serviceId=bad", body)
    assert st == 400
    assert err["error"]["message"] == "Invalid value at 'service.invoker_iam_disabled' (TYPE_BOOL), \"yes\""
    gcp_admin.set_permissions("anonymous", deny=["run.services.setIamPolicy"])
    with pytest.raises(gexc.Forbidden, match=r"run\.services\.setIamPolicy"):
        run_client.create_service(parent=PARENT, service=_service(invoker_iam_disabled=True), service_id="pub2")
    run_client.create_service(parent=PARENT, service=_service(), service_id="private").result()


def _url(op: dict[str, Any]) -> str:
    return str(op["response"]["uri"]).removeprefix("https://")


def _get(base: str, host: str, user: str | None = None) -> int:
    headers = {"Accept": "application/json", **({"X-Emulator-User": user} if user else {})}
    return int(raw_request("GET", f"{base}/_run/{host}/", headers=headers)[0])


def test_protected_url_with_the_invoker_check_off(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """IAP off + invokerIamDisabled: anyone, anonymous included, reaches the app (public). IAP on +
    invokerIamDisabled: IAP still decides (no user: 401; not an accessor: 403; accessor: 200), and the IAP
    agent needs no run.invoker grant. IAP off with the check on: no invoker binding, no access."""
    gcp_admin.set_operation_delay(0)
    svcs = f"{gcp_base_url}/v2/{PARENT}/services"
    container = {"containers": [{"image": "gcr.io/demo/app"}]}
    _, _, op = raw_request("POST", f"{svcs}?serviceId=open", {"template": container, "invokerIamDisabled": True})
    assert _get(gcp_base_url, _url(op)) == 200
    _, _, op = raw_request("POST", f"{svcs}?serviceId=closed", {"template": container})
    assert _get(gcp_base_url, _url(op), "user:alice@example.com") == 403
    body = {"template": container, "iapEnabled": True, "invokerIamDisabled": True}
    _, _, op = raw_request("POST", f"{svcs}?serviceId=guarded", body)
    host = _url(op)
    assert _get(gcp_base_url, host) == 401
    assert _get(gcp_base_url, host, "user:alice@example.com") == 403
    policy = {"policy": {"bindings": [{"role": ACCESSOR, "members": ["user:alice@example.com"]}]}}
    iap = f"{gcp_base_url}/v1/projects/123456789012/iap_web/cloud_run-us-central1/services/guarded:setIamPolicy"
    assert raw_request("POST", iap, policy)[0] == 200
    assert _get(gcp_base_url, host, "user:alice@example.com") == 200
