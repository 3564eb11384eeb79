"""Hostile input against the real API server and the operator.

Property-based (hypothesis): arbitrary manifests, mostly near-valid with one or more hostile values. Each
one is either rejected at admission with a message naming what is wrong, or reconciled (Ready, or a
condition saying why not); those the operator itself rejects (Stalled InvalidSpec/PolicyDenied) cause
zero Google calls; the operator never crashes and the invariants hold at the end.

Hand-written attacks: public accessors in any spelling, another tenant's service, a project outside the
namespace's policy, adopting a service another object owns, deletion with Abandon, a huge accessor list,
unicode lookalikes in members.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.conftest import FULL
from chaos.world import IMAGE, REGION, ChaosWorld, Figures, condition, is_ready, stalled_reason
from gcpemu.admin import AdminClient
from integration.harness import open_rule, wait_for

pytestmark = pytest.mark.integration
FigureMaker = Callable[[str, int], Figures]

# Tenants a and b: their own project, region and accessor domain; everything else a tenant might use stays open,
# so what is refused here is what these attacks aim at.
TENANT = {
    "serviceNames": ["*"],
    "serviceAccounts": ["*"],
    "allowDefaultServiceAccount": True,
    "secretProjects": ["*"],
    "images": ["*"],
    "allowIapDisabled": True,
    "allowPublicInvokerBindings": True,
}
TENANCY = {
    "rules": [
        open_rule("chaos", {"iaprun.test/owned": "true"}),
        {
            "name": "tenant-a",
            "namespaceSelector": {"matchLabels": {"chaos.iaprun.dev/tenant": "a"}},
            "projects": ["test-project"],
            "regions": [REGION],
            "accessorDomains": ["example.com"],
            **TENANT,
        },
        {
            "name": "tenant-b",
            "namespaceSelector": {"matchLabels": {"chaos.iaprun.dev/tenant": "b"}},
            "projects": ["other-project"],
            "regions": ["*"],
            "accessorDomains": ["example.org"],
            **TENANT,
        },
    ]
}
OPERATOR_REJECTS = {"InvalidSpec", "PolicyDenied"}
PUBLIC_SPELLINGS = [
    "allUsers",
    "allusers",
    "ALLUSERS",
    "AllUsers",
    "allAuthenticatedUsers",
    "allauthenticatedusers",
    "ALLAUTHENTICATEDUSERS",
    " allUsers",
    "allUsers ",
    "allUsers\n",
    "user:allUsers",
    "group:allAuthenticatedUsers",
    "principalSet://goog/public:all",
    "\uff21\uff4c\uff4c\uff35\uff53\uff45\uff52\uff53",  # fullwidth AllUsers
    "\u0430llUsers",  # Cyrillic a
    "allUsers\u200b",  # zero-width space
]
LOOKALIKES = [
    "user:\u0430lice@example.com",  # Cyrillic a in the local part
    "user:alice@ex\u0430mple.com",  # Cyrillic a in the domain
    "user:alice@example.com\u200b",
    "user:alice@\uff45xample.com",  # fullwidth e
    "group:devs@example.com.evil.org",
    "user:alice@examp1e.com",  # ASCII lookalike: a different domain
    "domain:example.com.",
    "user:ALICE@EXAMPLE.COM",
]


def started(world: ChaosWorld, **extra: str) -> None:
    world.start_operator(IAPRUN_TENANCY_POLICY=json.dumps(TENANCY), **extra)


def body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": name},
        "spec": {"region": REGION, "template": {"containers": [{"image": IMAGE}]}, **spec},
    }


def create(world: ChaosWorld, namespace: str, manifest: dict[str, Any]) -> str | None:
    """Create through the real API server; the admission error message, or None when accepted."""
    from kubernetes.client.exceptions import ApiException

    try:
        world.custom.create_namespaced_custom_object("iaprun.dev", "v1alpha1", namespace, "iaprunservices", manifest)
    except ApiException as error:
        rejected = error
    else:
        return None
    assert rejected.status in (400, 422), f"admission answered {rejected.status}: {rejected.body}"
    message = str(json.loads(rejected.body).get("message") or "")
    assert message, "rejected without a message"
    return message


def settled(obj: dict[str, Any]) -> bool:
    """The operator has said something about this generation: Ready, Stalled, or retrying with a reason."""
    meta = obj.get("metadata") or {}
    ready = condition(obj, "Ready")
    if ready.get("observedGeneration") != meta.get("generation"):
        return False
    if ready.get("status") == "True" or stalled_reason(obj):
        return True
    retrying = condition(obj, "Reconciling")
    return bool(retrying.get("status") == "True" and ready.get("reason") not in ("Creating", "Updating"))


def outcome(world: ChaosWorld, namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
    objs = world.wait_objects(
        namespace, lambda o: name in o and settled(o[name]), timeout=timeout, what=f"{name} to settle"
    )
    return objs[name]


def calls_about(emu: AdminClient, since: int, *words: str) -> list[dict[str, Any]]:
    found = []
    for r in emu.requests(since=since):
        text = r["path"] + json.dumps(r.get("query") or {})
        if any(w and w in text for w in words):
            found.append(r)
    return found


# ------------------------------------------------------------------------------------------- property


hostile_member = st.one_of(
    st.sampled_from(PUBLIC_SPELLINGS + LOOKALIKES),
    st.builds(
        lambda kind, local, domain: f"{kind}:{local}@{domain}",
        st.sampled_from(["user", "group", "serviceAccount", "User", "USER"]),
        st.from_regex(r"[A-Za-z0-9._%+'-]{1,12}", fullmatch=True),
        st.sampled_from(["example.com", "example.org", "evil.example.net", "EXAMPLE.COM", "example.com.evil.org"]),
    ),
    st.sampled_from(["domain:example.com", "domain:example.org", "principal://iam.googleapis.com/x", "deleted:x"]),
    st.text(max_size=40),
)
hostile_expiry = st.one_of(
    st.sampled_from(["2099-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "tomorrow", "", "2099-13-01T00:00:00Z"]),
    st.text(max_size=20),
)
# One hostile value per path; a manifest is a valid base with one to three of them applied, so both
# admission and the operator get to judge (a fully random manifest is only ever an admission test).
MUTATIONS: dict[str, st.SearchStrategy[Any]] = {
    "region": st.one_of(
        st.sampled_from(["us-central1", "europe-west1", "", "ASIA-NORTHEAST1", "mars-north1", "../x"]),
        st.text(max_size=20),
    ),
    "projectID": st.sampled_from(
        ["test-project", "other-project", "demo-project", "unknown-project", "Test-Project", "", "p" * 40, "../x"]
    ),
    "serviceName": st.one_of(
        st.from_regex(r"[a-z][-a-z0-9]{0,20}[a-z0-9]", fullmatch=True),
        st.sampled_from(["", "UPPER", "-x", "a" * 64, "ok--", "victim"]),
        st.text(max_size=20),
    ),
    "image": st.one_of(st.sampled_from(["", "nginx", IMAGE + ":does-not-exist", "a" * 300]), st.text(max_size=30)),
    "containers": st.sampled_from([[], [{"image": IMAGE}, {"image": IMAGE}], [{}], None]),
    "accessor": hostile_member,
    "accessors": st.lists(st.fixed_dictionaries({"member": hostile_member}), max_size=6),
    "expires": hostile_expiry,
    "enabled": st.one_of(st.booleans(), st.sampled_from(["false", 0, None])),
    "accessorsPolicy": st.sampled_from(["Authoritative", "Additive", "additive", "", "Everyone"]),
    "publicInvokerBindings": st.sampled_from(["Remove", "Report", "Allow", ""]),
    "deletionPolicy": st.sampled_from(["Delete", "Abandon", "Orphan", ""]),
    "adoption": st.sampled_from(["Never", "IfUnowned", "Always", ""]),
    "labels": st.dictionaries(
        st.sampled_from(["team", "iaprun-owner", "iaprun-x", "goog-managed", "UPPER", "a" * 70, ""]),
        st.sampled_from(["a", "", "UPPER", "x" * 70, "ok-1"]),
        max_size=3,
    ),
    "ingress": st.sampled_from(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "All", "Public", ""]),
    "launchStage": st.sampled_from(["GA", "BETA", "ALPHA", "DEPRECATED", ""]),
}


def names_service(objects: Mapping[str, Mapping[str, Any]], service: str) -> bool:
    """Whether any of these objects names Cloud Run service ``service`` (its serviceName, else its name)."""
    return any(str((o.get("spec") or {}).get("serviceName") or name) == service for name, o in objects.items())


def mutated(changes: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "region": REGION,
        "template": {"containers": [{"image": IMAGE}]},
        "iap": {"accessors": [{"member": "user:alice@example.com"}]},
    }
    iap = spec["iap"]
    # Whole-list replacements go last: an image, expiry or extra accessor applies to the base lists, and a
    # hostile list then replaces them (it may be None or empty, which nothing could index into afterwards).
    for path, value in sorted(changes.items(), key=lambda item: item[0] in ("containers", "accessors")):
        if path == "image":
            spec["template"]["containers"][0]["image"] = value
        elif path == "containers":
            spec["template"]["containers"] = value
        elif path == "accessor":
            iap["accessors"].append({"member": value})
        elif path == "accessors":
            iap["accessors"] = value
        elif path == "expires":
            iap["accessors"][0]["expires"] = value
        elif path in ("enabled", "accessorsPolicy", "publicInvokerBindings"):
            iap[path] = value
        else:
            spec[path] = value
    return spec


hostile_specs = (
    st.dictionaries(st.sampled_from(sorted(MUTATIONS)), st.none(), min_size=1, max_size=3)
    .flatmap(lambda keys: st.fixed_dictionaries({k: MUTATIONS[k] for k in keys}))
    .map(mutated)
)


def test_property_hostile_manifests_are_rejected_or_reconciled(
    world: ChaosWorld, figures: FigureMaker, kube_admin: Any
) -> None:
    """Generated manifests: admission rejects with a message, or the operator reconciles them or says why;
    what the operator refuses costs zero Google calls; it never crashes; invariants hold at the end."""
    examples = 100 if FULL else 20
    fig = figures("hostile manifests (hypothesis)", examples)
    open_ns = world.namespaces[0]
    tenant_ns = world.namespace(f"{open_ns[:40]}-a", labels={"chaos.iaprun.dev/tenant": "a"}, replace_labels=True)
    started(world)
    tally: dict[str, int] = {}
    counter = iter(range(10_000))
    abandoned: set[str] = set()
    accepted: list[tuple[str, str, dict[str, Any], str]] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=hostile_specs, tenant=st.booleans())
    def check(spec: dict[str, Any], tenant: bool) -> None:
        name = f"h-{next(counter):04d}"
        namespace = tenant_ns if tenant else open_ns
        manifest = {"apiVersion": "iaprun.dev/v1alpha1", "kind": "IapRunService", "metadata": {"name": name}}
        manifest["spec"] = spec
        # Calls are attributed to this object by service name: first let an earlier example's object that
        # names the same service finish its deletion (its finalizer's calls would look like this object's).
        service = str(spec.get("serviceName") or name)
        world.wait_objects(
            open_ns, lambda objs: not names_service(objs, service), timeout=120, what=f"deletions naming {service}"
        )
        world.wait_objects(
            tenant_ns, lambda objs: not names_service(objs, service), timeout=120, what=f"deletions naming {service}"
        )
        since = world.emu.last_seq()
        rejected = create(world, namespace, manifest)
        if rejected is not None:
            assert "spec" in rejected or "metadata" in rejected or "IapRunService" in rejected, rejected
            tally["rejected at admission"] = tally.get("rejected at admission", 0) + 1
            return
        obj = outcome(world, namespace, name)
        reason = stalled_reason(obj)
        if reason in OPERATOR_REJECTS:
            assert calls_about(world.emu, since, f"/services/{service}", f'"{service}"') == [], (
                f"{reason} but Google was called for {service}"
            )
            assert condition(obj, "Stalled").get("message")
        accepted.append((namespace, name, spec, str(condition(obj, "Ready").get("reason"))))
        if spec.get("deletionPolicy") == "Abandon":
            abandoned.add(world.key(str(spec.get("projectID") or "demo-project"), str(spec.get("serviceName") or name)))
        key = "Ready" if is_ready(obj) else (reason or f"retrying: {condition(obj, 'Ready').get('reason')}")
        tally[key] = tally.get(key, 0) + 1
        world.delete_all(namespace, [name])
        world.assert_operator_alive()

    check()
    for ns in (open_ns, tenant_ns):
        world.wait_objects(ns, lambda objs: not objs, timeout=120, what="hostile objects deleted")
    found = world.violations(abandoned=abandoned)
    if found:
        fig.violations += len(found)
        services = {v.subject.rsplit("/", 1)[-1] for v in found}
        history = [
            f"  {ns}/{name} -> {reason}: {json.dumps(spec)}"
            for ns, name, spec, reason in accepted
            if spec.get("serviceName") in services or name in services
        ]
        pytest.fail("invariant violations:\n" + "\n".join(map(str, found)) + "\nexamples:\n" + "\n".join(history))
    world.assert_operator_alive()
    assert world.operator_errors() == []
    fig.faults = examples
    fig.notes = ", ".join(f"{k}: {v}" for k, v in sorted(tally.items()))
    print(f"hostile manifests: {fig.notes}")


# ------------------------------------------------------------------------------------------- attacks


def test_hand_written_attacks(world: ChaosWorld, figures: FigureMaker) -> None:
    """Each attack is refused (at admission or by the operator, before any Google call) or contained."""
    fig = figures("hand-written attacks", 0)
    open_ns = world.namespaces[0]
    ns_a = world.namespace(f"{open_ns[:40]}-a", labels={"chaos.iaprun.dev/tenant": "a"}, replace_labels=True)
    ns_b = world.namespace(f"{open_ns[:40]}-b", labels={"chaos.iaprun.dev/tenant": "b"}, replace_labels=True)
    started(world)
    emu = world.emu
    count = 0

    def refused(namespace: str, name: str, manifest: dict[str, Any], reasons: set[str]) -> str:
        """Rejected at admission, or Stalled with one of ``reasons`` and no Google call about it."""
        nonlocal count
        count += 1
        since = emu.last_seq()
        message = create(world, namespace, manifest)
        if message is not None:
            return f"admission: {message}"
        obj = outcome(world, namespace, name)
        reason = stalled_reason(obj)
        assert reason in reasons, f"{name}: {reason or condition(obj, 'Ready')}"
        if reason in OPERATOR_REJECTS:
            service = str(manifest["spec"].get("serviceName") or name)
            assert calls_about(emu, since, f"/services/{service}", f'"{service}"') == []
        return f"{reason}: {condition(obj, 'Stalled').get('message')}"

    # 1. public accessors, any spelling, in an open namespace and in a tenant's
    for i, member in enumerate(PUBLIC_SPELLINGS):
        for ns in (open_ns, ns_a):
            name = f"public-{i}"
            refused(ns, name, body(name, iap={"accessors": [{"member": member}]}), {"InvalidSpec", "PolicyDenied"})

    # 2. unicode lookalikes and ASCII lookalike domains, in tenant a (example.com only)
    for i, member in enumerate(LOOKALIKES):
        name = f"lookalike-{i}"
        manifest = body(name, projectID="test-project", iap={"accessors": [{"member": member}]})
        if member == "user:ALICE@EXAMPLE.COM":
            assert create(world, ns_a, manifest) is None
            world.wait_ready(ns_a, [name], timeout=60)  # same principal as alice@example.com: fine
            count += 1
            continue
        refused(ns_a, name, manifest, {"InvalidSpec", "PolicyDenied"})

    # 3. a project outside the namespace's policy: in the spec, and through the namespace default
    refused(ns_a, "other-proj", body("other-proj", projectID="other-project"), {"PolicyDenied"})
    refused(ns_a, "default-proj", body("default-proj"), {"PolicyDenied"})  # operator default: demo-project
    world.core.patch_namespace(ns_a, {"metadata": {"annotations": {"iaprun.dev/default-project": "other-project"}}})
    refused(ns_a, "annotated-proj", body("annotated-proj"), {"PolicyDenied"})

    # 4. another tenant's service: tenant b owns "shared" in other-project; tenant a names it
    shared_body = body("shared", projectID="other-project", iap={"accessors": [{"member": "user:bob@example.org"}]})
    assert create(world, ns_b, shared_body) is None
    world.wait_ready(ns_b, ["shared"], timeout=60)
    shared = world.key("other-project", "shared")
    protected = {shared: emu.last_seq()}
    refused(ns_a, "steal", body("steal", projectID="other-project", serviceName="shared"), {"PolicyDenied"})

    # 5. adopting a service another object owns (same project, open namespace): conflict, untouched
    assert create(world, open_ns, body("victim", projectID="test-project")) is None
    world.wait_ready(open_ns, ["victim"], timeout=60)
    victim = world.key("test-project", "victim")
    protected[victim] = emu.last_seq()
    for i, adoption in enumerate(("Never", "IfUnowned")):
        name = f"adopter-{i}"
        manifest = body(name, projectID="test-project", serviceName="victim", adoption=adoption)
        manifest["spec"]["iap"] = {"accessors": [{"member": "user:mallory@example.com"}], "enabled": False}
        refused(open_ns, name, manifest, {"ManagementConflict"})
        # ... and deleting the would-be adopter must not delete the victim
        world.delete_all(open_ns, [name])
        world.wait_gone(open_ns, [name], timeout=60)
    assert emu.service("test-project", REGION, "victim") is not None

    # 6. a huge accessor list: beyond the CRD's 200 is refused at admission; 200 are reconciled
    huge = [{"member": f"user:u{i}@example.com"} for i in range(201)]
    assert create(world, open_ns, body("huge", iap={"accessors": huge})) is not None
    count += 1
    assert create(world, open_ns, body("big", iap={"accessors": huge[:200]})) is None
    world.wait_ready(open_ns, ["big"], timeout=60)
    count += 1

    # 7. deletion with Abandon: the service stays protected with its access; nothing deleted
    manifest = body("keep", deletionPolicy="Abandon", iap={"accessors": [{"member": "user:alice@example.com"}]})
    assert create(world, open_ns, manifest) is None
    world.wait_ready(open_ns, ["keep"], timeout=60)
    since = emu.last_seq()
    world.delete_all(open_ns, ["keep"])
    world.wait_gone(open_ns, ["keep"], timeout=60)
    kept = emu.service("demo-project", REGION, "keep")
    assert kept is not None
    assert kept["iapEnabled"] is True
    assert "iaprun-owner" not in (kept.get("labels") or {})
    assert world.operator_requests("run.services.delete", since=since) == []
    policy = emu.state()["iap_policies"][world.key("demo-project", "keep")]
    assert any("user:alice@example.com" in b["members"] for b in policy["bindings"])
    count += 1

    fig.objects = count
    world.assert_invariants(fig, protected=protected, abandoned={world.key("demo-project", "keep")})
    world.assert_operator_alive()
    assert world.operator_errors() == []
    fig.notes = "all refused at admission or Stalled before any Google call, or contained"


def test_public_invoker_binding_added_out_of_band_is_removed(world: ChaosWorld, figures: FigureMaker) -> None:
    """Someone grants allUsers/allAuthenticatedUsers run.invoker on protected services while the operator
    works: the drift pass removes it (unless the object opted for Report), the invariants hold."""
    fig = figures("public invoker added out of band", 4)
    ns = world.namespaces[0]
    started(world, IAPRUN_DRIFT_INTERVAL_SECONDS="2")
    manifests = [body(f"pub-{i}") for i in range(3)]
    report = body("pub-report")
    report["spec"]["iap"] = {"publicInvokerBindings": "Report"}
    manifests.append(report)
    world.apply(ns, manifests)
    world.wait_ready(ns, [m["metadata"]["name"] for m in manifests], timeout=60)
    for m in manifests:
        for member in ("allUsers", "allAuthenticatedUsers"):
            world.emu.add_binding("demo-project", REGION, m["metadata"]["name"], "roles/run.invoker", member)
            fig.faults += 1

    def cleaned() -> bool:
        return not [v for v in world.violations(settled=False) if v.rule == "public-invoker"]

    # Google has no event stream: poll the emulator's state (bounded).
    wait_for(cleaned, timeout=60, interval=0.2, what="public invoker bindings removed")
    world.assert_invariants(fig)
    kept = world.emu.state()["run_policies"][world.key("demo-project", "pub-report")]
    assert any("allUsers" in b["members"] for b in kept["bindings"]), "Report mode must keep (and report) it"
