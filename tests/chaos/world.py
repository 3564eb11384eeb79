"""The chaos world: a test's namespaces, its operator processes, the emulator, and event-driven waits.

Everything a chaos test does goes through the real interfaces: manifests are applied with the pinned
kubectl, objects are observed with a watch on the real kube-apiserver (no polling where an event can be
awaited), Google is the emulator (faults through its admin API), and the operator is a separate process
that the test may SIGKILL and start again.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcpemu.admin import AdminClient
from integration.harness import OPERATOR_ACCOUNT, WRITES, OperatorProcess, open_rule, wait_for
from testworld import invariants
from testworld.cluster import ControlPlane
from testworld.fixtures import Runner
from testworld.operator_process import ShardReplicas

GROUP, VERSION, PLURAL = "iaprun.dev", "v1alpha1", "iaprunservices"
CLUSTER_ID = "chaos-cluster"
DEFAULT_PROJECT = "demo-project"
REGION = "asia-northeast1"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
# The tenancy policy of every chaos operator unless a scenario sets its own: the test label opens a namespace.
TENANCY = {"rules": [open_rule("chaos", {"iaprun.test/owned": "true"})]}
FINALIZER = "iaprun.dev/finalizer"
ERROR_LINE = re.compile(r"failed with an exception|Traceback \(most recent call last\)")

Objects = dict[str, dict[str, Any]]
WAVES = ("rollout", "update", "delete")


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return {}


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Ready for the generation the object has now."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    ready = condition(obj, "Ready")
    return (
        ready.get("status") == "True"
        and status.get("observedGeneration") == meta.get("generation")
        and ready.get("observedGeneration") == meta.get("generation")
    )


def stalled_reason(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    stalled = condition(obj, "Stalled")
    if stalled.get("status") == "True" and stalled.get("observedGeneration") == meta.get("generation"):
        return str(stalled.get("reason") or "")
    return ""


@dataclass
class Figures:
    """What one scenario measured; the terminal summary and docs/reliability.md print these."""

    scenario: str
    objects: int
    waves: dict[str, float] = field(default_factory=dict)
    """wave -> seconds until the invariants held and every object had converged."""
    faults: int = 0
    """Faults the emulator injected (error/hang rules fired, 429s, denials, conflicts...)."""
    kills: int = 0
    violations: int = 0
    notes: str = ""


@dataclass
class ChaosWorld:
    kubectl: Runner
    custom: Any
    core: Any
    emu: AdminClient
    emulator_url: str
    control_plane: ControlPlane
    log_dir: Path
    namespaces: list[str] = field(default_factory=list)
    operators: list[OperatorProcess] = field(default_factory=list)
    operator_env: dict[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    # ------------------------------------------------------------------------------------------ processes

    @property
    def operator(self) -> OperatorProcess:
        return self.operators[-1]

    def start_operator(self, **env: str) -> OperatorProcess:
        """Start (another) operator process; env adds to the chaos defaults."""
        proc = OperatorProcess(
            kubeconfig=str(self.control_plane.kubeconfig),
            google_endpoint=self.emulator_url,
            log_dir=self.log_dir,
            env=self._env(env),
        )
        self.operators.append(proc)
        return proc.start()

    def start_replicas(self, count: int = 2, **env: str) -> ShardReplicas:
        """``count`` replicas of the operator electing their active one with a Lease in the world's namespace."""
        replicas = ShardReplicas(
            kubeconfig=str(self.control_plane.kubeconfig),
            google_endpoint=self.emulator_url,
            log_dir=self.log_dir,
            lease_namespace=self.namespaces[0],
            replicas=count,
            env=self._env(env),
        )
        self.operators.extend(replicas.members.values())
        return replicas.start()

    def _env(self, env: Mapping[str, str]) -> dict[str, str]:
        merged = {
            "IAPRUN_CLUSTER_ID": CLUSTER_ID,
            "IAPRUN_DEFAULT_PROJECT": DEFAULT_PROJECT,
            # Client-side buckets out of the way: the faults under test are the emulator's.
            "IAPRUN_QUOTA_RUN_WRITES_PER_MINUTE": "100000",
            "IAPRUN_QUOTA_RUN_READS_PER_MINUTE": "100000",
            "IAPRUN_QUOTA_IAP_PER_MINUTE": "100000",
            "IAPRUN_QUOTA_CRM_PER_MINUTE": "100000",
            # The orphan sweep runs through every scenario (its default is 10 minutes, longer than a scenario).
            "IAPRUN_ORPHAN_SWEEP_INTERVAL_SECONDS": "10",
            "IAPRUN_TENANCY_POLICY": json.dumps(TENANCY),
            **self.operator_env,
            **env,
        }
        self.operator_env = {k: v for k, v in merged.items() if k not in ("IAPRUN_CLUSTER_ID",)}
        return merged

    def kill_operator(self) -> None:
        """SIGKILL the running operator (no cleanup, no finalizer work, like an OOM kill)."""
        self.operator.kill()

    def restart_operator(self) -> OperatorProcess:
        return self.start_operator()

    def operator_errors(self) -> list[str]:
        """Lines where a handler failed with an unexpected exception (not a planned retry), any process."""
        found: list[str] = []
        for proc in self.operators:
            with contextlib.suppress(OSError):
                found += [
                    line for line in proc.log_path.read_text(errors="replace").splitlines() if ERROR_LINE.search(line)
                ]
        return found

    def assert_operator_alive(self) -> None:
        proc = self.operator.proc
        assert proc is not None
        assert proc.poll() is None, f"operator exited; log:\n{self.operator.log_tail()}"

    # ------------------------------------------------------------------------------------------ namespaces

    def namespace(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        replace_labels: bool = False,
    ) -> str:
        """Create a namespace (deleted at teardown). It carries the test label (selected by the open
        tenancy rule) unless ``replace_labels``."""
        from kubernetes import client

        base = {} if replace_labels else {"iaprun.test/owned": "true"}
        meta = client.V1ObjectMeta(name=name, labels={**base, **(labels or {})}, annotations=dict(annotations or {}))
        self.core.create_namespace(client.V1Namespace(metadata=meta))
        self.namespaces.append(name)
        return name

    # ------------------------------------------------------------------------------------------ objects

    def apply(self, namespace: str, bodies: Sequence[Mapping[str, Any]]) -> None:
        """kubectl apply of many objects at once (one List)."""
        if not bodies:
            return
        doc = {"apiVersion": "v1", "kind": "List", "items": list(bodies)}
        self.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc), timeout=300)

    def delete_all(self, namespace: str, names: Iterable[str] | None = None) -> None:
        """kubectl delete without waiting (the finalizers are the operator's job)."""
        targets = ["--all"] if names is None else list(names)
        if targets:
            self.kubectl("delete", "-n", namespace, PLURAL, *targets, "--wait=false", timeout=300)

    def objects(self, namespace: str) -> Objects:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        return {str(o["metadata"]["name"]): o for o in items}

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return obj

    def wait_objects(
        self, namespace: str, predicate: Callable[[Objects], bool], *, timeout: float, what: str
    ) -> Objects:
        """Watch the namespace's objects until ``predicate(all objects by name)`` holds (bounded).

        A list, then a watch from its resourceVersion: each event re-evaluates the predicate. A broken
        stream (a control-plane restart, a server-side timeout) is answered by a fresh list.
        """
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        current: Objects = {}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{summarise(current)}")
            try:
                listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
                current = {str(o["metadata"]["name"]): o for o in listing["items"]}
                if predicate(current):
                    return current
                stream = watch.Watch().stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    resource_version=listing["metadata"]["resourceVersion"],
                    timeout_seconds=max(1, int(min(remaining, 60))),
                    allow_watch_bookmarks=False,
                )
                for event in stream:
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        break
                    name = str(obj["metadata"]["name"])
                    if event["type"] == "DELETED":
                        current.pop(name, None)
                    else:
                        current[name] = obj
                    if predicate(current):
                        return current
                    if time.monotonic() > deadline:
                        break
            except (ApiException, OSError, ValueError) as error:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what}: {error}") from error
                # The API server is restarting: wait for it to answer again (an event we cannot watch).
                wait_for(
                    self._api_up, timeout=max(1.0, deadline - time.monotonic()), interval=0.2, what="kube-apiserver"
                )

    def _api_up(self) -> bool:
        try:
            self.core.list_namespace(limit=1)
        except Exception:
            return False
        return True

    def wait_ready(self, namespace: str, names: Iterable[str], *, timeout: float, what: str = "") -> Objects:
        wanted = set(names)
        return self.wait_objects(
            namespace,
            lambda objs: all(n in objs and is_ready(objs[n]) for n in wanted),
            timeout=timeout,
            what=what or f"{len(wanted)} objects Ready",
        )

    def wait_gone(self, namespace: str, names: Iterable[str], *, timeout: float) -> None:
        wanted = set(names)
        self.wait_objects(
            namespace, lambda objs: not (wanted & set(objs)), timeout=timeout, what=f"{len(wanted)} objects deleted"
        )

    def start_wave(self, namespace: str, bodies: Sequence[Mapping[str, Any]], wave: str) -> None:
        """Begin one of ``WAVES``: apply the fleet, apply it updated, or delete it all."""
        if wave == "rollout":
            self.apply(namespace, bodies)
        elif wave == "update":
            self.apply(namespace, updated(bodies))
        else:
            self.delete_all(namespace)

    def wait_wave(self, namespace: str, wanted: Iterable[str], wave: str, *, timeout: float, what: str = "") -> None:
        """Wait for the end of ``wave``: every wanted object gone (delete) or Ready (rollout, update)."""
        if wave == "delete":
            self.wait_gone(namespace, wanted, timeout=timeout)
        else:
            self.wait_ready(namespace, wanted, timeout=timeout, what=what)

    # ------------------------------------------------------------------------------------------ invariants

    def key(self, project: str, service: str, region: str = REGION) -> str:
        number = self.emu.state()["projects"].get(project, project)
        return f"{number}/{region}/{service}"

    def violations(
        self,
        *,
        abandoned: Iterable[str] = (),
        protected: Iterable[str] | Mapping[str, int] = (),
        settled: bool = True,
    ) -> list[invariants.Violation]:
        world = invariants.collect(self.custom, self.core, self.emu, self.namespaces)
        return invariants.check(
            world,
            cluster_id=CLUSTER_ID,
            default_project=DEFAULT_PROJECT,
            abandoned=set(abandoned),
            protected=dict(protected) if isinstance(protected, Mapping) else set(protected),
            settled=settled,
            # The policy the running operator enforces (a scenario may have started it with its own).
            tenancy=json.loads(self.operator_env.get("IAPRUN_TENANCY_POLICY") or "null"),
            operator_service_account=self.operator_env.get("IAPRUN_OPERATOR_SERVICE_ACCOUNT", OPERATOR_ACCOUNT),
        )

    def assert_invariants(self, figures: Figures | None = None, **kwargs: Any) -> None:
        found = self.violations(**kwargs)
        if figures is not None:
            figures.violations += len(found)
        assert not found, "invariant violations:\n" + invariants.report(found)

    # ------------------------------------------------------------------------------------------ emulator

    def operator_requests(self, method: str | None = None, *, since: int = 0) -> list[dict[str, Any]]:
        return [r for r in self.emu.requests(method, since=since) if r.get("caller", "") == "" and not r.get("tag")]

    def wait_requests(self, count: int, *, method: str | None = None, since: int = 0, timeout: float = 120) -> int:
        """Wait (polling the emulator's log; it has no event stream) until the operator has made ``count``
        calls matching ``method`` after ``since``; returns the log's last seq."""
        wait_for(
            lambda: len(self.operator_requests(method, since=since)) >= count,
            timeout=timeout,
            interval=0.05,
            what=f"{count} operator calls {method or ''}",
        )
        return self.emu.last_seq()

    def operator_writes(self, since: int) -> int:
        """How many Google writes (``WRITES``) the operator made after ``since``."""
        return len([r for r in self.operator_requests(since=since) if r["method"] in WRITES])

    def await_writes(self, count: int) -> None:
        """Return once the operator made ``count`` more Google writes, or after 20 s if the wave ran out of work
        first (then a fault lands in the quiet after it, which is a point too)."""
        since = self.emu.last_seq()
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: self.operator_writes(since) >= count, timeout=20, interval=0.02, what=f"{count} writes")

    def failed_calls(self, since: int = 0) -> int:
        return len([r for r in self.operator_requests(since=since) if int(r.get("status") or 0) >= 400])

    # ------------------------------------------------------------------------------------------ teardown

    def close(self) -> None:
        from kubernetes.client.exceptions import ApiException

        for proc in self.operators:
            proc.stop()
        for ns in self.namespaces:
            # The objects go now, not when the namespace controller gets to them: the next test's operator
            # (cluster-wide) must not find them alive and act on them in its fresh emulator.
            with contextlib.suppress(ApiException, OSError):
                for name, obj in self.objects(ns).items():
                    if obj["metadata"].get("finalizers"):
                        self.custom.patch_namespaced_custom_object(
                            GROUP, VERSION, ns, PLURAL, name, {"metadata": {"finalizers": None}}
                        )
                self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
            with contextlib.suppress(ApiException, OSError):
                self.core.delete_namespace(ns)


def summarise(objects: Objects, limit: int = 12) -> str:
    """A few lines on the objects that are not Ready, for timeout messages."""
    lines = []
    for name, obj in sorted(objects.items()):
        if is_ready(obj):
            continue
        ready = condition(obj, "Ready")
        meta = obj.get("metadata") or {}
        lines.append(
            f"  {name}: gen={meta.get('generation')} observed={(obj.get('status') or {}).get('observedGeneration')} "
            f"deleting={bool(meta.get('deletionTimestamp'))} Ready={ready.get('status')} "
            f"{ready.get('reason')}: {str(ready.get('message'))[:160]}"
        )
    more = f"\n  ... {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


# ---------------------------------------------------------------------------------------------- manifests


def fleet(n: int, *, prefix: str = "chaos", project: str | None = None, image: str = IMAGE) -> list[dict[str, Any]]:
    """N varied objects: accessors (some expiring, some Additive), a few with IAP off, a few Abandon."""
    bodies = []
    for i in range(n):
        accessors: list[dict[str, Any]] = [
            {"member": f"user:u{i}@example.com"},
            {"member": f"group:team{i % 5}@example.com"},
        ]
        if i % 7 == 3:
            accessors.append({"member": f"user:temp{i}@example.com", "expires": "2099-01-01T00:00:00Z"})
        iap: dict[str, Any] = {"accessors": accessors}
        if i % 5 == 4:
            iap["accessorsPolicy"] = "Additive"
        if i % 11 == 10:
            iap = {"enabled": False}
        spec: dict[str, Any] = {
            "region": REGION,
            "template": {"containers": [{"image": image}]},
            "iap": iap,
        }
        if project:
            spec["projectID"] = project
        if i % 9 == 8:
            spec["deletionPolicy"] = "Abandon"
        bodies.append(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "IapRunService",
                "metadata": {"name": f"{prefix}-{i:03d}"},
                "spec": spec,
            }
        )
    return bodies


def updated(bodies: Sequence[Mapping[str, Any]], *, image: str = IMAGE + ":v2") -> list[dict[str, Any]]:
    """The update wave: a new image for all, one accessor swapped on those that have accessors."""
    out = []
    for i, body in enumerate(bodies):
        new = json.loads(json.dumps(body))
        new["spec"]["template"]["containers"][0]["image"] = image
        accessors = new["spec"]["iap"].get("accessors")
        if accessors:
            accessors[0] = {"member": f"user:v2-u{i}@example.com"}
        out.append(new)
    return out


def names(bodies: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(b["metadata"]["name"]) for b in bodies]


def abandoned_keys(world: ChaosWorld, bodies: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        world.key(str(b["spec"].get("projectID") or DEFAULT_PROJECT), str(b["metadata"]["name"]))
        for b in bodies
        if b["spec"].get("deletionPolicy") == "Abandon"
    }
