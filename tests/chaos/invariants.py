"""The invariant checker: what must hold over the cluster and Google, whatever faults happened.

It is deliberately independent of the operator's code (it re-derives owner labels, agent emails and
accessor sets from the raw objects), so a bug in the operator's helpers cannot hide itself here.

Inputs are plain data: the IapRunService objects as the API server returns them, the emulator's state dump
and its request log (``gcpemu.admin.AdminClient.state()`` / ``.requests()``). ``check`` returns the list of
violations; an empty list is the only passing answer. ``collect`` gathers the inputs from a live world.

Rules (ids are what ``Violation.rule`` says):

- ``ready-service-missing`` / ``ready-not-owned`` / ``ready-iap-mismatch`` / ``ready-agent-not-invoker`` /
  ``ready-accessors-mismatch``: every Ready object (for its current generation) has its service, owned by
  it (label ``iaprun-owner`` = sha256 of ``<cluster-id>/<ns>/<name>``, first 16 hex), with ``iapEnabled``
  as declared, the IAP service agent holding ``roles/run.invoker`` unconditionally when IAP is on, and the
  accessor bindings equal to the live declared accessors (Authoritative) or containing them (Additive).
- ``public-invoker``: no service anywhere has ``roles/run.invoker`` for ``allUsers``/``allAuthenticatedUsers``
  unless the object that owns it opted out (``publicInvokerBindings: Report``); ``public-accessor``: no IAP
  policy ever names a public principal; ``public-grant-attempt``: no IAP setIamPolicy the operator sent
  (accepted or not by Google) grants a public principal access.
- ``created-without-iap``: every create the operator sent carried ``iapEnabled: true`` unless the object it
  was made for declares IAP off (no window in which a service is reachable without IAP).
- ``leaked-service``: no service the operator created (or that carries an owner label) is left without the
  object that owns it, unless the test declares it abandoned; ``duplicate-service``: one owner label, one
  service.
- ``foreign-write``: every successful write the operator made targets a service it created or that a live
  object owns (adoption included); and never one of the ``protected`` services the test names.
- ``unexplained-state``: every object has a Ready condition with a reason and a message; when ``settled``,
  also ``unobserved-generation`` (observedGeneration behind) and ``stuck-deletion`` (an object still
  carrying a deletionTimestamp).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

OWNER_LABEL = "iaprun-owner"
OWNER_ANNOTATION = "iaprun.dev/owner"
INVOKER = "roles/run.invoker"
ACCESSOR = "roles/iap.httpsResourceAccessor"
PUBLIC = frozenset({"allusers", "allauthenticatedusers"})
DEFAULT_PROJECT_ANNOTATION = "iaprun.dev/default-project"
WRITE_METHODS = frozenset(
    {
        "run.services.create",
        "run.services.patch",
        "run.services.delete",
        "run.services.setIamPolicy",
        "iap.setIamPolicy",
    }
)
_RUN_PATH = re.compile(r"/v2/projects/([^/]+)/locations/([^/]+)/services(?:/([^/:?]+))?")
_IAP_PATH = re.compile(r"/v1/projects/([^/]+)/iap_web/cloud_run-([^/]+)/services/([^/:?]+)")
_EXPIRY = re.compile(r'^request\.time\s*<\s*timestamp\("([^"]+)"\)$')

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.subject}: {self.detail}"


@dataclass(frozen=True)
class World:
    """One consistent-enough snapshot of everything the rules look at."""

    objects: Sequence[Obj]
    state: Mapping[str, Any]
    requests: Sequence[Mapping[str, Any]]
    namespace_annotations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def owner_label(cluster_id: str, namespace: str, name: str) -> str:
    return hashlib.sha256(f"{cluster_id}/{namespace}/{name}".encode()).hexdigest()[:16]


def agent_member(number: str) -> str:
    return f"serviceAccount:service-{number}@gcp-sa-iap.iam.gserviceaccount.com"


def _norm(member: str) -> str:
    kind, sep, rest = member.partition(":")
    if sep and kind in {"user", "group", "serviceAccount", "domain"}:
        return f"{kind}:{rest.lower()}"
    return member


def _is_public(member: str) -> bool:
    return member.strip().lower() in PUBLIC


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _condition(obj: Obj, kind: str) -> Mapping[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return {}


def _ident(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


@dataclass(frozen=True)
class _Target:
    """Where an object's service lives, as the object (status first, then spec) says."""

    project: str
    region: str
    service: str


def _target(obj: Obj, annotations: Mapping[str, str], default_project: str | None) -> _Target | None:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    project = (
        status.get("projectID")
        or spec.get("projectID")
        or annotations.get(DEFAULT_PROJECT_ANNOTATION)
        or default_project
    )
    region = status.get("region") or spec.get("region")
    service = status.get("serviceName") or spec.get("serviceName") or meta.get("name")
    if not (project and region and service):
        return None
    return _Target(str(project), str(region), str(service))


def _members(policy: Mapping[str, Any] | None, role: str, *, unconditional: bool = False) -> set[str]:
    out: set[str] = set()
    for b in (policy or {}).get("bindings") or ():
        if b.get("role") != role:
            continue
        if unconditional and b.get("condition"):
            continue
        out.update(str(m) for m in b.get("members") or ())
    return out


def _accessor_grants(policy: Mapping[str, Any] | None) -> dict[str, datetime | None]:
    """member -> expiry (None: unconditional) for the accessor role; foreign conditions kept as 'max'."""
    held: dict[str, datetime | None] = {}
    for b in (policy or {}).get("bindings") or ():
        if b.get("role") != ACCESSOR:
            continue
        cond = b.get("condition") or {}
        expiry: datetime | None = None
        if cond:
            match = _EXPIRY.match(str(cond.get("expression", "")).strip())
            expiry = _parse_time(match.group(1)) if match else datetime.max.replace(tzinfo=UTC)
        for m in b.get("members") or ():
            held[_norm(str(m))] = expiry
    return held


class _Keys:
    """Maps project IDs/numbers in API paths to the emulator's ``{number}/{region}/{service}`` keys."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self.numbers: dict[str, str] = {str(k): str(v) for k, v in (state.get("projects") or {}).items()}
        self.known_numbers = set(self.numbers.values())

    def number(self, project: str) -> str:
        return project if project in self.known_numbers else self.numbers.get(project, project)

    def key(self, project: str, region: str, service: str) -> str:
        return f"{self.number(project)}/{region}/{service}"

    def of_request(self, request: Mapping[str, Any]) -> str | None:
        path = str(request.get("path") or "")
        if m := _IAP_PATH.search(path):
            return self.key(m.group(1), m.group(2), m.group(3))
        if m := _RUN_PATH.search(path):
            service = m.group(3) or str((request.get("query") or {}).get("serviceId") or "")
            return self.key(m.group(1), m.group(2), service) if service else None
        return None


def check(
    world: World,
    *,
    cluster_id: str,
    default_project: str | None = None,
    abandoned: Collection[str] = (),
    protected: Collection[str] | Mapping[str, int] = (),
    settled: bool = True,
    operator_caller: str = "",
    now: datetime | None = None,
) -> list[Violation]:
    """Every violation of the rules in this module's docstring.

    ``abandoned``/``protected`` are emulator keys ``{number}/{region}/{service}``; ``protected`` may map each
    key to the request-log seq after which the operator must not write to it (its owner set it up before).
    ``settled``: the test believes the operator has finished (adds the observedGeneration and stuck-deletion
    rules).
    ``operator_caller`` is how the emulator logs the operator's identity (anonymous: "").
    """
    now = now or datetime.now(UTC)
    protected_since: Mapping[str, int] = protected if isinstance(protected, Mapping) else dict.fromkeys(protected, 0)
    state = world.state
    keys = _Keys(state)
    services: Mapping[str, Mapping[str, Any]] = state.get("services") or {}
    run_policies: Mapping[str, Mapping[str, Any]] = state.get("run_policies") or {}
    iap_policies: Mapping[str, Mapping[str, Any]] = state.get("iap_policies") or {}
    out: list[Violation] = []

    live = [o for o in world.objects if not (o.get("metadata") or {}).get("deletionTimestamp")]
    by_label: dict[str, Obj] = {}
    for obj in world.objects:
        meta = obj.get("metadata") or {}
        by_label[owner_label(cluster_id, str(meta.get("namespace")), str(meta.get("name")))] = obj
    live_labels = {
        owner_label(cluster_id, str((o.get("metadata") or {}).get("namespace")), str((o.get("metadata") or {})["name"]))
        for o in live
    }

    # --- every object says why it is where it is --------------------------------------------------------
    for obj in world.objects:
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        ready = _condition(obj, "Ready")
        if meta.get("deletionTimestamp"):
            if settled:
                out.append(Violation("stuck-deletion", _ident(obj), "still being deleted after the run settled"))
            continue
        if not ready:
            out.append(Violation("unexplained-state", _ident(obj), "no Ready condition"))
            continue
        if ready.get("status") != "True" and not (ready.get("reason") and ready.get("message")):
            out.append(Violation("unexplained-state", _ident(obj), f"Ready={ready.get('status')} without reason"))
        if settled and status.get("observedGeneration") != meta.get("generation"):
            out.append(
                Violation(
                    "unobserved-generation",
                    _ident(obj),
                    f"observedGeneration {status.get('observedGeneration')} != generation {meta.get('generation')}",
                )
            )

    # --- Ready objects: their service is there, theirs, protected and accessible as declared ---------------
    for obj in live:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready = _condition(obj, "Ready")
        if ready.get("status") != "True":
            continue
        current = status.get("observedGeneration") == meta.get("generation")
        annotations = world.namespace_annotations.get(str(meta.get("namespace")), {})
        target = _target(obj, annotations, default_project)
        if target is None:
            out.append(Violation("ready-service-missing", _ident(obj), "Ready but no project/region/service known"))
            continue
        key = keys.key(target.project, target.region, target.service)
        service = services.get(key)
        if service is None:
            out.append(Violation("ready-service-missing", _ident(obj), f"Ready but service {key} does not exist"))
            continue
        label = owner_label(cluster_id, str(meta.get("namespace")), str(meta.get("name")))
        if (service.get("labels") or {}).get(OWNER_LABEL) != label:
            out.append(
                Violation(
                    "ready-not-owned",
                    _ident(obj),
                    f"{key} carries owner {(service.get('labels') or {}).get(OWNER_LABEL)!r}, want {label!r}",
                )
            )
        if not current:
            continue
        iap = spec.get("iap") or {}
        enabled = bool(iap.get("enabled", True))
        if bool(service.get("iapEnabled")) != enabled:
            out.append(
                Violation("ready-iap-mismatch", _ident(obj), f"iapEnabled={service.get('iapEnabled')}, want {enabled}")
            )
        number = keys.number(target.project)
        if enabled and agent_member(number) not in _members(run_policies.get(key), INVOKER, unconditional=True):
            out.append(Violation("ready-agent-not-invoker", _ident(obj), f"{agent_member(number)} lacks run.invoker"))
        declared: dict[str, datetime | None] = {}
        for accessor in iap.get("accessors") or ():
            expires = _parse_time(str(accessor["expires"])) if accessor.get("expires") else None
            if expires is None or expires > now:
                declared[_norm(str(accessor["member"]))] = expires
        held = _accessor_grants(iap_policies.get(key))
        missing = sorted(m for m, exp in declared.items() if m not in held or (exp is not None and held[m] != exp))
        if missing:
            out.append(Violation("ready-accessors-mismatch", _ident(obj), f"declared but not granted: {missing}"))
        if iap.get("accessorsPolicy", "Authoritative") == "Authoritative":
            extra = sorted(m for m in held if m not in declared)
            if extra:
                out.append(Violation("ready-accessors-mismatch", _ident(obj), f"granted but not declared: {extra}"))

    # --- public exposure, anywhere ---------------------------------------------------------------------------
    for key, policy in run_policies.items():
        public = sorted(m for m in _members(policy, INVOKER) if _is_public(m))
        if not public:
            continue
        owner = by_label.get(str(((services.get(key) or {}).get("labels") or {}).get(OWNER_LABEL, "")))
        opted_out = (
            owner is not None and ((owner.get("spec") or {}).get("iap") or {}).get("publicInvokerBindings") == "Report"
        )
        if not opted_out:
            out.append(Violation("public-invoker", key, f"run.invoker held by {public}"))
    for key, policy in iap_policies.items():
        public = sorted(m for m in _members(policy, ACCESSOR) if _is_public(m))
        if public:
            out.append(Violation("public-accessor", key, f"IAP access granted to {public}"))

    # --- the operator's own requests -----------------------------------------------------------------------
    operator_writes = [
        r
        for r in world.requests
        if r.get("method") in WRITE_METHODS
        and r.get("caller", "") == operator_caller
        and r.get("tag", "") != "out-of-band"
        and int(r.get("status") or 0) < 300
    ]
    for r in world.requests:
        if r.get("caller", "") != operator_caller or r.get("tag", "") == "out-of-band":
            continue
        if r.get("method") != "iap.setIamPolicy":
            continue
        asked = sorted(m for m in _members((r.get("body") or {}).get("policy"), ACCESSOR) if _is_public(m))
        if asked:
            out.append(Violation("public-grant-attempt", keys.of_request(r) or "?", f"IAP access asked for {asked}"))
    created: set[str] = set()
    for r in operator_writes:
        written = keys.of_request(r)
        if written is None:
            continue
        key = written
        if r["method"] == "run.services.create":
            created.add(key)
            body = r.get("body") or {}
            if body.get("iapEnabled") is not True:
                owner = by_label.get(str((body.get("labels") or {}).get(OWNER_LABEL, "")))
                # Judged while the object it was made for exists (its spec says whether IAP was wanted).
                wants_on = (
                    owner is not None and ((owner.get("spec") or {}).get("iap") or {}).get("enabled") is not False
                )
                if wants_on:
                    out.append(Violation("created-without-iap", key, "create sent without iapEnabled: true"))
            continue
        if key in protected and int(r.get("seq") or 0) > protected_since.get(key, 0):
            out.append(Violation("foreign-write", key, f"{r['method']} on a protected service (seq {r.get('seq')})"))
            continue
        owned_now = str(((services.get(key) or {}).get("labels") or {}).get(OWNER_LABEL, "")) in live_labels
        if key not in created and not owned_now and key not in abandoned:
            out.append(
                Violation("foreign-write", key, f"{r['method']} on a service the operator neither created nor owns")
            )

    # --- nothing leaked, nothing twice -----------------------------------------------------------------------
    seen: dict[str, str] = {}
    for key, service in services.items():
        if service.get("deleteTime"):
            continue  # on its way out
        label = str((service.get("labels") or {}).get(OWNER_LABEL) or "")
        if label:
            if label in seen:
                out.append(Violation("duplicate-service", key, f"owner {label} also owns {seen[label]}"))
            seen[label] = key
            if label not in live_labels and key not in abandoned:
                out.append(Violation("leaked-service", key, f"owner label {label} matches no live object"))
        elif key in created and key not in abandoned:
            out.append(Violation("leaked-service", key, "created by the operator, now unowned and not abandoned"))
    return out


class _Admin(Protocol):
    def state(self) -> dict[str, Any]: ...

    def requests(
        self,
        method: str | None = None,
        *,
        since: int = 0,
        status: int | None = None,
        tag: str | None = None,
        include_tagged: bool = True,
    ) -> list[dict[str, Any]]: ...


def collect(custom_api: Any, core_api: Any, admin: _Admin, namespaces: Iterable[str] | None = None) -> World:
    """Read the world: IapRunService objects (all, or in ``namespaces``), namespace annotations, and the
    emulator's state and request log. ``custom_api``/``core_api`` are kubernetes client APIs."""
    if namespaces is None:
        items = custom_api.list_cluster_custom_object("iaprun.dev", "v1alpha1", "iaprunservices")["items"]
    else:
        items = []
        for ns in namespaces:
            items += custom_api.list_namespaced_custom_object("iaprun.dev", "v1alpha1", ns, "iaprunservices")["items"]
    annotations: dict[str, dict[str, str]] = {}
    for ns in core_api.list_namespace().items:
        annotations[ns.metadata.name] = dict(ns.metadata.annotations or {})
    return World(objects=items, state=admin.state(), requests=admin.requests(), namespace_annotations=annotations)


def report(violations: Sequence[Violation]) -> str:
    return "\n".join(str(v) for v in violations) or "no violations"
