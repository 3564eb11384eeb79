"""Google's side of multi-tenancy, end to end: what the operator does when Cloud Run refuses, or makes
public, what a tenant asked for.

- A runtime account the operator's Google identity may not act as: Google's 403 on the create. The object is
  Stalled/PermissionDenied with Google's message, and nothing is written afterwards (no IAM call, no retry).
- A Secret Manager reference the runtime account cannot read: Cloud Run accepts the write and the revision
  fails. The object is Stalled with Cloud Run's reason and message; later passes write nothing.
- ``invokerIamDisabled`` switched on outside the operator (the console's "allow public access"): the service
  really is public at its URL, the next drift pass turns the check back on with a Warning
  ``InvokerIamCheckRestored``, and the URL is closed again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request
from integration.harness import WRITES, OperatorProcess, apply, calls, condition, get, manifest, wait_for, wait_ready
from integration.test_reconcile import PROJECT, REGION
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
RUNTIME = "app-{}@demo-project.iam.gserviceaccount.com"


@pytest.fixture
def identity_model(emu: AdminClient) -> Iterator[AdminClient]:
    """actAs and secret access modelled for this test only (the emulator is shared by the session)."""
    yield emu
    emu.configure(act_as=None, secret_accessors=None)


def settle_elsewhere(kubectl: Runner, namespace: str, name: str) -> None:
    """Another object converging proves the operator kept working meanwhile (no sleep needed)."""
    apply(kubectl, namespace, manifest(name))
    wait_ready(kubectl, namespace, name)


def test_a_runtime_account_google_refuses_stalls_with_its_message_and_no_writes(
    operator: OperatorProcess, kubectl: Runner, namespace: str, identity_model: AdminClient, svc: str
) -> None:
    emu = identity_model
    emu.set_act_as("*", [RUNTIME.format("*"), "*-compute@developer.gserviceaccount.com"])
    intruder = "operator@platform-project.iam.gserviceaccount.com"
    since = emu.last_seq()
    body = manifest(svc, template={"containers": [{"image": "gcr.io/demo/app"}], "serviceAccount": intruder})
    apply(kubectl, namespace, body)
    stalled = wait_for(lambda: condition(get(kubectl, namespace, svc), "Stalled"), timeout=30, what="Stalled")
    assert stalled["reason"] == "PermissionDenied"
    assert stalled["message"] == (
        f"Permission 'iam.serviceaccounts.actAs' denied on service account {intruder} (or it may not exist)."
    )
    attempts = calls(emu, svc, since=since, methods=WRITES)
    assert [(r["method"], r["status"]) for r in attempts] == [("run.services.create", 403)]
    assert emu.service(PROJECT, REGION, svc) is None
    stalled_at = emu.last_seq()
    settle_elsewhere(kubectl, namespace, f"{svc}-ok")
    assert calls(emu, svc, since=stalled_at, methods=WRITES) == []


def test_an_unreadable_secret_fails_the_revision_and_stalls_with_cloud_runs_message(
    operator: OperatorProcess, kubectl: Runner, namespace: str, identity_model: AdminClient, svc: str
) -> None:
    emu = identity_model
    emu.set_secret_access("projects/demo-project/secrets/db-password", [RUNTIME.format("reader")])
    runtime = RUNTIME.format("writer")
    env = [{"name": "DB", "valueSource": {"secretKeyRef": {"secret": "db-password", "version": "latest"}}}]
    template = {"containers": [{"image": "gcr.io/demo/app", "env": env}], "serviceAccount": runtime}
    apply(kubectl, namespace, manifest(svc, projectID=PROJECT, template=template))

    def stalled() -> dict[str, Any]:
        found = condition(get(kubectl, namespace, svc), "Stalled")
        return found if found.get("status") == "True" else {}

    found = wait_for(stalled, timeout=30, what="Stalled on the failed revision")
    assert found["reason"] == "SecretsAccessCheckFailed"
    assert (
        "Permission denied on secret: projects/123456789012/secrets/db-password/versions/latest for Revision "
        f"service account {runtime}."
    ) in found["message"]
    ready = condition(get(kubectl, namespace, svc), "Ready")
    assert ready["status"] == "False"
    assert ready["message"] == found["message"]
    stalled_at = emu.last_seq()
    settle_elsewhere(kubectl, namespace, f"{svc}-ok")
    assert calls(emu, svc, since=stalled_at, methods=WRITES) == []


def _status_at(emu_url: str, url: str) -> int:
    host = url.removeprefix("https://")
    return int(raw_request("GET", f"{emu_url}/_run/{host}/", headers={"Accept": "application/json"})[0])


def test_public_access_switched_on_outside_is_turned_back_off(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """IAP off is not public: the create says invokerIamDisabled false; a console switch to public access makes
    the URL answer anyone, and the next drift pass closes it again with a Warning Event."""
    body = manifest(svc, iap={"enabled": False})
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, body)
    obj = wait_ready(kubectl, namespace, svc)
    (create,) = calls(emu, svc, methods=("run.services.create",))
    # The proto client omits a false bool on the wire; Google's default for an absent field is false.
    assert create["body"].get("invokerIamDisabled", False) is False
    url = obj["status"]["url"]
    assert _status_at(emu.base_url, url) == 403
    emu.mutate_service(PROJECT, REGION, svc, {"invokerIamDisabled": True})
    since = emu.last_seq()
    assert _status_at(emu.base_url, url) == 200  # really public now
    wait_for(
        lambda: calls(emu, svc, since=since, methods=("run.services.patch",)), timeout=30, what="a correcting patch"
    )
    (patch,) = calls(emu, svc, since=since, methods=("run.services.patch",))
    assert patch["query"].get("updateMask") == "invokerIamDisabled"
    wait_for(
        lambda: not (emu.service(PROJECT, REGION, svc) or {}).get("invokerIamDisabled"),
        timeout=30,
        what="the invoker check back on",
    )
    assert _status_at(emu.base_url, url) == 403
    events = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={svc}").stdout
    assert "InvokerIamCheckRestored" in events
