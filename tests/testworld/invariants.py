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

Multi-tenancy rules (issue 13). ``tenancy`` is the platform's policy as the operator reads it (None: the
test runs without one, and only what the object itself says is judged); the checker evaluates the rules on
its own (globs, ``namespaceSelector.matchLabels``, ``singleTenant``):

- ``public-by-invoker-iam-disabled``: no service owned by an object (and no create or patch the operator sent
  for one) has ``invokerIamDisabled: true`` unless that object declares ``invokerIamDisabled: true`` and a
  rule selecting its namespace has ``allowPublicAccess`` (``singleTenant`` never allows it).
- ``foreign-adoption``: a service owned by a live object was either created by the operator for that object
  (the last successful create in the request log carried its owner label), or adopted with
  ``adoption: IfUnowned`` where allowed: a selecting rule's ``adoptServiceNames`` matches the name (any name
  without a policy), or the operator itself had earlier marked it ``iaprun.dev/abandoned-by: <its label>``.
  A service whose creation the log does not hold is not judged.
- ``runtime-identity-outside-policy``: no service owned by an object runs as the operator's own account
  (``operator_service_account``), nor, with a policy, as an account no rule selecting the namespace allows
  (``serviceAccounts`` globs; the default compute account only with ``allowDefaultServiceAccount``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

OWNER_LABEL = "iaprun-owner"
OWNER_ANNOTATION = "iaprun.dev/owner"
ABANDONED_BY = "iaprun.dev/abandoned-by"
DEFAULT_COMPUTE = re.compile(r"^\d+-compute@developer\.gserviceaccount\.com$")
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
_FOREIGN = datetime.max.replace(tzinfo=UTC)  # the "expiry" of a grant under a condition the operator did not write


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
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


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
            expiry = _parse_time(match.group(1)) if match else _FOREIGN
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
    tenancy: Mapping[str, Any] | None = None,
    operator_service_account: str = "",
) -> list[Violation]:
    """Every violation of the rules in this module's docstring.

    ``abandoned``/``protected`` are emulator keys ``{number}/{region}/{service}``; ``protected`` may map each
    key to the request-log seq after which the operator must not write to it (its owner set it up before).
    ``settled``: the test believes the operator has finished (adds the observedGeneration and stuck-deletion
    rules).
    ``operator_caller`` is how the emulator logs the operator's identity (anonymous: "").
    ``tenancy``/``operator_service_account``: see the multi-tenancy rules above.
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
        additive = iap.get("accessorsPolicy", "Authoritative") == "Additive"
        # Additive leaves a grant someone else made as it is (unconditional, or under their own condition).
        missing = sorted(
            m
            for m, exp in declared.items()
            if m not in held or (exp is not None and held[m] != exp and not (additive and held[m] in (None, _FOREIGN)))
        )
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

    out += _tenancy_violations(
        world, keys, by_label, live_labels, operator_writes, tenancy=tenancy, operator_sa=operator_service_account
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


def _selecting_rules(tenancy: Mapping[str, Any], namespace: str, labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """The rules that select ``namespace``: every selector a rule sets matches; a rule setting none selects
    nothing. ``singleTenant``: one implicit rule allowing everything but public access."""
    if tenancy.get("singleTenant"):
        return [{"adoptServiceNames": ["*"], "serviceAccounts": ["*"], "allowDefaultServiceAccount": True}]
    out = []
    for rule in tenancy.get("rules") or ():
        globs = rule.get("namespaces")
        selector = (rule.get("namespaceSelector") or {}).get("matchLabels")
        if globs is None and selector is None:
            continue
        if globs is not None and not any(fnmatch.fnmatchcase(namespace, g) for g in globs):
            continue
        if selector is not None and any(labels.get(k) != v for k, v in selector.items()):
            continue
        out.append(rule)
    return out


def _globbed(value: str, patterns: Any) -> bool:
    return any(fnmatch.fnmatchcase(value, str(p)) for p in patterns or ())


def _runtime_account(service: Mapping[str, Any]) -> str:
    return str((service.get("template") or {}).get("serviceAccount") or "")


@dataclass(frozen=True)
class _History:
    """What the request log says about each service: its last successful create, and which owner labels the
    operator itself marked it abandoned by."""

    last_create: Mapping[str, Mapping[str, Any]]
    abandoned_by: Mapping[str, set[str]]
    operator_seqs: frozenset[int]

    def created_by_operator_for(self, key: str, label: str) -> bool | None:
        """None: the creation is not in the log."""
        created = self.last_create.get(key)
        if created is None:
            return None
        labels = (created.get("body") or {}).get("labels") or {}
        return int(created.get("seq") or -1) in self.operator_seqs and labels.get(OWNER_LABEL) == label


def _history(world: World, keys: _Keys, operator_writes: Sequence[Mapping[str, Any]]) -> _History:
    operator_seqs = frozenset(int(r.get("seq") or -1) for r in operator_writes)
    last_create: dict[str, Mapping[str, Any]] = {}
    abandoned_by: dict[str, set[str]] = {}
    for r in world.requests:
        key = keys.of_request(r)
        if key is None or int(r.get("status") or 0) >= 300:
            continue
        if r.get("method") == "run.services.create":
            last_create[key] = r
        elif r.get("method") == "run.services.patch" and int(r.get("seq") or -1) in operator_seqs:
            mark = ((r.get("body") or {}).get("annotations") or {}).get(ABANDONED_BY)
            if mark:
                abandoned_by.setdefault(key, set()).add(str(mark))
    return _History(last_create, abandoned_by, operator_seqs)


class _Tenancy:
    """The policy as the checker reads it, independently of the operator's code."""

    def __init__(self, world: World, tenancy: Mapping[str, Any] | None) -> None:
        self.world = world
        self.tenancy = tenancy

    def rules(self, obj: Obj) -> list[Mapping[str, Any]] | None:
        """The rules selecting the object's namespace; None: no policy given."""
        if self.tenancy is None:
            return None
        ns = str((obj.get("metadata") or {}).get("namespace"))
        return _selecting_rules(self.tenancy, ns, self.world.namespace_labels.get(ns, {}))

    def may_be_public(self, obj: Obj | None) -> bool:
        if obj is None or (obj.get("spec") or {}).get("invokerIamDisabled") is not True:
            return False
        rules = self.rules(obj)
        return rules is None or any(r.get("allowPublicAccess") is True for r in rules)

    def may_run_as(self, obj: Obj, account: str) -> bool:
        rules = self.rules(obj)
        return rules is None or any(
            _globbed(account, r.get("serviceAccounts"))
            or (bool(DEFAULT_COMPUTE.match(account)) and r.get("allowDefaultServiceAccount") is True)
            for r in rules
        )

    def may_adopt(self, obj: Obj, service: str, abandoned_by_it: bool) -> bool:
        if (obj.get("spec") or {}).get("adoption") != "IfUnowned":
            return False
        rules = self.rules(obj)
        return abandoned_by_it or rules is None or any(_globbed(service, r.get("adoptServiceNames")) for r in rules)


def _public_writes(
    policy: _Tenancy,
    keys: _Keys,
    by_label: Mapping[str, Obj],
    services: Mapping[str, Mapping[str, Any]],
    operator_writes: Sequence[Mapping[str, Any]],
) -> list[Violation]:
    """The operator never sends invokerIamDisabled: true for an object that may not be public."""
    out = []
    for r in operator_writes:
        key = keys.of_request(r)
        body = r.get("body") or {}
        if key is None or r.get("method") not in ("run.services.create", "run.services.patch"):
            continue
        if body.get("invokerIamDisabled") is not True:
            continue
        label = (body.get("labels") or {}).get(OWNER_LABEL) or ((services.get(key) or {}).get("labels") or {}).get(
            OWNER_LABEL
        )
        if not policy.may_be_public(by_label.get(str(label or ""))):
            out.append(Violation("public-by-invoker-iam-disabled", key, f"{r['method']} set invokerIamDisabled"))
    return out


def _tenancy_violations(
    world: World,
    keys: _Keys,
    by_label: Mapping[str, Obj],
    live_labels: Collection[str],
    operator_writes: Sequence[Mapping[str, Any]],
    *,
    tenancy: Mapping[str, Any] | None,
    operator_sa: str,
) -> list[Violation]:
    services: Mapping[str, Mapping[str, Any]] = world.state.get("services") or {}
    policy = _Tenancy(world, tenancy)
    history = _history(world, keys, operator_writes)
    out = _public_writes(policy, keys, by_label, services, operator_writes)
    for key, service in services.items():
        label = str((service.get("labels") or {}).get(OWNER_LABEL) or "")
        if service.get("deleteTime") or label not in live_labels:
            continue
        obj = by_label[label]
        if service.get("invokerIamDisabled") is True and not policy.may_be_public(obj):
            out.append(Violation("public-by-invoker-iam-disabled", key, f"public without {_ident(obj)} allowing it"))
        account = _runtime_account(service)
        if operator_sa and account.lower() == operator_sa.lower():
            out.append(Violation("runtime-identity-outside-policy", key, f"runs as the operator's own {account}"))
        elif account and not policy.may_run_as(obj, account):
            out.append(Violation("runtime-identity-outside-policy", key, f"runs as {account}; no rule allows it"))
        created = history.created_by_operator_for(key, label)
        abandoned_by_it = label in history.abandoned_by.get(key, set())
        if created is False and not policy.may_adopt(obj, key.rsplit("/", 1)[-1], abandoned_by_it):
            out.append(
                Violation("foreign-adoption", key, f"owned by {_ident(obj)}, which neither made it nor may adopt it")
            )
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
    labels: dict[str, dict[str, str]] = {}
    for ns in core_api.list_namespace().items:
        annotations[ns.metadata.name] = dict(ns.metadata.annotations or {})
        labels[ns.metadata.name] = dict(ns.metadata.labels or {})
    return World(
        objects=items,
        state=admin.state(),
        requests=admin.requests(),
        namespace_annotations=annotations,
        namespace_labels=labels,
    )


def report(violations: Sequence[Violation]) -> str:
    return "\n".join(str(v) for v in violations) or "no violations"
