"""The reconcile loop end to end: real kube-apiserver, the emulator, the operator as a process.

Each test drives the operator only through the Kubernetes API (kubectl) and judges it by what the real
API server stores and what the emulator received (its request log) and holds (its state). Covers the
acceptance of the reconcile issue: Ready with IAP from the first write, one masked PATCH per spec change,
zero writes on a no-op pass, IAP toggling, drift correction, Delete/Abandon, ownership conflicts and
adoption, a failed revision, and a permission error that stalls without a retry storm.
"""

from __future__ import annotations

from typing import Any

import pytest

from gcpemu.admin import AdminClient
from integration.harness import (
    WRITES,
    OperatorProcess,
    apply,
    calls,
    condition,
    drift_pass,
    get,
    manifest,
    wait_for,
    wait_ready,
)
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT, REGION = "demo-project", "asia-northeast1"


def test_apply_becomes_ready_with_iap_from_the_first_write(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """apply -> kubectl wait Ready; the create carried iapEnabled (no later IAP patch); url and columns set."""
    apply(kubectl, namespace, manifest(svc, iap={"accessors": [{"member": "user:alice@example.com"}]}))
    obj = wait_ready(kubectl, namespace, svc)
    service = emu.service(PROJECT, REGION, svc)
    assert service is not None
    assert service["iapEnabled"] is True
    patches = calls(emu, svc, methods=("run.services.patch",))
    assert patches == [], "IAP must be on from the create call, never patched on afterwards"
    assert obj["status"]["url"].startswith("https://")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    row = kubectl("get", "-n", namespace, "irs", svc, "-o", "wide").stdout
    assert "True" in row
    assert "UpToDate" in row
    assert obj["status"]["url"] in row


def test_image_change_is_one_masked_patch_and_a_no_op_pass_writes_nothing(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """Changing the image sends exactly one PATCH whose mask names only the template; a later drift pass
    over the unchanged object makes zero write calls."""
    body = manifest(svc)
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    since = emu.last_seq()
    body["spec"]["template"]["containers"][0]["image"] = "us-docker.pkg.dev/cloudrun/container/hello:v2"
    apply(kubectl, namespace, body)
    wait_for(
        lambda: get(kubectl, namespace, svc)["status"].get("observedGeneration") == 2,
        timeout=30,
        what="observedGeneration 2",
    )
    obj = wait_ready(kubectl, namespace, svc)
    assert condition(obj, "Ready")["observedGeneration"] == 2
    patches = calls(emu, svc, since=since, methods=("run.services.patch",))
    assert len(patches) == 1
    assert patches[0]["query"].get("updateMask") == "template"
    settled = emu.last_seq()
    drift_pass(emu, svc, settled)
    drift_pass(emu, svc, emu.last_seq())
    assert calls(emu, svc, since=settled, methods=WRITES) == []


def test_iap_can_be_switched_off_and_on(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """iap.enabled false then true patches iapEnabled each way; the IapEnabled condition follows."""
    body = manifest(svc)
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    for enabled in (False, True):
        since = emu.last_seq()
        body["spec"]["iap"] = {"enabled": enabled}
        apply(kubectl, namespace, body)
        wait_for(
            lambda e=enabled: (emu.service(PROJECT, REGION, svc) or {}).get("iapEnabled", False) is e,
            timeout=30,
            what=f"iapEnabled={enabled}",
        )
        masks = [r["query"].get("updateMask") for r in calls(emu, svc, since=since, methods=("run.services.patch",))]
        assert masks == ["iapEnabled"]
        obj = wait_ready(kubectl, namespace, svc)
        assert condition(obj, "IapEnabled")["reason"] == ("Enabled" if enabled else "Disabled")


@pytest.mark.parametrize("change", [{"template.containers.0.image": "evil/image"}, {"iapEnabled": False}])
def test_out_of_band_change_is_corrected_within_one_drift_pass(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str, change: dict[str, Any]
) -> None:
    """A console edit of the image or of iapEnabled is reverted on the next drift pass, with an Event."""
    body = manifest(svc)
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, body)
    wait_ready(kubectl, namespace, svc)
    emu.mutate_service(PROJECT, REGION, svc, change)
    since = emu.last_seq()
    wait_for(
        lambda: calls(emu, svc, since=since, methods=("run.services.patch",)), timeout=30, what="a correcting patch"
    )

    def corrected() -> bool:
        service = emu.service(PROJECT, REGION, svc) or {}
        return bool(service.get("iapEnabled")) and service["template"]["containers"][0]["image"] == (
            "us-docker.pkg.dev/cloudrun/container/hello"
        )

    wait_for(corrected, timeout=30, what="the service restored")
    events = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={svc}").stdout
    assert "outside the operator" in events or "iapEnabled is False" in events


def test_delete_policy_delete_removes_the_service(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """deletionPolicy Delete: the service is deleted and the finalizer released (kubectl delete returns)."""
    apply(kubectl, namespace, manifest(svc))
    wait_ready(kubectl, namespace, svc)
    kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--timeout=60s")
    assert emu.service(PROJECT, REGION, svc) is None
    assert calls(emu, svc, methods=("run.services.delete",))


def test_delete_policy_abandon_keeps_the_service_protected(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """deletionPolicy Abandon: the service stays with IAP on and its access; only ownership marks go."""
    apply(
        kubectl,
        namespace,
        manifest(svc, deletionPolicy="Abandon", iap={"accessors": [{"member": "user:alice@example.com"}]}),
    )
    wait_ready(kubectl, namespace, svc)
    kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--timeout=60s")
    service = emu.service(PROJECT, REGION, svc)
    assert service is not None
    assert service["iapEnabled"] is True
    assert "iaprun-owner" not in (service.get("labels") or {})
    assert "iaprun.dev/owner" not in (service.get("annotations") or {})
    assert calls(emu, svc, methods=("run.services.delete",)) == []


def test_unowned_service_is_a_conflict_unless_adoption_is_allowed(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """A same-named service made by someone else: ManagementConflict and untouched; IfUnowned adopts it."""
    apply(kubectl, namespace, manifest(svc, deletionPolicy="Abandon"))
    wait_ready(kubectl, namespace, svc)
    kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--timeout=60s")  # now an unowned service
    since = emu.last_seq()
    other = f"{svc}-b"
    apply(kubectl, namespace, manifest(other, serviceName=svc))
    wait_for(
        lambda: condition(get(kubectl, namespace, other), "Stalled").get("reason") == "ManagementConflict",
        timeout=30,
        what="ManagementConflict",
    )
    assert calls(emu, svc, since=since, methods=WRITES) == []
    kubectl(
        "patch", "-n", namespace, f"iaprunservice/{other}", "--type=merge", "-p", '{"spec":{"adoption":"IfUnowned"}}'
    )
    wait_ready(kubectl, namespace, other)
    service = emu.service(PROJECT, REGION, svc)
    assert service is not None
    assert "iaprun-owner" in service["labels"]


def test_bad_image_reports_cloud_runs_message(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """A revision that cannot start: Ready=False carrying Cloud Run's own message."""
    apply(kubectl, namespace, manifest(svc, image="us-docker.pkg.dev/nope/does-not-exist"))

    def failed() -> dict[str, Any]:
        ready = condition(get(kubectl, namespace, svc), "Ready")
        return ready if ready.get("status") == "False" and "not found" in ready.get("message", "") else {}

    ready = wait_for(failed, timeout=30, what="Ready=False with the image message")
    assert "does-not-exist" in ready["message"]


def test_an_object_for_a_project_it_never_could_reach_can_be_deleted(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """A mistyped project (Google answers 403 for a project that does not exist): Stalled/PermissionDenied,
    and deleting the object completes, since nothing can have been created there."""
    apply(kubectl, namespace, manifest(svc, projectID="no-such-project-x"))
    stalled = wait_for(lambda: condition(get(kubectl, namespace, svc), "Stalled"), timeout=30, what="Stalled")
    assert stalled["reason"] == "PermissionDenied"
    kubectl("delete", "-n", namespace, f"iaprunservice/{svc}", "--timeout=60s")
    assert "NothingToDelete" in kubectl("get", "events", "-n", namespace).stdout


def test_an_unknown_region_stalls_with_a_readable_message(
    operator: OperatorProcess, kubectl: Runner, namespace: str, svc: str
) -> None:
    """A region that passes admission but does not exist: Google's front end answers an HTML 404. The object
    is Stalled/InvalidSpec naming the region, with no HTML in the message, and is not retried."""
    apply(kubectl, namespace, manifest(svc, region="mars-north1"))
    stalled = wait_for(lambda: condition(get(kubectl, namespace, svc), "Stalled"), timeout=30, what="Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "mars-north1" in stalled["message"]
    assert "<" not in stalled["message"]


def test_permission_denied_stalls_without_a_retry_storm(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, svc: str
) -> None:
    """A 403 from Cloud Run: Stalled with Google's message; while another object converges, the stalled one
    is not retried."""
    emu.inject_error(
        "run.services.get",
        http=403,
        status="PERMISSION_DENIED",
        message=f"Permission 'run.services.get' denied on resource '{svc}' (or resource may not exist).",
        reason="IAM_PERMISSION_DENIED",
    )
    apply(kubectl, namespace, manifest(svc))
    stalled = wait_for(lambda: condition(get(kubectl, namespace, svc), "Stalled"), timeout=30, what="Stalled")
    assert stalled["reason"] == "PermissionDenied"
    assert "run.services.get" in stalled["message"]
    emu.clear_faults()
    since = emu.last_seq()
    healthy = f"{svc}-ok"
    apply(kubectl, namespace, manifest(healthy))
    wait_ready(kubectl, namespace, healthy)
    assert len(calls(emu, svc, since=since)) == 0
