"""The benchmark: the real control plane, the emulator and the operator, each its own process.

Scenarios (issue 9; sizes are parameters, see ``Sizes``):

- ``quota-bound``: N objects, the emulator's Cloud Run write quota and the operator's client-side bucket both
  at Q per minute per region. ``lower_bound = Cloud Run writes needed (2 per object) / (Q / 60)``.
- ``scale-out``: N objects, every Google call delayed by ``latency``, operations take ``operation_delay``,
  no quota: time to all Ready, throughput, Google calls and operation polls per object create.
- ``reaction``: with the scale-out objects idle, change one object's spec M times; time from the
  Kubernetes PATCH to the emulator receiving the Cloud Run PATCH.
- ``quota-bound-default``: the quota-bound run at Google's default of 60 Cloud Run writes per minute per region.
- ``steady``: the operator restarted over the converged objects with a short drift interval; after
  its resume pass and ``steady_passes`` drift passes per object, the Google writes (must be 0) and reads
  per object per pass, from the emulator's request log (a pass is one read of the service's IAM policy).
  Its "all fields" variant: ``all_fields`` more objects with every Cloud Run v2 field set (``full_manifest``:
  volumes, VPC, probes, sidecar, traffic with a tag, scaling, annotations, ...) converge beside them first; their
  writes are reported apart (must be 0 too).
- ``size-sweep``: the scale-out at several fleet sizes on one replica; CPU per object and peak RSS against the
  size, drawn into a PNG (``Sizes.plot``).
- ``sharded-10k``: the scale-out over ``shards`` operator processes (``IAPRUN_SHARDS``/``IAPRUN_SHARD``,
  one replica per shard with its Lease, as ``testworld.operator_process.ShardReplicas`` starts them; shard 0
  labels the new objects), then a steady pass.
- ``failover``: two replicas of one shard; the active one killed mid-rollout (tests/bench/failover.py).

Convergence is detected from a Kubernetes watch (Ready at the current generation) and the emulator's
request log; nothing waits on a fixed sleep. The operator's CPU time and peak RSS come from
``/proc/<pid>/stat`` and ``/proc/<pid>/status`` of the operator process alone.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorProcess
from testworld.cluster import ControlPlane
from testworld.operator_process import REPO, OperatorProcess, ShardReplicas, open_rule, wait_for

GROUP, VERSION, PLURAL = "iaprun.dev", "v1alpha1", "iaprunservices"
PROJECT, REGION = "demo-project", "asia-northeast1"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
UNLIMITED = "1000000"  # operator-side buckets when the scenario has no quota
PRODUCTION_LEASE = {
    "IAPRUN_LEASE_DURATION_SECONDS": "15",
    "IAPRUN_LEASE_RENEW_DEADLINE_SECONDS": "10",
    "IAPRUN_LEASE_RETRY_SECONDS": "2",
}
"""The operator's Lease timings (ShardReplicas' short test ones would fence a replica a loaded machine stalls)."""
UNLIMITED_ENV = {f"IAPRUN_QUOTA_{k}_PER_MINUTE": UNLIMITED for k in ("RUN_WRITES", "RUN_READS", "IAP", "CRM")}
PASS_READ = "run.services.getIamPolicy"
"""The one call every resume and drift pass makes exactly once per object: what counts passes."""

RUN_WRITES = frozenset(
    {
        "run.services.create",
        "run.services.patch",
        "run.services.delete",
        "run.services.setIamPolicy",
        "run.operations.delete",
    }
)
WRITES = RUN_WRITES | {
    "iap.setIamPolicy",
    "iap.updateIapSettings",
    "serviceusage.services.generateServiceIdentity",
    "cloudresourcemanager.projects.setIamPolicy",
    "cloudresourcemanager.v1.projects.setIamPolicy",
}
FIELDS = (
    "scenario",
    "n",
    "converge_seconds",
    "lower_bound_seconds",
    "ratio",
    "google_calls_per_object_create",
    "steady_writes",
    "steady_writes_all_fields",
    "steady_reads_per_object_per_pass",
    "reaction_p50_seconds",
    "quota_429s",
    "operator_peak_rss_mb",
    "operator_cpu_seconds_per_object",
    "failover_seconds",
    "violations",
)
SCENARIOS = (
    "quota-bound",
    "quota-bound-default",
    "scale-out",
    "reaction",
    "steady",
    "size-sweep",
    "sharded-10k",
    "failover",
)
GOOGLE_DEFAULT_RUN_WRITES = 60
"""Cloud Run Admin API writes per minute per region: Google's default quota."""
_SERVICE = re.compile(r"/services/([a-z0-9-]+)")


@dataclass
class Sizes:
    """Sizes and timings of one run; the defaults are the full run of issue 9."""

    scale_out: int = 1000
    quota_bound: int = 200
    reaction_changes: int = 20
    steady_passes: int = 3
    latency: float = 0.05
    """Seconds added to every Google call (scale-out, reaction, steady state; the quota run too)."""
    operation_delay: float = 2.0
    quota_per_minute: int = 300
    drift_interval: float = 30.0
    """Drift interval of the steady operator (seconds)."""
    timer_tick: float = 10.0
    """IAPRUN_TIMER_TICK_SECONDS of every operator (the production default)."""
    idle_window: float = 10.0
    """Seconds over which the idle operator's CPU is sampled (reaction scenario, before the changes)."""
    accessors: int = 2
    all_fields: int = 50
    """Objects with every Cloud Run field set, converged before the steady state (its "all fields" variant)."""
    create_threads: int = 8
    timeout: float = 3600.0
    """Bound on any single wait (a failure, not a measurement)."""
    quota_default: int = 60
    """Objects of the quota-bound run at Google's default quota (2 writes each at 1 per second)."""
    sweep: tuple[int, ...] = (100, 1000, 3000, 10000)
    """Fleet sizes of the size sweep (one replica each)."""
    plot: str = str(REPO / "docs" / "img" / "cost-per-object.png")
    """Where the size sweep draws CPU per object and peak RSS against fleet size ("" : no plot)."""
    sharded: int = 10000
    shards: int = 4
    sharded_drift_interval: float = 120.0
    """Drift interval of the sharded steady pass (seconds; one pass per object is counted)."""
    failover: int = 100
    """Objects rolled out while the active replica is killed (``failover``, tests/bench/failover.py)."""
    failover_lease: float = 15.0
    """Lease duration of the failover scenario's replicas (the operator's default; 3 or less: the tests' timings)."""
    scenarios: tuple[str, ...] = SCENARIOS
    operator_src: str = ""
    """Another operator source tree to measure (its ``iaprun_operator`` parent directory), for A/B runs."""


# ---------------------------------------------------------------------------------------------- measurement


class ProcMeter:
    """CPU seconds (utime + stime) and peak RSS (VmHWM) of one process, from /proc."""

    _TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        return self._cpu(Path(f"/proc/{self.pid}/stat"))

    def off_loop_cpu_seconds(self) -> float:
        """CPU of the threads other than the main one (the event loop's): the Google client calls, which the
        operator runs in threads, and the few Kubernetes client reads. Threads that ended are not counted."""
        tasks = Path(f"/proc/{self.pid}/task")
        return sum(self._cpu(t / "stat") for t in tasks.iterdir() if t.name != str(self.pid))

    def _cpu(self, stat: Path) -> float:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended meanwhile
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self._TICKS  # utime, stime (fields 14 and 15)

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def peak_rss_mb(self) -> float:
        return self._status_kb("VmHWM") / 1024

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024


def say(text: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def service_of(entry: Mapping[str, Any]) -> str | None:
    """The Cloud Run service a logged call concerns (by path, or serviceId on create); None: per project."""
    found = _SERVICE.search(str(entry.get("path", "")))
    if found:
        return found.group(1)
    service_id = (entry.get("query") or {}).get("serviceId")
    return str(service_id) if service_id else None


@dataclass
class CreateStats:
    calls_per_object: float
    polls_per_object: float
    project_calls: int
    by_method: dict[str, int]


def create_stats(log: Sequence[Mapping[str, Any]], services: Iterable[str]) -> CreateStats:
    """Google calls per object create, with the re-reads of the service after its create counted as polls.

    Per-project calls (project number, IAP agent) are shared by all objects and spread over them.
    """
    wanted = set(services)
    created_at: dict[str, int] = {}
    calls: Counter[str] = Counter()
    polls: Counter[str] = Counter()
    project_calls = 0
    for entry in log:
        svc = service_of(entry)
        if svc is None:
            project_calls += 1
            continue
        if svc not in wanted:
            continue
        if entry["method"] == "run.services.create" and entry["status"] == 200:
            created_at.setdefault(svc, int(entry["seq"]))
        if entry["method"] == "run.services.get" and svc in created_at:
            polls[svc] += 1
        else:
            calls[svc] += 1
    n = max(1, len(wanted))
    return CreateStats(
        calls_per_object=(sum(calls.values()) + project_calls) / n,
        polls_per_object=sum(polls.values()) / n,
        project_calls=project_calls,
        by_method=dict(Counter(str(e["method"]) for e in log)),
    )


# ---------------------------------------------------------------------------------------------- Kubernetes


class Kube:
    """The kubernetes client, pooled for a few creating threads."""

    def __init__(self, kubeconfig: Path, pool: int = 16) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        # kubernetes ships py.typed but leaves this unannotated
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = pool
        self.api: Any = client.ApiClient(configuration)
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.core: Any = client.CoreV1Api(self.api)

    def writes(self) -> Counter[str]:
        """The API server's count of requests so far that write the objects or post Events (its /metrics):
        ``iaprunservices PATCH`` (the object and its status) and ``events POST``."""
        response = self.api.call_api("GET", self.api.configuration.host + "/metrics")
        response.read()
        text: bytes = response.data
        counts: Counter[str] = Counter()
        for line in text.decode().splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            key = f"{labels.get('resource')} {labels.get('verb')}"
            if key in ("iaprunservices PATCH", "events POST"):
                counts[key] += int(float(line.rsplit(" ", 1)[1]))
        return counts

    def crd_established(self) -> bool:
        from kubernetes import client

        try:
            crd = client.ApiextensionsV1Api(self.api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        except Exception:
            return False
        conditions = (crd.status.conditions if crd.status else None) or ()
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    def create_namespace(self, prefix: str) -> str:
        from kubernetes import client

        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        meta = client.V1ObjectMeta(name=name, labels={"iaprun.test/owned": "true", "iaprun.test/bench": "true"})
        self.core.create_namespace(client.V1Namespace(metadata=meta))
        return name

    def create(self, namespace: str, bodies: Sequence[Mapping[str, Any]], threads: int) -> None:
        def one(body: Mapping[str, Any]) -> None:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, dict(body))

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="create") as pool:
            list(pool.map(one, bodies))

    def patch(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, dict(body)
        )
        return result

    def purge(self, namespace: str) -> None:
        """Drop the finalizers (no operator watches the namespace any more) and delete the namespace."""
        from kubernetes.client.exceptions import ApiException

        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        for item in items:
            try:
                self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"], {"metadata": {"finalizers": None}}
                )
            except ApiException as error:
                if error.status != 404:
                    raise
        self.core.delete_namespace(namespace)

    def close(self) -> None:
        self.api.close()


class ReadyWatcher:
    """Which objects of a namespace are Ready at their current generation, kept from a watch stream."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.ready_at: dict[str, float] = {}
        """name -> wall time the watcher saw it Ready at its current generation (absent: not Ready)."""
        self.generation: dict[str, int] = {}
        self.events = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)
        self._thread.start()

    def _observe(self, obj: Mapping[str, Any], deleted: bool = False) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        generation = int(meta.get("generation") or 0)
        status = obj.get("status") or {}
        ready = not deleted and (
            int(status.get("observedGeneration") or -1) == generation
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
        )
        with self._cond:
            self.events += 1
            self.generation[name] = generation
            if ready:
                self.ready_at.setdefault(name, time.time())
            else:
                self.ready_at.pop(name, None)
            self._cond.notify_all()

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self._stop.is_set():
            try:
                listing = self.kube.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
                for item in listing["items"]:
                    self._observe(item)
                version = listing["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    # kubernetes ships py.typed but leaves this unannotated
                    w: Any = watch.Watch()  # type: ignore[no-untyped-call]
                    stream = w.stream(
                        self.kube.custom.list_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        self.namespace,
                        PLURAL,
                        resource_version=version,
                        timeout_seconds=5,
                    )
                    for event in stream:
                        obj = event["object"]
                        version = obj["metadata"]["resourceVersion"]
                        self._observe(obj, deleted=event["type"] == "DELETED")
            except ApiException as error:
                if error.status != 410:  # expired: list again
                    time.sleep(0.5)
            except Exception:  # the API server restarting under us: list again
                time.sleep(0.5)

    def wait_ready(self, names: Iterable[str], *, timeout: float, generation: Mapping[str, int] | None = None) -> float:
        """Wait until every name is Ready (at least at ``generation[name]``); the wall time of the last."""
        wanted = list(names)
        deadline = time.monotonic() + timeout

        def done() -> bool:
            return all(n in self.ready_at and self.generation.get(n, 0) >= (generation or {}).get(n, 0) for n in wanted)

        with self._cond:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = [n for n in wanted if n not in self.ready_at]
                    raise TimeoutError(f"{len(missing)} of {len(wanted)} objects not Ready: {missing[:5]}")
                self._cond.wait(min(remaining, 1.0))
            return max(self.ready_at[n] for n in wanted)

    def stop(self) -> None:
        self._stop.set()


# ---------------------------------------------------------------------------------------------- the world


def manifest(name: str, accessors: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IapRunService",
        "metadata": {"name": name},
        "spec": {
            "projectID": PROJECT,
            "region": REGION,
            "template": {"containers": [{"image": IMAGE}]},
            "iap": {
                "enabled": True,
                "accessors": [{"member": f"user:dev{i}@example.com"} for i in range(accessors)],
            },
        },
    }


def plot_sweep(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Peak RSS and CPU per object created against fleet size (one replica), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = [int(r["n"]) for r in rows]
    rss = [float(r["operator_peak_rss_mb"]) for r in rows]
    cpu = [1000 * float(r["operator_cpu_seconds_per_object"]) for r in rows]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for axes, values, title, unit in (
        (left, rss, "Operator peak RSS", "MB"),
        (right, cpu, "Operator CPU per object created", "ms"),
    ):
        axes.plot(sizes, values, marker="o")
        axes.set_xscale("log")
        axes.set_xticks(sizes, [f"{x:,}" for x in sizes])
        axes.set_xlabel("objects on one replica")
        axes.set_ylabel(unit)
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        for x, y in zip(sizes, values, strict=True):
            axes.annotate(f"{y:.0f}" if unit == "MB" else f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6))
    figure.suptitle("python -m bench --scenarios size-sweep (scale-out: objects exist before the operator starts)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def full_manifest(name: str, accessors: int) -> dict[str, Any]:
    """An object with every Cloud Run v2 field a production service declares (issue #14)."""
    body = manifest(name, accessors)
    spec = body["spec"]
    spec.update(
        description="every field set",
        labels={"team": "bench"},
        annotations={"bench.example/owner": "bench"},
        ingress="INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        launchStage="BETA",
        scaling={"minInstanceCount": 0},
        customAudiences=[f"https://{name}.example.com"],
        defaultUriDisabled=False,
        binaryAuthorization={"useDefault": True},
        traffic=[{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100, "tag": "live"}],
    )
    spec["template"] = {
        "labels": {"tier": "web"},
        "annotations": {"bench.example/build": "1"},
        "serviceAccount": f"{name}@{PROJECT}.iam.gserviceaccount.com",
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
        "timeout": "60s",
        "sessionAffinity": True,
        "maxInstanceRequestConcurrency": 40,
        "scaling": {"minInstanceCount": 0, "maxInstanceCount": 5},
        "vpcAccess": {"egress": "PRIVATE_RANGES_ONLY", "networkInterfaces": [{"network": "default"}]},
        "volumes": [
            {"name": "db", "cloudSqlInstance": {"instances": [f"{PROJECT}:{REGION}:db"]}},
            {"name": "cfg", "secret": {"secret": "cfg", "items": [{"path": "c.yaml", "version": "latest"}]}},
            {"name": "tmp", "emptyDir": {"medium": "MEMORY", "sizeLimit": "64Mi"}},
        ],
        "containers": [
            {
                "name": "app",
                "image": IMAGE,
                "ports": [{"containerPort": 8080}],
                "env": [
                    {"name": "MODE", "value": "bench"},
                    {"name": "KEY", "valueSource": {"secretKeyRef": {"secret": "k"}}},
                ],
                "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}, "cpuIdle": False, "startupCpuBoost": True},
                "volumeMounts": [{"name": "db", "mountPath": "/cloudsql"}, {"name": "cfg", "mountPath": "/etc/cfg"}],
                "startupProbe": {"httpGet": {"path": "/ready"}, "periodSeconds": 2},
                "livenessProbe": {"httpGet": {"path": "/healthz"}},
            },
            {
                "name": "side",
                "image": IMAGE,
                "dependsOn": ["app"],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            },
        ],
    }
    return body


def empty_row(scenario: str, n: int) -> dict[str, Any]:
    return dict.fromkeys(FIELDS) | {"scenario": scenario, "n": n}


@dataclass
class World:
    """The control plane (given or started), the emulator and the admin clients of one run."""

    plane: ControlPlane
    emulator: EmulatorProcess
    admin: AdminClient
    kube: Kube
    log_dir: Path
    namespaces: list[str] = field(default_factory=list)


@contextmanager
def world(log_dir: Path, plane: ControlPlane | None = None) -> Iterator[World]:
    """Start what is missing; stop only what was started here."""
    from testworld import tools

    log_dir.mkdir(parents=True, exist_ok=True)
    own_plane = plane is None
    cp = plane or ControlPlane()
    if own_plane:
        cp.start()
    emulator = EmulatorProcess({"request_log_size": 1_000_000})
    try:
        emulator.start()
        kubectl = str(tools.kubectl_path())
        env = dict(os.environ, KUBECONFIG=str(cp.kubeconfig))
        apply = [kubectl, "apply", "--server-side", "-f", str(REPO / "crds")]
        subprocess.run(apply, env=env, check=True, capture_output=True)
        kube = Kube(cp.kubeconfig)
        wait_for(kube.crd_established, timeout=60, interval=0.2, what="the CRD to be Established")
        admin = AdminClient(emulator.base_url, timeout=60)
        w = World(plane=cp, emulator=emulator, admin=admin, kube=kube, log_dir=log_dir)
        try:
            yield w
        finally:
            if not own_plane:  # a shared control plane (the smoke test): leave nothing behind
                for ns in w.namespaces:
                    w.kube.purge(ns)
            kube.close()
    finally:
        emulator.stop()
        if own_plane:
            cp.close()


class Bench:
    def __init__(self, w: World, sizes: Sizes, save: Callable[[list[dict[str, Any]]], object] | None = None) -> None:
        self.w = w
        self.sizes = sizes
        self.save = save or (lambda rows: None)
        """Called with the rows so far after each scenario: a run that fails late keeps what it measured."""
        self.admin = w.admin
        self.startup_cpu: float | None = None
        """CPU seconds of an operator start-up (imports, login, first listings), from the quota-bound run."""

    # --- plumbing ----------------------------------------------------------------------------

    def namespace(self, prefix: str) -> str:
        ns = self.w.kube.create_namespace(prefix)
        self.w.namespaces.append(ns)
        return ns

    def emulator_for(self, *, quota: int | None) -> None:
        """A fresh emulator world: latency on every call, slow operations, and optionally a write quota."""
        self.admin.reset()
        self.admin.configure(request_log_size=1_000_000)
        if self.sizes.latency:
            self.admin.set_latency("*", self.sizes.latency)
        self.admin.set_operation_delay(self.sizes.operation_delay)
        if quota is not None:
            self.admin.set_quota("run.googleapis.com", write=quota)

    def operator(self, namespace: str, **env: str) -> tuple[OperatorProcess, ProcMeter]:
        return self.replica(namespace, None, env)

    def replica(
        self, namespace: str, shard: tuple[int, int] | None, env: Mapping[str, str]
    ) -> tuple[OperatorProcess, ProcMeter]:
        """One operator process; with ``shard`` (index, count), that shard's one replica, started as
        ``ShardReplicas`` starts it (``IAPRUN_SHARDS``/``IAPRUN_SHARD``, its Lease in ``namespace``) and up once it
        holds the Lease."""
        settings = {
            "IAPRUN_WATCH_NAMESPACE": namespace,
            "IAPRUN_TIMER_TICK_SECONDS": str(self.sizes.timer_tick),
            "IAPRUN_DRIFT_INTERVAL_SECONDS": "3600",
            "IAPRUN_CLUSTER_ID": "bench-cluster",
            # Deny by default: the bench's namespaces (labelled iaprun.test/bench) get one open rule.
            "IAPRUN_TENANCY_POLICY": json.dumps({"rules": [open_rule("bench", {"iaprun.test/bench": "true"})]}),
            **({"PYTHONPATH": self.sizes.operator_src} if self.sizes.operator_src else {}),
            **env,
        }
        if shard is None:
            proc = OperatorProcess(
                kubeconfig=str(self.w.plane.kubeconfig),
                google_endpoint=self.w.emulator.base_url,
                log_dir=self.w.log_dir,
                env=settings,
            ).start()
        else:
            group = ShardReplicas(
                kubeconfig=str(self.w.plane.kubeconfig),
                google_endpoint=self.w.emulator.base_url,
                log_dir=self.w.log_dir,
                lease_namespace=namespace,
                replicas=1,
                shard=shard[0],
                shards=shard[1],
                env={**PRODUCTION_LEASE, **settings},
            ).start()
            (proc,) = group.members.values()
        assert proc.proc is not None
        return proc, ProcMeter(proc.proc.pid)

    def wait_quiet(self, seconds: float = 2.0) -> None:
        """Until the emulator has received no call for ``seconds`` (bounded)."""
        last = self.admin.last_seq()
        since = time.monotonic()
        deadline = since + self.sizes.timeout
        while time.monotonic() - since < seconds:
            if time.monotonic() > deadline:
                raise TimeoutError("the operator never went quiet")
            time.sleep(0.2)
            now = self.admin.last_seq()
            if now != last:
                last, since = now, time.monotonic()

    def converge(
        self, namespace: str, names: Sequence[str], env: Mapping[str, str], *, precreate: bool
    ) -> tuple[dict[str, Any], OperatorProcess, ProcMeter]:
        """Create the objects and wait until all are Ready; what it took, from the log and /proc.

        ``precreate``: the objects exist before the operator starts, and the clock (and the CPU count,
        start-up included) starts with the operator, so the operator's own throughput is measured, not
        how fast one client can create objects on a shared 2-core machine. Otherwise the operator runs
        first and the clock starts with the first create.
        """
        watcher = ReadyWatcher(self.w.kube, namespace)
        bodies = [manifest(n, self.sizes.accessors) for n in names]
        proc: OperatorProcess | None = None
        try:
            seq0 = self.admin.last_seq()
            writes0 = self.w.kube.writes()
            if not precreate:
                proc, meter = self.operator(namespace, **env)
                self.startup_cpu = meter.cpu_seconds()  # an operator up with nothing to do yet
            started = time.time()
            self.w.kube.create(namespace, bodies, self.sizes.create_threads)
            created = time.time()
            create_seconds = created - started
            say(f"{len(names)} objects created in {create_seconds:.1f}s")
            if precreate:
                started = time.time()
                proc, meter = self.operator(namespace, **env)
                cpu0 = 0.0
                say("operator started over them; waiting for Ready")
            else:
                cpu0 = meter.cpu_seconds()
            finished = watcher.wait_ready(names, timeout=self.sizes.timeout)
            say(f"all Ready after {finished - started:.1f}s")
            cpu = meter.cpu_seconds() - cpu0
            off_loop = meter.off_loop_cpu_seconds()
            writes = self.w.kube.writes() - writes0
        except BaseException:
            if proc is not None:
                proc.stop()
            raise
        finally:
            watcher.stop()
        log = self.admin.requests(since=seq0, include_tagged=False)
        run: dict[str, Any] = {
            "converge_seconds": finished - started,
            "create_seconds": create_seconds,
            "cpu": cpu,
            "off_loop_cpu": off_loop,
            "log": log,
            "kube_patches_per_object": round(writes["iaprunservices PATCH"] / max(1, len(names)), 2),
            "kube_events_per_object": round(writes["events POST"] / max(1, len(names)), 2),
        }
        assert proc is not None
        return run, proc, meter

    # --- scenarios ---------------------------------------------------------------------------

    def quota_bound(self, scenario: str, n: int, quota: int) -> dict[str, Any]:
        row = empty_row(scenario, n)
        ns = self.namespace("bench-quota")
        say(f"{scenario}: {n} objects, Cloud Run writes {quota}/min")
        self.emulator_for(quota=quota)
        names = [f"q-{i:04d}" for i in range(n)]
        env = {"IAPRUN_QUOTA_RUN_WRITES_PER_MINUTE": str(quota)}
        run, proc, meter = self.converge(ns, names, env, precreate=False)
        try:
            log = run["log"]
            stats = create_stats(log, names)
            run_writes = sum(1 for e in log if e["method"] in RUN_WRITES and e["status"] == 200)
            needed = 2 * n  # create + the invoker grant (setIamPolicy) per object
            lower = needed / (quota / 60.0)
            rejected = sum(1 for e in log if e["status"] == 429)
            row.update(
                converge_seconds=round(run["converge_seconds"], 2),
                lower_bound_seconds=round(lower, 2),
                ratio=round(run["converge_seconds"] / lower, 3),
                google_calls_per_object_create=round(stats.calls_per_object, 2),
                polls_per_object_create=round(stats.polls_per_object, 2),
                cloud_run_writes=run_writes,
                cloud_run_writes_needed=needed,
                quota_429s=rejected,
                patch_masks=dict(
                    Counter(
                        str((e.get("query") or {}).get("updateMask"))
                        for e in log
                        if e["method"] == "run.services.patch"
                    )
                ),
                quota_429_percent=round(100.0 * rejected / max(1, run_writes), 2),
                operator_peak_rss_mb=round(meter.peak_rss_mb(), 1),
                operator_cpu_seconds_per_object=round(run["cpu"] / n, 4),
                calls_by_method=stats.by_method,
            )
        finally:
            proc.stop()
        return row

    def scale_out(self, n: int, *, reaction: bool, steady: bool, scenario: str = "scale-out") -> list[dict[str, Any]]:
        row = empty_row(scenario, n)
        ns = self.namespace("bench-scale")
        say(f"{scenario}: {n} objects, {self.sizes.latency}s per call, {self.sizes.operation_delay}s operations")
        self.emulator_for(quota=None)
        rows = [row]
        names = [f"s-{i:05d}" for i in range(n)]
        run, proc, meter = self.converge(ns, names, UNLIMITED_ENV, precreate=True)
        try:
            stats = create_stats(run["log"], names)
            row.update(
                converge_seconds=round(run["converge_seconds"], 2),
                throughput_objects_per_second=round(n / run["converge_seconds"], 2),
                create_seconds=round(run["create_seconds"], 2),
                google_calls_per_object_create=round(stats.calls_per_object, 2),
                polls_per_object_create=round(stats.polls_per_object, 2),
                quota_429s=sum(1 for e in run["log"] if e["status"] == 429),
                operator_peak_rss_mb=round(meter.peak_rss_mb(), 1),
                operator_cpu_seconds_per_object=round(run["cpu"] / n, 4),
                operator_cpu_seconds_per_object_after_startup=(
                    round((run["cpu"] - self.startup_cpu) / n, 4) if self.startup_cpu is not None else None
                ),
                operator_startup_cpu_seconds=self.startup_cpu,
                operator_off_loop_cpu_seconds_per_object=round(run["off_loop_cpu"] / n, 4),
                kube_patches_per_object=run["kube_patches_per_object"],
                kube_events_per_object=run["kube_events_per_object"],
                calls_by_method=stats.by_method,
            )
            if reaction:
                rows.append(self.reaction(ns, names, meter))
            full = self.add_full_objects(ns) if steady else []
        finally:
            proc.stop()
        if steady:
            rows.append(self.steady_state(ns, names, UNLIMITED_ENV, full=full))
        return rows

    def size_sweep(self, done: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The scale-out at each sweep size on one replica (a size the scale-out already ran is not run again),
        and the plot of CPU per object and peak RSS against the size."""
        measured = {int(r["n"]): dict(r) for r in done if r["scenario"] == "scale-out"}
        rows: list[dict[str, Any]] = []
        for n in self.sizes.sweep:
            row = measured.get(n) or self.scale_out(n, reaction=False, steady=False)[0]
            rows.append(row | {"scenario": "size-sweep"})
        if self.sizes.plot:
            plot_sweep(rows, Path(self.sizes.plot))
            say(f"size-sweep: plot written to {self.sizes.plot}")
        return rows

    def sharded(self) -> dict[str, Any]:
        """``sizes.sharded`` objects over ``sizes.shards`` operator processes: time to all Ready, each replica's CPU
        and peak RSS, Google calls per object; then the replicas restarted on a short drift for one steady pass."""
        n, count = self.sizes.sharded, self.sizes.shards
        row = empty_row("sharded-10k", n) | {"shards": count}
        ns = self.namespace("bench-shard")
        say(f"sharded-10k: {n} objects over {count} shards")
        self.emulator_for(quota=None)
        names = [f"h-{i:05d}" for i in range(n)]
        watcher = ReadyWatcher(self.w.kube, ns)
        procs: list[tuple[OperatorProcess, ProcMeter]] = []
        try:
            seq0 = self.admin.last_seq()
            self.w.kube.create(ns, [manifest(x, self.sizes.accessors) for x in names], self.sizes.create_threads)
            started = time.time()
            procs = [self.replica(ns, (i, count), UNLIMITED_ENV) for i in range(count)]
            finished = watcher.wait_ready(names, timeout=self.sizes.timeout)
            say(f"sharded-10k: all Ready after {finished - started:.1f}s")
            cpus = [meter.cpu_seconds() for _, meter in procs]
            rss = [meter.peak_rss_mb() for _, meter in procs]
        finally:
            watcher.stop()
            for proc, _ in procs:
                proc.stop()
        stats = create_stats(self.admin.requests(since=seq0, include_tagged=False), names)
        steady = self.steady_state(
            ns, names, UNLIMITED_ENV, shards=count, drift_interval=self.sizes.sharded_drift_interval, passes=1
        )
        return row | {
            "converge_seconds": round(finished - started, 2),
            "google_calls_per_object_create": round(stats.calls_per_object, 2),
            "polls_per_object_create": round(stats.polls_per_object, 2),
            "per_shard_cpu_seconds": [round(c, 1) for c in cpus],
            "per_shard_peak_rss_mb": [round(r, 1) for r in rss],
            "operator_peak_rss_mb": round(max(rss), 1),
            "operator_cpu_seconds_per_object": round(sum(cpus) / n, 4),
            "steady_writes": steady["steady_writes"],
            "steady_reads_per_object_per_pass": steady["steady_reads_per_object_per_pass"],
        }

    def add_full_objects(self, namespace: str) -> list[str]:
        """The steady state's "all fields" objects, created and Ready under the running operator."""
        names = [f"f-{i:04d}" for i in range(self.sizes.all_fields)]
        if not names:
            return names
        watcher = ReadyWatcher(self.w.kube, namespace)
        try:
            self.w.kube.create(namespace, [full_manifest(n, self.sizes.accessors) for n in names], 4)
            watcher.wait_ready(names, timeout=self.sizes.timeout)
        finally:
            watcher.stop()
        say(f"{len(names)} objects with every field set are Ready")
        return names

    def _patches_above(self, before: int) -> bool:
        return self.admin.counts().get("run.services.patch", 0) > before

    def reaction(self, namespace: str, names: Sequence[str], meter: ProcMeter) -> dict[str, Any]:
        """Change one idle object's spec at a time; latency until the emulator receives the PATCH."""
        m = self.sizes.reaction_changes
        row = empty_row("reaction", len(names))
        say(f"reaction: {m} spec changes over {len(names)} idle objects")
        self.wait_quiet()
        # The idle cost of N objects (kopf's per-object timers, watch keep-alives): a measurement window.
        idle_cpu0, idle_t0 = meter.cpu_seconds(), time.monotonic()
        time.sleep(self.sizes.idle_window)
        idle_percent = 100.0 * (meter.cpu_seconds() - idle_cpu0) / (time.monotonic() - idle_t0)
        watcher = ReadyWatcher(self.w.kube, namespace)
        latencies: list[float] = []
        patches = 0
        cpu0 = meter.cpu_seconds()
        try:
            watcher.wait_ready(names, timeout=self.sizes.timeout)
            for i in range(m):
                name = names[(i * len(names)) // m]
                seq = self.admin.last_seq()
                before = self.admin.counts().get("run.services.patch", 0)
                sent = time.time()
                obj = self.w.kube.patch(
                    namespace, name, {"spec": {"template": {"containers": [{"image": f"{IMAGE}:r{i}"}]}}}
                )
                wait_for(
                    partial(self._patches_above, before),
                    timeout=self.sizes.timeout,
                    interval=0.01,
                    what=f"the PATCH of {name}",
                )
                found = [e for e in self.admin.requests("run.services.patch", since=seq) if service_of(e) == name]
                assert found, f"no PATCH logged for {name}"
                received = float(found[0]["time"]) - float(found[0]["duration_ms"]) / 1000.0
                latencies.append(max(0.0, received - sent))
                generation = int(obj["metadata"]["generation"])
                watcher.wait_ready([name], generation={name: generation}, timeout=self.sizes.timeout)
                self.wait_quiet(0.5)
                patches += len(
                    [e for e in self.admin.requests("run.services.patch", since=seq) if service_of(e) == name]
                )
        finally:
            watcher.stop()
        latencies.sort()
        row.update(
            reaction_p50_seconds=round(statistics.median(latencies), 3),
            reaction_p90_seconds=round(latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))], 3),
            reaction_max_seconds=round(latencies[-1], 3),
            changes=m,
            patches_per_change=round(patches / m, 2),
            operator_idle_cpu_percent=round(idle_percent, 1),
            operator_peak_rss_mb=round(meter.peak_rss_mb(), 1),
            operator_cpu_seconds_per_object=round((meter.cpu_seconds() - cpu0) / m, 4),
        )
        return row

    def steady_state(
        self,
        namespace: str,
        names: Sequence[str],
        env: Mapping[str, str],
        *,
        shards: int = 0,
        drift_interval: float | None = None,
        passes: int | None = None,
        full: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Fresh operators (one, or ``shards``) over converged objects: their resume pass, then drift passes; count
        calls. A pass is one read of the service's IAM policy (every resume and drift pass makes exactly one;
        the service itself may come from a regional listing). ``full``: the objects with every field set, counted
        in the totals and their writes reported apart too."""
        passes = self.sizes.steady_passes if passes is None else passes
        names = [*names, *full]
        interval = self.sizes.drift_interval if drift_interval is None else drift_interval
        row = empty_row("steady", len(names))
        say(f"steady: operator restarted, drift every {interval}s, {passes} passes")
        self.wait_quiet(1.0)
        seq0 = self.admin.last_seq()
        drift = {"IAPRUN_DRIFT_INTERVAL_SECONDS": str(interval), **dict(env)}
        members = [(i, shards) for i in range(shards)] if shards else [None]
        procs = [self.replica(namespace, k, drift) for k in members]
        try:
            cpu0 = [meter.cpu_seconds() for _, meter in procs]
            started = time.time()
            seen: Counter[str] = Counter()
            cursor = seq0
            wanted = set(names)

            def enough() -> bool:
                nonlocal cursor
                for entry in self.admin.requests(PASS_READ, since=cursor):
                    cursor = max(cursor, int(entry["seq"]))
                    svc = service_of(entry)
                    if svc in wanted:
                        seen[svc] += 1
                return len(seen) == len(wanted) and min(seen.values()) >= passes + 1  # resume + drift passes

            wait_for(enough, timeout=self.sizes.timeout, interval=1.0, what=f"{passes} drift passes")
            elapsed = time.time() - started
            cpu = sum(meter.cpu_seconds() - c for (_, meter), c in zip(procs, cpu0, strict=True))
            peak = max(meter.peak_rss_mb() for _, meter in procs)
            end = self.admin.last_seq()
            log = [e for e in self.admin.requests(since=seq0, include_tagged=False) if int(e["seq"]) <= end]
        finally:
            for proc, _ in procs:
                proc.stop()
        observed = sum(1 for e in log if e["method"] == PASS_READ)
        writes = sum(1 for e in log if e["method"] in WRITES)
        reads = sum(1 for e in log if e["method"] not in WRITES)
        service_reads = sum(1 for e in log if e["method"] in ("run.services.get", "run.services.list"))
        row.update(
            steady_writes=writes,
            steady_writes_all_fields=sum(1 for e in log if e["method"] in WRITES and service_of(e) in set(full)),
            all_fields_objects=len(full),
            steady_reads=reads,
            steady_passes_observed=observed,
            steady_reads_per_object_per_pass=round(reads / max(1, observed), 3),
            steady_service_reads_per_object_per_pass=round(service_reads / max(1, observed), 3),
            steady_seconds=round(elapsed, 1),
            quota_429s=sum(1 for e in log if e["status"] == 429),
            operator_peak_rss_mb=round(peak, 1),
            operator_cpu_seconds_per_object=round(cpu / max(1, observed), 4),
            operator_cpu_percent=round(100.0 * cpu / max(elapsed, 1e-9), 1),
            calls_by_method=dict(Counter(str(e["method"]) for e in log)),
        )
        return row

    def run(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        chosen = set(self.sizes.scenarios)

        def done(*new: dict[str, Any]) -> None:
            rows.extend(new)
            self.save(rows)

        if "quota-bound" in chosen:
            done(self.quota_bound("quota-bound", self.sizes.quota_bound, self.sizes.quota_per_minute))
        if "quota-bound-default" in chosen:
            done(self.quota_bound("quota-bound-default", self.sizes.quota_default, GOOGLE_DEFAULT_RUN_WRITES))
        if {"scale-out", "reaction", "steady"} & chosen:
            done(*self.scale_out(self.sizes.scale_out, reaction="reaction" in chosen, steady="steady" in chosen))
        if "size-sweep" in chosen:
            done(*self.size_sweep(rows))
        if "sharded-10k" in chosen:
            done(self.sharded())
        if "failover" in chosen:
            from bench.failover import failover

            done(failover(self))
        return rows


# ---------------------------------------------------------------------------------------------- report

_COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("n", "n", "{}"),
    ("converge_seconds", "converge s", "{:.1f}"),
    ("lower_bound_seconds", "lower s", "{:.1f}"),
    ("ratio", "ratio", "{:.2f}"),
    ("throughput_objects_per_second", "obj/s", "{:.1f}"),
    ("google_calls_per_object_create", "calls/obj", "{:.2f}"),
    ("polls_per_object_create", "polls/obj", "{:.2f}"),
    ("steady_writes", "steady W", "{}"),
    ("steady_writes_all_fields", "W all fields", "{}"),
    ("steady_reads_per_object_per_pass", "R/obj/pass", "{:.2f}"),
    ("reaction_p50_seconds", "react p50 s", "{:.3f}"),
    ("quota_429s", "429s", "{}"),
    ("operator_peak_rss_mb", "RSS MB", "{:.0f}"),
    ("operator_cpu_seconds_per_object", "CPU ms/obj", "{}"),
    ("failover_seconds", "failover s", "{:.1f}"),
    ("violations", "violations", "{}"),
)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    def cell(row: Mapping[str, Any], key: str, fmt: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        if key == "operator_cpu_seconds_per_object":
            return f"{1000 * float(value):.1f}"
        return fmt.format(value)

    header = [title for _, title, _ in _COLUMNS]
    body = [[cell(r, key, fmt) for key, _, fmt in _COLUMNS] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_gb, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run(sizes: Sizes, out: Path, *, plane: ControlPlane | None = None, log_dir: Path | None = None) -> dict[str, Any]:
    """Run the chosen scenarios; write ``out`` (JSON) and return what was written."""
    started = time.time()
    logs = log_dir or out.parent / "logs"

    def write(rows: list[dict[str, Any]], *, complete: bool) -> dict[str, Any]:
        result = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "wall_seconds": round(time.time() - started, 1),
            "complete": complete,
            "machine": machine(),
            "sizes": asdict(sizes),
            "results": rows,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        return result

    with world(logs, plane) as w:
        rows = Bench(w, sizes, save=lambda so_far: write(so_far, complete=False)).run()
    return write(rows, complete=True)
