"""Google faults on a rollout of N objects, their update and their deletion (see docs/reliability.md).

Transient faults (5xx bursts, 429 with Retry-After, hanging requests, etag conflicts from a concurrent
writer, the IAP agent's operation not done yet): everything converges and the invariants hold. Permanent
ones (a project's permission revoked, a revision whose image does not exist): Stalled with the reason, and
recovery once fixed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from chaos.scenario import Fault, run_waves
from chaos.world import (
    DEFAULT_PROJECT,
    IMAGE,
    REGION,
    ChaosWorld,
    Figures,
    abandoned_keys,
    fleet,
    is_ready,
    names,
    stalled_reason,
)
from gcpemu.admin import AdminClient, AdminError
from integration.harness import wait_for

pytestmark = pytest.mark.integration
FigureMaker = Callable[[str, int], Figures]


def fired(world: ChaosWorld) -> int:
    return sum(int(rule.get("fired") or 0) for rule in world.emu.faults())


def test_baseline_without_faults(world: ChaosWorld, chaos_size: int, figures: FigureMaker) -> None:
    """The reference: the same three waves with no fault at all."""
    fig = figures("baseline (no fault)", chaos_size)
    world.start_operator()
    run_waves(world, fig, Fault(), n=chaos_size)


def test_5xx_bursts_converge(world: ChaosWorld, chaos_size: int, figures: FigureMaker) -> None:
    """Each wave starts in an outage (every call 503 until N have failed), then about a quarter of the
    calls fail with 500/502 for a while: every object converges, nothing is lost or opened."""
    n = chaos_size
    fig = figures("5xx bursts", n)
    world.start_operator()

    def begin(wave: str) -> None:
        world.emu.inject_error("*", http=503, count=n)
        world.emu.inject_error("*", http=500, status="INTERNAL", message="Internal error.", rate=0.15, count=n)
        world.emu.inject_error("*", http=502, message="Bad Gateway", rate=0.1, count=max(1, n // 2))

    def end(wave: str) -> None:
        fig.faults += fired(world)
        world.emu.clear_faults()

    run_waves(world, fig, Fault(begin=begin, end=end), n=n)
    assert fig.faults >= 3 * n


def test_429_with_retry_after_converges(world: ChaosWorld, chaos_size: int, figures: FigureMaker) -> None:
    """Cloud Run's write quota (per project and region) is smaller than a wave needs: 429
    RESOURCE_EXHAUSTED with Retry-After. The operator backs off as told and every object converges."""
    n = chaos_size
    fig = figures("429 quota storm with Retry-After", n)
    world.start_operator()
    since = world.emu.last_seq()

    def begin(wave: str) -> None:
        # A bucket a tenth short of what the wave writes (create + setIamPolicy, or one patch/delete per
        # object): the shortfall refills at bucket/60 per second, about 7 s per wave whatever N.
        need = 2 * n if wave == "rollout" else n
        world.emu.set_quota("run.googleapis.com", write=need - max(1, need // 10), retry_after=2)

    def end(wave: str) -> None:
        world.emu.set_quota("run.googleapis.com", enabled=False)

    run_waves(world, fig, Fault(begin=begin, end=end), n=n)
    fig.faults = len([r for r in world.operator_requests(since=since) if r["status"] == 429])
    assert fig.faults > 0, "the quota storm produced no 429: the scenario did not test anything"


def test_hanging_requests_converge(world: ChaosWorld, chaos_size: int, figures: FigureMaker) -> None:
    """Calls hang far past the operator's request timeout (2 s here) and only then proceed (so a timed-out
    create or patch may still land later): the operator times out, retries, and converges."""
    n = chaos_size
    fig = figures("requests hanging past the client timeout", n)
    world.start_operator(IAPRUN_REQUEST_TIMEOUT_SECONDS="2")

    def begin(wave: str) -> None:
        world.emu.hang("run.services.*", seconds=6, count=max(2, n // 2))
        world.emu.hang("iap.*", seconds=6, count=max(1, n // 4))
        world.emu.hang("cloudresourcemanager.*", seconds=6, count=1)

    def end(wave: str) -> None:
        fig.faults += fired(world)
        world.emu.clear_faults()

    run_waves(world, fig, Fault(begin=begin, end=end), n=n)
    assert fig.faults >= n


def test_create_landing_after_its_object_is_gone_is_swept(world: ChaosWorld, figures: FigureMaker) -> None:
    """Google applies a create only after the client gave up on it (8 s hang, 2 s timeout), and by then
    the object was deleted: its finalizer found no service and let the object go. That leaves a service
    with the ownership marks and no object, which no finalizer will ever see. The orphan sweep must finish
    it as the object's deletion policy said: the Delete one is deleted, the Abandon one only loses its
    marks. (Without the sweep the invariant checker reports leaked-service.)"""
    fig = figures("create landing after its object was deleted", 2)
    ns = world.namespaces[0]
    world.start_operator(IAPRUN_REQUEST_TIMEOUT_SECONDS="2", IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS="2")
    bodies = fleet(2, prefix="late")
    bodies[0]["spec"]["deletionPolicy"] = "Delete"
    bodies[1]["spec"]["deletionPolicy"] = "Abandon"
    since = world.emu.last_seq()
    world.emu.hang("run.services.create", seconds=8)
    world.apply(ns, bodies)
    wait_for(lambda: fired(world) >= 2, timeout=60, what="both creates to hang")
    world.delete_all(ns)
    world.wait_gone(ns, names(bodies), timeout=60)
    fig.faults = fired(world)
    world.emu.clear_faults()
    # The finalizers released the objects before Google applied the creates.
    assert world.emu.service(DEFAULT_PROJECT, REGION, "late-000") is None
    assert world.emu.service(DEFAULT_PROJECT, REGION, "late-001") is None
    deleted, abandoned = (f"projects/{DEFAULT_PROJECT}/locations/{REGION}/services/{n}" for n in names(bodies))

    def swept() -> bool:
        log = world.operator.log_path.read_text(errors="replace")
        return (
            f"Deleted orphaned service {deleted}" in log and f"ownership marks of orphaned service {abandoned}" in log
        )

    wait_for(swept, timeout=60, interval=0.5, what="the sweep to finish both orphans")
    wait_for(
        lambda: world.emu.service(DEFAULT_PROJECT, REGION, "late-000") is None, timeout=60, what="late-000 deleted"
    )
    kept = world.emu.service(DEFAULT_PROJECT, REGION, "late-001")
    assert kept is not None
    assert "iaprun-owner" not in kept.get("labels", {})
    assert kept["iapEnabled"] is True
    assert len(world.operator_requests("run.services.list", since=since)) >= 1
    world.assert_invariants(fig, abandoned=abandoned_keys(world, bodies))
    world.assert_operator_alive()


class ConcurrentWriter:
    """Another IAM writer (a console user, Terraform) editing the same policies while the operator works.

    It keeps adding members of its own, a new one each time: ``roles/run.developer`` on each service's
    Cloud Run policy and, on objects in Additive mode, a foreign accessor on the IAP policy. Every add
    changes the etag. It never removes anything, so a member it added that is missing later was lost by an
    operator write based on a stale read: a lost update.
    """

    ROLE = "roles/run.developer"
    ACCESSOR = "roles/iap.httpsResourceAccessor"

    def __init__(self, url: str, additive: set[str]) -> None:
        self.admin = AdminClient(url, timeout=30)
        self.additive = additive
        self.added: list[tuple[str, str, str]] = []
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def writes(self) -> int:
        return len(self.added)

    def start(self) -> None:
        self.stop_event.clear()
        self.thread = threading.Thread(target=self._run, name="concurrent-writer", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(30)

    def _add(self, service: str, kind: str) -> None:
        role = self.ROLE if kind == "run" else self.ACCESSOR
        member = f"user:writer-{len(self.added)}@example.com"
        try:
            self.admin.add_binding(DEFAULT_PROJECT, REGION, service, role, member, kind=kind)
        except AdminError:
            return  # the service is not there (yet, or any more)
        self.added.append((service, kind, member))

    def _run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            services = [key.rsplit("/", 1)[1] for key in self.admin.state()["services"]]
            for service in services:
                if self.stop_event.is_set():
                    return
                self._add(service, "run")
                if service in self.additive:
                    self._add(service, "iap")
            # About one edit per policy per second: often enough to race every slow write of the operator,
            # seldom enough that an etag-guarded read-modify-write wins within its attempts.
            self.stop_event.wait(max(0.02, 1.0 - (time.monotonic() - started)))

    def lost(self, state: dict[str, Any]) -> list[str]:
        """Members the writer added that are gone (on services that still exist)."""
        number = state["projects"][DEFAULT_PROJECT]
        out = []
        for service, kind, member in self.added:
            key = f"{number}/{REGION}/{service}"
            if key not in state["services"]:
                continue
            role = self.ROLE if kind == "run" else self.ACCESSOR
            policy = state["run_policies" if kind == "run" else "iap_policies"].get(key) or {}
            if not any(member in b.get("members", ()) for b in policy.get("bindings", ()) if b.get("role") == role):
                out.append(f"{service} {kind}: {member} lost")
        return out


def test_etag_conflicts_from_a_concurrent_writer_lose_nothing(
    world: ChaosWorld, chaos_size: int, figures: FigureMaker
) -> None:
    """A concurrent writer changes the same IAM policies all through the three waves, while each
    setIamPolicy takes 300 ms to land (plus injected ABORTED answers): the operator's read-modify-write
    with the etag retries, converges, and never overwrites the other writer's change (no lost update, no
    resurrected member)."""
    n = chaos_size
    fig = figures("IAM etag conflicts (concurrent writer)", n)
    additive = {b["metadata"]["name"] for b in fleet(n) if b["spec"]["iap"].get("accessorsPolicy") == "Additive"}
    writer = ConcurrentWriter(world.emulator_url, additive)
    world.start_operator()
    since = world.emu.last_seq()

    def begin(wave: str) -> None:
        # A slow setIamPolicy (300 ms between the operator's read and its write landing) widens the race.
        world.emu.set_latency("*setIamPolicy", 0.3)
        world.emu.inject_error(
            "*setIamPolicy",
            http=409,
            status="ABORTED",
            message="There were concurrent policy changes. Please retry the whole read-modify-write with "
            "exponential backoff.",
            rate=0.3,
            count=n,
        )
        writer.start()

    def end(wave: str) -> None:
        writer.stop()
        world.emu.clear_faults()
        world.emu.set_latency("*setIamPolicy", 0)
        lost = writer.lost(world.emu.state())
        assert lost == [], f"lost updates after the {wave} wave: {lost}"

    try:
        run_waves(world, fig, Fault(begin=begin, end=end), n=n)
    finally:
        writer.stop()
    fig.faults = len([r for r in world.operator_requests("*setIamPolicy", since=since) if r["status"] == 409])
    fig.notes = f"concurrent writer made {writer.writes} policy edits"
    assert fig.faults > 0
    assert writer.writes > 0


def test_iap_agent_operation_pending_then_propagating_converges(
    world: ChaosWorld, chaos_size: int, figures: FigureMaker
) -> None:
    """The IAP service agent's long-running operation is not done when asked, and the agent is not
    usable for a while after (IAM answers 400 "does not exist"); Cloud Run's own operations are slow.
    Everything converges once the agent propagates."""
    n = chaos_size
    fig = figures("LROs pending / IAP agent propagating", n)
    world.emu.configure(
        agent_propagation_delay=4,
        operation_delays={"serviceusage.services.generateServiceIdentity": 3},
        operation_delay=1.5,
    )
    world.start_operator()
    since = world.emu.last_seq()
    run_waves(world, fig, Fault(), n=n)
    fig.faults = len(
        [r for r in world.operator_requests("run.services.setIamPolicy", since=since) if r["status"] == 400]
    )
    assert fig.faults > 0, "the agent was usable at once: the scenario did not test anything"


def test_failed_revision_stalls_with_the_reason_and_recovers_once_fixed(
    world: ChaosWorld, chaos_size: int, figures: FigureMaker
) -> None:
    """The update's operation fails (the new image does not exist): every object says so (Cloud Run's
    message), IAM and ownership stay right, and a fixed image brings every object back to Ready."""
    n = chaos_size
    fig = figures("revision LRO fails (image missing) -> fixed", n)
    ns = world.namespaces[0]
    world.start_operator()
    bodies = fleet(n)
    started = time.monotonic()
    world.apply(ns, bodies)
    world.wait_ready(ns, names(bodies), timeout=120 * max(1, n // 50))
    fig.waves["rollout"] = time.monotonic() - started
    broken = IMAGE + ":broken"
    world.emu.configure(missing_images=[broken])
    for body in bodies:
        body["spec"]["template"]["containers"][0]["image"] = broken
    started = time.monotonic()
    world.apply(ns, bodies)

    def reported(objs: dict[str, Any]) -> bool:
        return all(
            stalled_reason(objs[name]) and "not found" in str(objs[name]["status"]["conditions"][0].get("message"))
            for name in names(bodies)
        )

    world.wait_objects(
        ns, reported, timeout=120 * max(1, n // 50), what="every object Stalled with Cloud Run's message"
    )
    fig.waves["update (fails)"] = time.monotonic() - started
    fig.faults = len([op for op in world.emu.state()["operations"] if op.get("error")])
    world.assert_invariants(fig)
    for body in bodies:
        body["spec"]["template"]["containers"][0]["image"] = IMAGE + ":fixed"
    started = time.monotonic()
    world.apply(ns, bodies)
    world.wait_ready(ns, names(bodies), timeout=120 * max(1, n // 50))
    fig.waves["fixed"] = time.monotonic() - started
    world.assert_invariants(fig)
    assert fig.faults >= n


def test_permission_revoked_midway_stalls_then_recovers(
    world: ChaosWorld, chaos_size: int, figures: FigureMaker
) -> None:
    """The operator's permission on the project is revoked in the middle of each wave: objects that need
    Google then say Stalled/PermissionDenied with Google's message (no retry storm), deletions wait; once
    the permission is restored, everything converges (drift re-checks stalled objects)."""
    n = chaos_size
    fig = figures("permission revoked mid-wave, then restored", n)
    world.start_operator(IAPRUN_DRIFT_INTERVAL_SECONDS="4")
    ns = world.namespaces[0]
    seen_stalled: list[str] = []
    wave_start: dict[str, int] = {}

    def begin(wave: str) -> None:
        wave_start[wave] = world.emu.last_seq()
        if wave == "delete":
            # kubectl deletes one object at a time and the operator keeps up: revoke first, so that the
            # finalizers meet the denial.
            world.emu.set_permissions("anonymous", deny_projects=[DEFAULT_PROJECT])

    def during(wave: str) -> None:
        if wave != "delete":
            world.wait_requests(max(1, n // 2), method="run.*", since=wave_start[wave])
            world.emu.set_permissions("anonymous", deny_projects=[DEFAULT_PROJECT])
        denied_from = world.emu.last_seq() if wave != "delete" else wave_start[wave]
        if wave != "delete":

            def someone_stalled(objs: dict[str, Any]) -> bool:
                stalled = [o for o in objs.values() if stalled_reason(o) == "PermissionDenied"]
                seen_stalled.extend(o["metadata"]["name"] for o in stalled)
                rest = [o for o in objs.values() if not stalled_reason(o) and not is_ready(o)]
                return bool(stalled) and not rest

            objs = world.wait_objects(ns, someone_stalled, timeout=120, what="objects Stalled/PermissionDenied")
            for obj in objs.values():
                if stalled_reason(obj):
                    assert "denied" in str(obj["status"]["conditions"][0].get("message")).lower()
        else:
            # Deletions wait (finalizers retry with backoff) while denied.
            wait_for(
                lambda: len([r for r in world.operator_requests(since=denied_from) if r["status"] == 403]) >= n // 2,
                timeout=120,
                what="finalizers denied",
            )
            assert world.objects(ns), "objects were deleted although Google denied every call"
        fig.faults += len([r for r in world.operator_requests(since=denied_from) if r["status"] == 403])
        world.emu.disable_permissions()

    run_waves(world, fig, Fault(begin=begin, during=during), n=n)
    assert seen_stalled, "no object was ever Stalled/PermissionDenied"
    assert fig.faults > 0
