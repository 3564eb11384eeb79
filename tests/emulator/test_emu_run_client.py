"""Conformance: the official run_v2 REST client (unmodified) against the emulator's Cloud Run Admin v2."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import run_v2
from google.iam.v1 import policy_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from gcpemu.admin import AdminClient

PARENT = "projects/demo-project/locations/us-central1"


def _service(image: str = "us-docker.pkg.dev/demo-project/apps/hello:1", **kw: Any) -> run_v2.Service:
    return run_v2.Service(template=run_v2.RevisionTemplate(containers=[run_v2.Container(image=image)]), **kw)


def test_full_lifecycle_with_official_client(run_client: Any, gcp_admin: AdminClient) -> None:
    """create -> operation.result() -> get -> patch(template mask) -> IAM get/set -> delete, all through the
    unmodified run_v2 REST client; proves LRO polling, strict Operation parsing, server defaults, generation,
    revisions, etags and IAM round-trips."""
    op = run_client.create_service(
        parent=PARENT, service=_service(iap_enabled=True, launch_stage="BETA"), service_id="hello"
    )
    created = op.result(timeout=30)
    assert created.name == f"{PARENT}/services/hello"
    assert created.generation == 1
    assert created.observed_generation == 1
    assert created.latest_ready_revision == created.latest_created_revision
    assert created.latest_ready_revision.startswith(f"{PARENT}/services/hello/revisions/hello-00001-")
    assert created.iap_enabled
    assert created.launch_stage == 4  # GA: the lowest stage actually needed
    got = run_client.get_service(name=f"{PARENT}/services/hello")
    assert got.etag.startswith('"')
    assert got.etag.endswith('"')
    assert got.uri.endswith("-uc.a.run.app")
    assert "https://hello-123456789012.us-central1.run.app" in got.urls
    c = got.template.containers[0]
    assert c.ports[0].container_port == 8080
    assert c.ports[0].name == "http1"
    assert c.resources.limits["cpu"] == "1"
    assert c.resources.cpu_idle
    assert got.template.scaling.max_instance_count == 100
    assert got.template.max_instance_request_concurrency == 80
    assert got.template.service_account == "123456789012-compute@developer.gserviceaccount.com"
    assert got.traffic[0].type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
    assert got.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert not got.reconciling

    got.template.containers[0].image = "us-docker.pkg.dev/demo-project/apps/hello:2"
    upd = run_client.update_service(
        request=run_v2.UpdateServiceRequest(service=got, update_mask=FieldMask(paths=["template"]))
    ).result(timeout=30)
    assert upd.generation == 2
    assert "/revisions/hello-00002-" in upd.latest_ready_revision
    assert upd.template.containers[0].image.endswith(":2")
    assert upd.etag != got.etag

    resource = f"{PARENT}/services/hello"
    pol = run_client.get_iam_policy(request={"resource": resource, "options": {"requested_policy_version": 3}})
    assert pol.etag == b"\x00\x20\x01"  # "ACAB": the empty policy
    pol.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["user:alice@example.com"]))
    new = run_client.set_iam_policy(request={"resource": resource, "policy": pol})
    assert new.version == 1
    assert list(new.bindings[0].members) == ["user:alice@example.com"]
    assert new.etag != pol.etag

    deleted = run_client.delete_service(name=resource).result(timeout=30)
    assert deleted.name == resource
    with pytest.raises(gexc.NotFound):
        run_client.get_service(name=resource)


def test_iap_off_needs_mask(run_client: Any, gcp_admin: AdminClient) -> None:
    """iap_enabled=False is never serialised; turning IAP off works with update_mask ["iap_enabled"]."""
    gcp_admin.set_operation_delay(0)
    run_client.create_service(parent=PARENT, service=_service(iap_enabled=True), service_id="iap-svc").result()
    patch = run_v2.Service(name=f"{PARENT}/services/iap-svc", iap_enabled=False)
    out = run_client.update_service(
        request=run_v2.UpdateServiceRequest(service=patch, update_mask=FieldMask(paths=["iap_enabled"]))
    ).result()
    assert not out.iap_enabled
    assert out.template.containers[0].image  # the template survived the masked patch
    reqs = gcp_admin.requests("run.services.patch")
    assert reqs[-1]["query"]["updateMask"] == "iapEnabled"


def test_patch_without_mask_is_full_replacement(run_client: Any, gcp_admin: AdminClient) -> None:
    """A PATCH without updateMask replaces all mutable fields: fields absent from the body reset."""
    gcp_admin.set_operation_delay(0)
    run_client.create_service(
        parent=PARENT, service=_service(iap_enabled=True, description="d"), service_id="full"
    ).result()
    out = run_client.update_service(service=_service(name=f"{PARENT}/services/full")).result()
    assert not out.iap_enabled
    assert out.description == ""


def test_allow_missing_upserts(run_client: Any, gcp_admin: AdminClient) -> None:
    """UpdateServiceRequest(allow_missing=True) creates a missing service; without it the patch is 404."""
    gcp_admin.set_operation_delay(0)
    svc = _service(name=f"{PARENT}/services/upsert")
    with pytest.raises(gexc.NotFound):
        run_client.update_service(request=run_v2.UpdateServiceRequest(service=svc))
    out = run_client.update_service(request=run_v2.UpdateServiceRequest(service=svc, allow_missing=True)).result()
    assert out.generation == 1


def test_missing_image_fails_operation(run_client: Any, gcp_admin: AdminClient) -> None:
    """An image that does not exist makes the LRO fail with code 9 and the real message; the service keeps
    the last ready revision and shows terminalCondition CONDITION_FAILED."""
    run_client.create_service(parent=PARENT, service=_service(), service_id="img").result(timeout=30)
    svc = run_client.get_service(name=f"{PARENT}/services/img")
    ready = svc.latest_ready_revision
    svc.template.containers[0].image = "gcr.io/demo-project/does-not-exist:1"
    op = run_client.update_service(service=svc)
    with pytest.raises(gexc.FailedPrecondition) as ei:
        op.result(timeout=30)
    rev = op.metadata.latest_created_revision.rsplit("/", 1)[-1] if op.metadata else ""
    assert "is not ready and cannot serve traffic. Image 'gcr.io/demo-project/does-not-exist:1' not found." in str(
        ei.value
    )
    after = run_client.get_service(name=f"{PARENT}/services/img")
    assert after.latest_ready_revision == ready
    assert after.latest_created_revision != ready
    assert rev in after.latest_created_revision
    assert after.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    assert after.observed_generation == 1
    assert after.generation == 2


def test_list_pages_newest_first(run_client: Any, gcp_admin: AdminClient) -> None:
    """list_services pages (pageSize/pageToken) and returns the newest service first."""
    gcp_admin.set_operation_delay(0)
    for i in range(5):
        run_client.create_service(parent=PARENT, service=_service(), service_id=f"svc-{i}").result()
    pager = run_client.list_services(request={"parent": PARENT, "page_size": 2})
    names = [s.name.rsplit("/", 1)[-1] for s in pager]
    assert names == [f"svc-{i}" for i in range(4, -1, -1)]
    assert gcp_admin.counts()["run.services.list"] == 3


def test_validate_only_does_not_persist(run_client: Any, gcp_admin: AdminClient) -> None:
    """validate_only=True returns a done Operation with the defaulted Service and stores nothing."""
    op = run_client.create_service(
        request=run_v2.CreateServiceRequest(parent=PARENT, service=_service(), service_id="dry", validate_only=True)
    )
    svc = op.result(timeout=5)
    assert svc.template.containers[0].ports[0].container_port == 8080
    with pytest.raises(gexc.NotFound):
        run_client.get_service(name=f"{PARENT}/services/dry")


def test_operation_json_parses_with_strict_parser(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """Self-check: every Operation the emulator emits parses with ignore_unknown_fields=False against the
    pinned run_v2 protos (as api_core's operations transport does), pending, done and failed."""
    operations_pb2: Any = importlib.import_module("google.longrunning.operations_pb2")
    from google.protobuf import json_format

    from gcpemu.testing import raw_request

    run_v2.Service.pb()  # registers google.cloud.run.v2.Service in the default descriptor pool
    gcp_admin.configure(operation_delay=5.0)
    body: dict[str, Any] = {
        "template": {"containers": [{"image": "gcr.io/x/y"}]},
        "sshEnabled": True,  # in the discovery doc, unknown to run_v2 0.16.2: must not leak into Operations
        "labels": {"a": "b"},
        "iapEnabled": True,
    }
    url = f"{gcp_base_url}/v2/{PARENT}/services"
    st, _, pending = raw_request("POST", url + "?serviceId=strict", body)
    assert st == 200
    assert "done" not in pending
    json_format.ParseDict(pending, operations_pb2.Operation(), ignore_unknown_fields=False)
    gcp_admin.configure(operation_delay=0)
    st, _, done = raw_request("POST", url + "?serviceId=strict2", body)
    assert done["done"] is True
    assert "response" in done
    json_format.ParseDict(done, operations_pb2.Operation(), ignore_unknown_fields=False)
    body["template"]["containers"][0]["image"] = "gcr.io/x/does-not-exist"
    st, _, failed = raw_request("POST", url + "?serviceId=strict3", body)
    assert failed["done"] is True
    assert failed["error"]["code"] == 9
    json_format.ParseDict(failed, operations_pb2.Operation(), ignore_unknown_fields=False)
    st, _, svc = raw_request("GET", url + "/strict2")
    assert svc["sshEnabled"] is True  # a plain GET still shows it (GET parsing is lenient)


def test_int_enum_encoding(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """`$alt=json;enum-encoding=int` (percent-encoded) renders enums as proto numbers (launchStage GA=4);
    enums are accepted as names or integers on input; defaults are omitted; int64 are strings."""
    from gcpemu.testing import raw_request

    gcp_admin.set_operation_delay(0)
    url = f"{gcp_base_url}/v2/{PARENT}/services"
    raw_request("POST", url + "?serviceId=enums", {"template": {"containers": [{"image": "x"}]}, "ingress": 1})
    _, _, as_int = raw_request("GET", url + "/enums?%24alt=json%3Benum-encoding%3Dint")
    assert as_int["ingress"] == 1
    assert as_int["launchStage"] == 4
    assert as_int["terminalCondition"]["state"] == 4
    assert as_int["generation"] == "1"
    _, _, as_name = raw_request("GET", url + "/enums")
    assert as_name["ingress"] == "INGRESS_TRAFFIC_ALL"
    assert as_name["launchStage"] == "GA"
    assert "iapEnabled" not in as_name
    assert "reconciling" not in as_name


def test_operations_mixins(run_client: Any, gcp_admin: AdminClient) -> None:
    """The client's operations mixins (get/wait/list/delete_operation) work against the emulator."""
    from google.protobuf import duration_pb2

    operations_pb2: Any = importlib.import_module("google.longrunning.operations_pb2")
    gcp_admin.set_operation_delay(0.5)
    op = run_client.create_service(parent=PARENT, service=_service(), service_id="mixins")
    name = op.operation.name
    assert not run_client.get_operation(operations_pb2.GetOperationRequest(name=name)).done
    waited = run_client.wait_operation(
        operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=5))
    )
    assert waited.done
    listed = run_client.list_operations(operations_pb2.ListOperationsRequest(name=PARENT))
    assert [o.name for o in listed.operations] == [name]
    run_client.delete_operation(operations_pb2.DeleteOperationRequest(name=name))
    with pytest.raises(gexc.NotFound):
        run_client.get_operation(operations_pb2.GetOperationRequest(name=name))


def test_get_retries_injected_503(run_client: Any, gcp_admin: AdminClient) -> None:
    """The client's default retry (503 only, for get/list) rides over one injected UNAVAILABLE; a 500 is not
    retried."""
    gcp_admin.set_operation_delay(0)
    run_client.create_service(parent=PARENT, service=_service(), service_id="retry").result()
    gcp_admin.inject_error("run.services.get", http=503, count=1)
    assert run_client.get_service(name=f"{PARENT}/services/retry").name.endswith("/retry")
    assert [r["status"] for r in gcp_admin.requests("run.services.get")] == [503, 200]
    gcp_admin.inject_error("run.services.get", http=500, count=1, message="boom")
    with pytest.raises(gexc.InternalServerError, match="boom"):
        run_client.get_service(name=f"{PARENT}/services/retry")
