"""What a tenant can put in an object must not crash, starve or outlive the operator, end to end.

- A drift annotation below the floor, or not a finite number, stalls the object with InvalidSpec and no
  Google call.
- A timestamp the operator cannot represent stalls the object with InvalidSpec; its deletion completes.
- The largest spec admission allows reaches Ready and is deleted; no annotation holds a spec value (kopf's
  bookkeeping is a digest), and the operator's log at --verbose holds neither a literal env value nor a
  secret-looking one.
- An object whose finalizer a tenant removes while its deletion is failing: the next orphan sweep of the
  running operator finishes the service as its stamp says.

The module runs its own operator at --verbose, sweeping every second, with a drift floor of 30 s.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from gcpemu.admin import AdminClient
from integration.conftest import running_operator
from integration.harness import OperatorProcess, condition, get, manifest, wait_for
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
PROJECT = "demo-project"
REGION = "europe-west4"  # no other module's objects here: the sweep of this module meets only its own services
FLOOR = 30
SECRET = "ghp_" + "Zq8" * 12  # looks like a token someone pasted as a literal value
LITERAL = "literal-value-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, emulator_url: str, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    with (
        mock.patch.dict(os.environ, {"IAPRUN_TEST_OPERATOR_VERBOSE": "1"}),
        running_operator(
            control_plane,
            emulator_url,
            tmp_path_factory,
            IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS="1",
            IAPRUN_MIN_DRIFT_INTERVAL_SECONDS=str(FLOOR),
        ) as proc,
    ):
        yield proc


def create(kubectl: Runner, namespace: str, body: dict[str, Any]) -> None:
    """``kubectl create``: unlike client-side apply, it keeps no copy of the object in an annotation."""
    result = kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body))
    assert result.returncode == 0, result.stderr


def wait_condition(kubectl: Runner, namespace: str, name: str, kind: str, *, timeout: float = 60) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        c = condition(get(kubectl, namespace, name), kind)
        return c if c.get("status") == "True" else None

    got: dict[str, Any] = wait_for(found, timeout=timeout, what=f"{name} {kind}")
    return got


def gone(kubectl: Runner, namespace: str, name: str) -> bool:
    return kubectl("get", "-n", namespace, f"iaprunservice/{name}", check=False).returncode != 0


def calls_for(emu: AdminClient, service: str, since: int) -> list[str]:
    return [r["method"] for r in emu.requests(since=since) if f"/services/{service}" in r["path"]]


@pytest.mark.parametrize("raw", ["0", "-5", "nan", "inf", "10", "soon"])
def test_a_drift_annotation_below_the_floor_stalls_without_a_google_call(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, raw: str
) -> None:
    name = f"drift-{uuid.uuid4().hex[:6]}"
    body = manifest(name, region=REGION, projectID=PROJECT)
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": raw}
    since = emu.last_seq()
    create(kubectl, namespace, body)
    stalled = wait_condition(kubectl, namespace, name, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "iaprun.dev/drift-interval" in stalled["message"]
    assert f"at least {FLOOR}" in stalled["message"]
    assert calls_for(emu, name, since) == []
    assert kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--timeout=30s").returncode == 0


def test_an_expiry_before_year_one_in_utc_stalls_and_deletion_completes(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient
) -> None:
    """Admitted (a valid RFC 3339 date-time), but UTC cannot represent it: InvalidSpec, and the object (Ready
    before, so it owns a service) is deleted with its service."""
    name = f"expiry-{uuid.uuid4().hex[:6]}"
    create(kubectl, namespace, manifest(name, region=REGION, projectID=PROJECT))
    wait_condition(kubectl, namespace, name, "Ready")
    accessors = [{"member": "user:a@example.com", "expires": "0001-01-01T00:00:00+14:00"}]
    patch = json.dumps({"spec": {"iap": {"accessors": accessors}}})
    result = kubectl("patch", "-n", namespace, f"iaprunservice/{name}", "--type=merge", "-p", patch)
    assert result.returncode == 0, result.stderr
    stalled = wait_condition(kubectl, namespace, name, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "expires" in stalled["message"]
    assert kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--timeout=60s").returncode == 0
    assert emu.service(PROJECT, REGION, name) is None
    assert "OverflowError" not in operator.log_path.read_text()


def largest_spec(name: str) -> dict[str, Any]:
    """The template's whole character budget in env values (one of them a literal, one secret-looking), and
    200 accessors: about as large a spec as admission lets through."""
    accessors = [{"member": f"user:member-{i:03d}-{'a' * 180}@example.com"} for i in range(200)]
    body = manifest(name, region=REGION, projectID=PROJECT, iap={"accessors": accessors})
    container = body["spec"]["template"]["containers"][0]
    env = [{"name": "LITERAL", "value": LITERAL}, {"name": "TOKEN", "value": SECRET}]
    used = len(container["image"]) + sum(len(e["name"]) + len(e["value"]) for e in env)  # the image counts too
    for i in range(63):
        room = 49152 - used - 6  # the name PAD_NN counts too
        if room <= 0:
            break
        env.append({"name": f"PAD_{i:02d}", "value": (f"v{i}-" + "x" * 1024)[:room]})
        used += 6 + len(env[-1]["value"])
    container["env"] = env
    body["spec"]["description"] = "d" * 512
    return body


def test_the_largest_spec_reaches_ready_keeps_no_value_in_annotations_and_is_deleted(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient
) -> None:
    name = f"big-{uuid.uuid4().hex[:6]}"
    body = largest_spec(name)
    size = len(json.dumps(body["spec"], separators=(",", ":")))
    assert size > 90_000, size  # 48 Ki characters of env values and 200 long accessors
    create(kubectl, namespace, body)
    wait_condition(kubectl, namespace, name, "Ready", timeout=120)
    obj = get(kubectl, namespace, name)
    annotations: dict[str, str] = obj["metadata"].get("annotations") or {}
    assert annotations.get("iaprun.dev/last-handled-digest", "").startswith("sha256:")
    for key, value in annotations.items():
        for needle in (LITERAL, SECRET, "member-000", "us-docker.pkg.dev"):
            assert needle not in value, f"{key} holds a spec value"
    assert kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--timeout=60s").returncode == 0
    assert emu.service(PROJECT, REGION, name) is None
    log = operator.log_path.read_text()
    assert LITERAL not in log
    assert SECRET not in log
    assert "is in progress: <redacted" in log  # kopf did log the body, at --verbose, and it was cut


def test_finalizer_removed_during_a_failing_deletion_is_swept(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient
) -> None:
    """The deletion fails (Cloud Run refuses the delete); the tenant removes the finalizer; once Cloud Run
    accepts deletes again, the next sweep deletes the service (stamp Delete), with the operator still running."""
    name = f"orphan-{uuid.uuid4().hex[:6]}"
    create(kubectl, namespace, manifest(name, region=REGION, projectID=PROJECT))
    wait_condition(kubectl, namespace, name, "Ready")
    emu.inject_error("run.services.delete", http=503, status="UNAVAILABLE")
    since = emu.last_seq()
    assert kubectl("delete", "-n", namespace, f"iaprunservice/{name}", "--wait=false").returncode == 0
    wait_for(
        lambda: any(r["method"] == "run.services.delete" for r in emu.requests(since=since) if name in r["path"]),
        timeout=30,
        what="the finalizer's failing delete",
    )
    patch = json.dumps({"metadata": {"finalizers": None}})
    assert kubectl("patch", "-n", namespace, f"iaprunservice/{name}", "--type=merge", "-p", patch).returncode == 0
    wait_for(lambda: gone(kubectl, namespace, name), timeout=30, what="the object gone without its finalizer")
    assert emu.service(PROJECT, REGION, name) is not None  # the orphan, still marked, stamped Delete
    emu.clear_faults()
    wait_for(lambda: emu.service(PROJECT, REGION, name) is None, timeout=30, what="the orphan swept")
    assert "Deleted orphaned service" in operator.log_path.read_text()


def test_a_template_over_the_size_budget_is_refused_at_admission(kubectl: Runner, namespace: str, crd: None) -> None:
    """Just over 65,536 characters of images, args and env across two containers: refused by the API server,
    with the budget's message; at the budget: admitted (dry run)."""

    def body(extra: int) -> dict[str, Any]:
        # The budget counts the images too: 2 * 5 ("hello") + 1 + 1 ("A", "B") + 1 ("y") + 2 * half + 1 = 49152.
        half = (49152 - 13) // 2
        spec = manifest(f"budget-{uuid.uuid4().hex[:6]}", region=REGION, projectID=PROJECT)
        spec["spec"]["template"]["containers"] = [
            {"name": "one", "image": "hello", "env": [{"name": "A", "value": "x" * half}], "args": ["y"]},
            {"name": "two", "image": "hello", "env": [{"name": "B", "value": "x" * (half + 1 + extra)}]},
        ]
        spec["spec"]["template"]["containers"][0]["ports"] = [{"containerPort": 8080}]  # the ingress container
        return spec

    def dry_run(extra: int) -> Any:
        return kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(body(extra)), check=False
        )

    refused = dry_run(2)
    assert refused.returncode != 0
    assert "exceed 49152 characters" in refused.stderr
    admitted = dry_run(0)
    assert admitted.returncode == 0, admitted.stderr
