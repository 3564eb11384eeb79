"""The chart's ValidatingAdmissionPolicy on the real API server, attacked by tenants.

The chart is rendered with the hardened multi-tenant example (charts/iap-run-operator/examples/
values-multi-tenant.yaml) and its params ConfigMap, policy, binding and aggregated tenant roles are applied to
the session's control plane. Each tenant is a namespace ServiceAccount bound (RoleBinding) to the built-in
``edit`` ClusterRole, which the chart's roles aggregate into; every request below is sent as that account with
``kubectl --as``. For every class of issue #13 the admission policy can see, a hostile manifest is refused and
the refusal is exactly the operator's message (TENANCY-SCHEMA.md's words); allowed manifests are admitted.

The policies are cluster-scoped: each binding here judges only namespaces labelled with this module's run id,
so other tests in the session never meet them. Nothing is mocked: kube-apiserver evaluates the CEL itself.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from chart.conftest import CHART, Manifest
from iaprun_operator.core import references, tenancy
from iaprun_operator.core.model import parse_spec
from integration.harness import REPO, wait_for
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration

EXAMPLE = CHART / "examples" / "values-multi-tenant.yaml"
OPERATOR_SA = "iap-run-operator@platform-ops.iam.gserviceaccount.com"
TENANT = "tenant"
ADMISSION_LABEL = "iaprun.test/admission"
Helm = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Policy:
    """One rendered release's admission objects, applied; ``label`` selects the namespaces its binding judges."""

    release: str
    label: str
    objects: list[Manifest]

    @property
    def params(self) -> dict[str, str]:
        (config_map,) = [o for o in self.objects if o["kind"] == "ConfigMap"]
        data: dict[str, str] = config_map["data"]
        return data


@dataclass
class World:
    kubectl: Runner
    namespaces: dict[str, str]  # role in the test -> namespace name ("ops": the release's, with the params)
    policies: list[Policy]
    layout: dict[str, tuple[Policy, dict[str, str], dict[str, str]]]  # role -> policy, labels, annotations

    def ns(self, role: str) -> str:
        return self.namespaces[role]

    def as_tenant(self, role: str, *args: str, body: Manifest | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl in namespace ``role`` as that namespace's tenant ServiceAccount."""
        namespace = self.ns(role)
        user = f"system:serviceaccount:{namespace}:{TENANT}"
        return self.kubectl(
            *args, "-n", namespace, f"--as={user}", input=json.dumps(body) if body else None, check=False
        )

    def apply(self, role: str, body: Manifest) -> subprocess.CompletedProcess[str]:
        return self.as_tenant(role, "apply", "-f", "-", body=body)

    def operator_says(self, role: str, body: Manifest) -> str | None:
        """The operator's own check of ``body`` in namespace ``role``, under the policy file of the same release
        (the project as admission sees it: spec, else the namespace's annotation)."""
        policy, labels, annotations = self.layout[role]
        spec = parse_spec(body["spec"], name=body["metadata"]["name"])
        project = body["spec"].get("projectID") or annotations.get("iaprun.dev/default-project")
        return tenancy.check(
            tenancy.TenancyPolicy.from_dict(json.loads(policy.params["policy.json"])),
            namespace=self.ns(role),
            namespace_labels={ADMISSION_LABEL: policy.label, **labels},
            refs=references.extract(spec, project),
            operator_account=policy.params["operatorServiceAccount"] or None,
        )


def refusal(proc: subprocess.CompletedProcess[str]) -> str:
    """The admission policy's message in a refused kubectl call (fails the test if the call was not refused so)."""
    assert proc.returncode != 0, f"admitted, expected a refusal:\n{proc.stdout}"
    found = re.search(r"denied request: (.*)$", proc.stderr.strip())
    assert found, f"not refused by the admission policy:\n{proc.stderr}"
    return found.group(1)


def team_a(name: str = "a-web") -> Manifest:
    """A manifest team-a's rule allows in full (project, region, name, runtime account, secret, image, accessors)."""
    return {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": name},
        "spec": {
            "projectID": "team-a-prod",
            "region": "asia-northeast1",
            "template": {
                "serviceAccount": "web@team-a-prod.iam.gserviceaccount.com",
                "containers": [
                    {
                        "name": "app",
                        "image": "asia-northeast1-docker.pkg.dev/team-a-prod/apps/web:1",
                        "env": [
                            {"name": "API_KEY", "valueSource": {"secretKeyRef": {"secret": "api-key"}}},
                            {
                                "name": "DB",
                                "valueSource": {"secretKeyRef": {"secret": "projects/team-a-prod/secrets/db"}},
                            },
                        ],
                        "volumeMounts": [{"name": "db", "mountPath": "/cloudsql"}],
                    }
                ],
                "volumes": [{"name": "db", "cloudSqlInstance": {"instances": ["team-a-prod:asia-northeast1:orders"]}}],
                "vpcAccess": {"networkInterfaces": [{"network": "default"}], "egress": "PRIVATE_RANGES_ONLY"},
            },
            "iap": {"accessors": [{"member": "user:alice@example.com"}, {"member": "group:devs@eng.example.com"}]},
        },
    }


def _with(change: Callable[[Manifest], None], name: str = "a-web") -> Manifest:
    body = copy.deepcopy(team_a(name))
    change(body)
    return body


def _set(path: str, value: Any) -> Callable[[Manifest], None]:
    def change(body: Manifest) -> None:
        *parents, leaf = path.split(".")
        node = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value

    return change


def _render(helm: Helm, release: str, namespace: str, label: str, *args: str) -> list[Manifest]:
    selector = {"matchLabels": {ADMISSION_LABEL: label}}
    out = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set-json",
        f"admissionPolicy.namespaceSelector={json.dumps(selector)}",
        *args,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


ADMISSION_KINDS = {"ConfigMap", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterRole"}


def _install(kubectl: Runner, helm: Helm, ops: str, policies: list[Policy], *args: str) -> None:
    """Render the chart for a fresh release and apply its params, policy, binding and aggregated tenant roles
    (added to ``policies`` first, so that they are cleaned up even if the API server refuses one)."""
    run = uuid.uuid4().hex[:6]
    release = f"adm-{run}"
    rendered = _render(helm, release, ops, run, *args)
    objects = [
        m
        for m in rendered
        if m["kind"] in ADMISSION_KINDS
        and (m["kind"] != "ClusterRole" or "rbac.authorization.k8s.io/aggregate-to-edit" in m["metadata"]["labels"])
    ]
    policies.append(Policy(release=release, label=run, objects=objects))
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def _namespace(kubectl: Runner, name: str, labels: dict[str, str], annotations: dict[str, str]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"iaprun.test/owned": "true", **labels}, "annotations": annotations},
    }
    kubectl("apply", "-f", "-", input=json.dumps(body))


def _tenant(kubectl: Runner, namespace: str) -> None:
    """A ServiceAccount bound in its namespace to `edit` (which the chart's edit and view roles aggregate into)."""
    kubectl("create", "serviceaccount", TENANT, "-n", namespace)
    kubectl(
        "create", "rolebinding", TENANT, "-n", namespace, "--clusterrole=edit", f"--serviceaccount={namespace}:{TENANT}"
    )


def _can(kubectl: Runner, namespace: str, *question: str, in_namespace: str | None = None) -> bool:
    user = f"system:serviceaccount:{namespace}:{TENANT}"
    proc = kubectl("auth", "can-i", *question, "-n", in_namespace or namespace, f"--as={user}", check=False)
    return proc.stdout.strip() == "yes"


def _await_policy(kubectl: Runner, namespace: str, policy: Policy) -> None:
    """Wait until the API server enforces the policy: a server-side dry run in a judged namespace draws it (public
    access, which none of the policies here allows)."""
    probe = team_a("probe-policy-active")
    probe["spec"]["invokerIamDisabled"] = True

    def enforced() -> bool:
        proc = kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(probe), check=False)
        return f"ValidatingAdmissionPolicy '{policy.release}-iap-run-operator-tenancy'" in proc.stderr

    wait_for(enforced, timeout=60, what=f"admission policy of {policy.release} enforced in {namespace}")


@pytest.fixture(scope="module")
def world(kubectl: Runner, helm_offline: Helm) -> Iterator[World]:
    """Namespaces for team-a (annotated with its default project, and one without the annotation), team-b, one
    no rule selects, one under a single-tenant policy and one under a policy with no rules; a tenant account in
    each; the three policies applied, each judging its own namespaces only."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/iaprunservices.iaprun.dev", "--timeout=60s")
    run = uuid.uuid4().hex[:6]
    ops = f"adm-ops-{run}"
    namespaces: dict[str, str] = {}
    policies: list[Policy] = []
    try:
        _namespace(kubectl, ops, {}, {})
        yield from _world(kubectl, helm_offline, run, ops, namespaces, policies)
    finally:
        for policy in policies:
            for obj in policy.objects:
                if obj["kind"] != "ConfigMap":
                    kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], "--wait=false", check=False)
        for namespace in [ops, *namespaces.values()]:
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _world(
    kubectl: Runner, helm: Helm, run: str, ops: str, namespaces: dict[str, str], policies: list[Policy]
) -> Iterator[World]:
    for args in (
        ["-f", str(EXAMPLE)],
        ["--set", "tenancy.singleTenant=true", "--set", f"tenancy.operatorServiceAccount={OPERATOR_SA}"],
        [],
    ):
        _install(kubectl, helm, ops, policies, *args)
    multi, single, empty = policies
    project = "iaprun.dev/default-project"
    layout: dict[str, tuple[Policy, dict[str, str], dict[str, str]]] = {
        "team-a": (multi, {"iaprun.dev/tenant": "team-a"}, {project: "team-a-prod"}),
        "team-a-no-project": (multi, {"iaprun.dev/tenant": "team-a"}, {}),
        "team-a-foreign-project": (multi, {"iaprun.dev/tenant": "team-a"}, {project: "team-b-prod"}),
        "team-b": (multi, {"iaprun.dev/tenant": "team-b"}, {project: "team-b-prod"}),
        "stranger": (multi, {}, {}),
        "single": (single, {}, {}),
        "empty": (empty, {"iaprun.dev/tenant": "team-a"}, {}),
    }
    namespaces.update({role: f"adm-{role}-{run}"[:63] for role in layout})
    for role, (policy, labels, notes) in layout.items():
        _namespace(kubectl, namespaces[role], {ADMISSION_LABEL: policy.label, **labels}, notes)
        _tenant(kubectl, namespaces[role])
    for role, (policy, _, _) in layout.items():
        _await_policy(kubectl, namespaces[role], policy)
    wait_for(
        lambda: all(_can(kubectl, ns, "create", "iaprunservices.iaprun.dev") for ns in namespaces.values()),
        timeout=60,
        what="the edit role aggregating the chart's IapRunService rights",
    )
    yield World(kubectl=kubectl, namespaces={**namespaces, "ops": ops}, policies=[multi, single, empty], layout=layout)


# (case id, namespace role, manifest, the operator's message; {ns} is the namespace's name)
HOSTILE: list[tuple[str, str, Manifest, str]] = [
    (
        "another-tenants-project",
        "team-a",
        _with(_set("spec.projectID", "team-b-prod")),
        'rule "team-a" does not allow project "team-b-prod"',
    ),
    (
        "another-tenants-project-via-namespace-default",
        "team-a-foreign-project",
        _with(_set("spec.projectID", None)),
        'rule "team-a" does not allow project "team-b-prod"',
    ),
    (
        "another-region",
        "team-a",
        _with(_set("spec.region", "us-central1")),
        'rule "team-a" does not allow region "us-central1"',
    ),
    (
        "another-tenants-service-name",
        "team-a",
        _with(_set("spec.serviceName", "b-web")),
        'rule "team-a" does not allow service name "b-web"',
    ),
    (
        "service-name-matching-only-inside",
        "team-a",
        _with(lambda b: None, name="xa-web"),
        'rule "team-a" does not allow service name "xa-web"',
    ),
    (
        "another-tenants-runtime-account",
        "team-a",
        _with(_set("spec.template.serviceAccount", "web@team-b-prod.iam.gserviceaccount.com")),
        'rule "team-a" does not allow runtime service account "web@team-b-prod.iam.gserviceaccount.com"',
    ),
    (
        "the-operators-own-account",
        "team-a",
        _with(_set("spec.template.serviceAccount", OPERATOR_SA)),
        f'runtime service account "{OPERATOR_SA}" is the operator\'s own account and is never allowed',
    ),
    (
        "the-default-compute-account",
        "team-a",
        _with(_set("spec.template.serviceAccount", None)),
        'rule "team-a" does not allow the project\'s default compute service account '
        "(set spec.template.serviceAccount)",
    ),
    (
        "secrets-from-another-project",
        "team-a",
        _with(
            _set(
                "spec.template.containers.0.env.1.valueSource.secretKeyRef.secret",
                "projects/team-b-prod/secrets/db",
            )
        ),
        'rule "team-a" does not allow secrets from project "team-b-prod"',
    ),
    (
        "image-from-an-unlisted-registry",
        "team-a",
        _with(_set("spec.template.containers.0.image", "docker.io/library/nginx:latest")),
        'rule "team-a" does not allow image "docker.io/library/nginx:latest"',
    ),
    (
        "a-network-of-another-project",
        "team-a",
        _with(
            _set("spec.template.vpcAccess.networkInterfaces", [{"network": "projects/team-b-prod/global/networks/x"}])
        ),
        'rule "team-a" does not allow network "projects/team-b-prod/global/networks/x"',
    ),
    (
        "a-short-connector-name-is-the-services-projects",
        "team-a",
        _with(_set("spec.template.vpcAccess", {"connector": "c1"})),
        'rule "team-a" does not allow network "projects/team-a-prod/locations/asia-northeast1/connectors/c1"',
    ),
    (
        "another-tenants-cloud-sql-instance",
        "team-a",
        _with(_set("spec.template.volumes.0.cloudSqlInstance.instances", ["team-b-prod:asia-northeast1:payroll"])),
        'rule "team-a" does not allow Cloud SQL instance "team-b-prod:asia-northeast1:payroll"',
    ),
    (
        "another-tenants-bucket",
        "team-a",
        _with(_set("spec.template.volumes", [{"name": "db", "gcs": {"bucket": "team-b-exports"}}])),
        'rule "team-a" does not allow bucket "team-b-exports"',
    ),
    (
        "an-unlisted-nfs-server",
        "team-a",
        _with(_set("spec.template.volumes", [{"name": "db", "nfs": {"server": "10.9.9.9", "path": "/x"}}])),
        'rule "team-a" does not allow NFS server "10.9.9.9"',
    ),
    (
        "another-tenants-kms-key",
        "team-a",
        _with(_set("spec.template.encryptionKey", "projects/team-b-prod/locations/global/keyRings/r/cryptoKeys/k")),
        'rule "team-a" does not allow KMS key "projects/team-b-prod/locations/global/keyRings/r/cryptoKeys/k"',
    ),
    (
        "an-unlisted-binary-authorization-policy",
        "team-a",
        _with(_set("spec.binaryAuthorization", {"policy": "projects/team-b-prod/platforms/cloudRun/lax"})),
        'rule "team-a" does not allow Binary Authorization policy "projects/team-b-prod/platforms/cloudRun/lax"',
    ),
    (
        "a-binary-authorization-breakglass",
        "team-a",
        _with(_set("spec.binaryAuthorization", {"useDefault": True, "breakglassJustification": "incident"})),
        'rule "team-a" does not allow bypassing Binary Authorization (binaryAuthorization.breakglassJustification)',
    ),
    (
        "domain-accessor",
        "team-a",
        _with(_set("spec.iap.accessors", [{"member": "user:bob@example.com"}, {"member": "domain:example.com"}])),
        'rule "team-a" does not allow accessor "domain:example.com" (member kind "domain")',
    ),
    (
        "principal-set-accessor",
        "team-a",
        _with(
            _set(
                "spec.iap.accessors",
                [
                    {
                        "member": "principalSet://iam.googleapis.com/projects/1/locations/global/"
                        "workloadIdentityPools/pool/*"
                    }
                ],
            )
        ),
        'rule "team-a" does not allow accessor "principalSet://iam.googleapis.com/projects/1/locations/global/'
        'workloadIdentityPools/pool/*" (member kind "principalSet")',
    ),
    (
        "accessor-outside-the-allowed-domains",
        "team-a",
        _with(_set("spec.iap.accessors", [{"member": "user:mallory@example.com.evil.test"}])),
        'rule "team-a" does not allow accessor "user:mallory@example.com.evil.test" (domain outside the allowed '
        "domains)",
    ),
    (
        "iap-off",
        "team-a",
        _with(_set("spec.iap.enabled", False)),
        'rule "team-a" does not allow turning IAP off',
    ),
    (
        "public-invoker-bindings-kept",
        "team-a",
        _with(_set("spec.iap.publicInvokerBindings", "Report")),
        'rule "team-a" does not allow keeping public invoker bindings (publicInvokerBindings: Report)',
    ),
    (
        "public-access",
        "team-a",
        _with(_set("spec.invokerIamDisabled", True)),
        'rule "team-a" does not allow public access (invokerIamDisabled: true)',
    ),
    (
        "literal-env-with-secrets-only",
        "team-a",
        _with(_set("spec.template.containers.0.env", [{"name": "PASSWORD", "value": "hunter2"}])),
        'rule "team-a" allows only Secret Manager references in env (container "app" sets "PASSWORD" literally)',
    ),
    (
        "oauth-client-secret-the-rule-does-not-list",
        "team-a",
        _with(
            _set(
                "spec.iap.settings",
                {
                    "accessSettings": {
                        "oauthSettings": {
                            "clientId": "1-x.apps.googleusercontent.com",
                            "clientSecretSource": {"secretKeyRef": {"secret": "projects/team-b-prod/secrets/oauth"}},
                        }
                    }
                },
            )
        ),
        'rule "team-a" does not allow the operator reading OAuth client secret "projects/team-b-prod/secrets/oauth"',
    ),
    (
        "a-namespace-no-rule-selects",
        "stranger",
        team_a(),
        'namespace "{ns}" may not use the operator: no tenancy rule selects it',
    ),
    (
        "team-a-manifest-in-team-bs-namespace",
        "team-b",
        _with(_set("spec.projectID", "team-a-prod")),
        'rule "team-b" does not allow project "team-a-prod"',
    ),
    (
        "single-tenant-public-access",
        "single",
        _with(_set("spec.invokerIamDisabled", True)),
        'rule "singleTenant" does not allow public access (invokerIamDisabled: true)',
    ),
    (
        "single-tenant-operators-own-account",
        "single",
        _with(_set("spec.template.serviceAccount", "IAP-Run-Operator@platform-ops.iam.gserviceaccount.com")),
        'runtime service account "IAP-Run-Operator@platform-ops.iam.gserviceaccount.com" is the operator\'s own '
        "account and is never allowed",
    ),
    (
        "no-rules-at-all",
        "empty",
        team_a(),
        'namespace "{ns}" may not use the operator: no tenancy rule selects it',
    ),
]


@pytest.mark.parametrize(("role", "body", "expected"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_tenant_is_refused_with_the_operators_message(world: World, role: str, body: Manifest, expected: str) -> None:
    """Applied as the namespace's tenant, the hostile manifest is refused at admission with the agreed words, and
    the operator's own check of the same object under the same release's policy file says exactly the same."""
    message = refusal(world.apply(role, body))
    assert message == expected.format(ns=world.ns(role))
    assert world.operator_says(role, body) == message


def test_every_selecting_rule_reports_its_first_reason(world: World) -> None:
    """Several reasons: each selecting rule reports only its first failing one (project before image and
    accessors)."""
    body = _with(_set("spec.projectID", "team-b-prod"))
    body["spec"]["template"]["containers"][0]["image"] = "docker.io/library/nginx"
    body["spec"]["iap"]["accessors"] = [{"member": "domain:evil.test"}]
    assert refusal(world.apply("team-a", body)) == 'rule "team-a" does not allow project "team-b-prod"'
    assert world.operator_says("team-a", body) == 'rule "team-a" does not allow project "team-b-prod"'


def test_every_accessor_kind_is_judged_before_any_domain(world: World) -> None:
    """An accessor with a refused domain listed before one of a refused kind: the kind is reported (the operator's
    order: every accessor's kind, then every accessor's domain)."""
    body = _with(_set("spec.iap.accessors", [{"member": "user:eve@evil.test"}, {"member": "domain:example.com"}]))
    expected = 'rule "team-a" does not allow accessor "domain:example.com" (member kind "domain")'
    assert refusal(world.apply("team-a", body)) == expected == world.operator_says("team-a", body)


def test_unnamed_container_is_named_by_its_index(world: World) -> None:
    """A literal env value in a container without a name: the message names it containers[i], as the operator.

    Only a single container may go unnamed (the CRD requires names when there are several, as Cloud Run v2)."""
    body = team_a()
    container = body["spec"]["template"]["containers"][0]
    del container["name"]
    container["env"].append({"name": "X", "value": "1"})
    expected = (
        'rule "team-a" allows only Secret Manager references in env (container "containers[0]" sets "X" literally)'
    )
    assert refusal(world.apply("team-a", body)) == expected == world.operator_says("team-a", body)


@pytest.mark.parametrize(
    ("role", "body"),
    [
        ("team-a", team_a()),
        ("team-a", _with(_set("spec.projectID", None), name="a-project-from-namespace")),
        ("team-a-no-project", _with(_set("spec.projectID", None), name="a-project-from-operator-default")),
        ("single", _with(_set("spec.template.serviceAccount", None), name="anything-goes")),
    ],
    ids=["everything-allowed", "project-from-namespace", "project-left-to-the-operator", "single-tenant"],
)
def test_allowed_manifest_is_admitted(world: World, role: str, body: Manifest) -> None:
    """What the rule allows is admitted as the tenant (no project anywhere: the operator checks its default);
    the object is removed again (no operator runs here, so no finalizer holds it)."""
    assert world.operator_says(role, body) is None
    created = world.apply(role, body)
    assert created.returncode == 0, created.stderr
    world.as_tenant(role, "delete", "iaprunservice", body["metadata"]["name"])


def test_updates_are_judged_but_spec_preserving_ones_always_pass(world: World) -> None:
    """An object the policy now denies (created before its namespace was judged, as after a policy change):
    an update that keeps its spec (a label, removing a finalizer) passes, so it can always be tidied up and
    deleted; an update of its spec is judged and refused."""
    kubectl, multi = world.kubectl, world.layout["stranger"][0]
    namespace = f"adm-late-{multi.label}"
    _namespace(kubectl, namespace, {}, {})
    try:
        _judged_late(world, namespace, multi)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _judged_late(world: World, namespace: str, multi: Policy) -> None:
    kubectl = world.kubectl
    world.namespaces["late"] = namespace
    world.layout["late"] = (multi, {}, {})
    _tenant(kubectl, namespace)
    body = team_a("a-late")
    body["metadata"]["finalizers"] = ["iaprun.test/hold"]
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(body))
    kubectl("label", "namespace", namespace, f"{ADMISSION_LABEL}={multi.label}")
    _await_policy(kubectl, namespace, multi)
    labelled = world.as_tenant("late", "label", "iaprunservice", "a-late", "tidy=yes")
    assert labelled.returncode == 0, labelled.stderr
    changed = world.as_tenant(
        "late", "patch", "iaprunservice", "a-late", "--type=merge", "-p", '{"spec":{"description":"changed"}}'
    )
    assert refusal(changed) == f'namespace "{namespace}" may not use the operator: no tenancy rule selects it'
    released = world.as_tenant(
        "late", "patch", "iaprunservice", "a-late", "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    assert released.returncode == 0, released.stderr
    world.as_tenant("late", "delete", "iaprunservice", "a-late")


def test_an_allowed_object_cannot_be_updated_into_a_denied_one(world: World) -> None:
    """UPDATE is judged like CREATE: an allowed object whose image is changed to an unlisted one is refused."""
    assert world.apply("team-a", team_a("a-updated")).returncode == 0
    try:
        hostile = _with(_set("spec.template.containers.0.image", "evil.test/x"), name="a-updated")
        assert refusal(world.apply("team-a", hostile)) == 'rule "team-a" does not allow image "evil.test/x"'
    finally:
        world.as_tenant("team-a", "delete", "iaprunservice", "a-updated")


def test_tenant_rights_are_the_objects_and_nothing_else(world: World) -> None:
    """The tenant (edit, with the chart's roles aggregated) manages IapRunService objects in its namespace, and
    cannot write their status, reach another tenant's namespace, change its namespace's labels or annotations
    (which select its rule and project), the params ConfigMap, or the admission policy and binding."""
    kubectl, ns = world.kubectl, world.ns("team-a")
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
        assert _can(kubectl, ns, verb, "iaprunservices.iaprun.dev"), verb
    assert not _can(kubectl, ns, "patch", "iaprunservices.iaprun.dev", "--subresource=status")
    assert not _can(kubectl, ns, "create", "iaprunservices.iaprun.dev", in_namespace=world.ns("team-b"))
    assert not _can(kubectl, ns, "patch", f"namespace/{ns}")
    assert not _can(kubectl, ns, "update", "configmaps", in_namespace=world.ns("ops"))
    for kind in ("validatingadmissionpolicies", "validatingadmissionpolicybindings"):
        assert not _can(kubectl, ns, "update", f"{kind}.admissionregistration.k8s.io"), kind


def test_the_largest_object_is_judged_within_the_cost_budget(world: World) -> None:
    """The CRD's limits at their maximum (10 containers sharing the 500 env entries the spec budget allows, every
    one a secret reference, and 200 accessors) are judged within the API server's CEL cost budget: admitted when
    allowed, and refused for the last accessor when only it is refused (so every element was looked at)."""
    body = team_a("a-largest")
    image = "asia-northeast1-docker.pkg.dev/team-a-prod/apps/web:1"
    env = [{"name": f"E{i}", "valueSource": {"secretKeyRef": {"secret": f"s{i}"}}} for i in range(50)]
    body["spec"]["template"]["containers"] = [{"name": f"c{i}", "image": image, "env": env} for i in range(10)]
    body["spec"]["template"]["containers"][0]["ports"] = [{"containerPort": 8080}]  # the ingress container
    body["spec"]["iap"]["accessors"] = [{"member": f"user:u{i}@example.com"} for i in range(200)]
    created = world.as_tenant("team-a", "create", "-f", "-", body=body)  # apply's annotation would not fit
    assert created.returncode == 0, created.stderr
    world.as_tenant("team-a", "delete", "iaprunservice", "a-largest")
    body["spec"]["iap"]["accessors"][-1] = {"member": "user:u199@evil.test"}
    expected = 'rule "team-a" does not allow accessor "user:u199@evil.test" (domain outside the allowed domains)'
    assert refusal(world.as_tenant("team-a", "create", "-f", "-", body=body)) == expected


def test_without_its_params_the_policy_refuses_everything(world: World) -> None:
    """The params ConfigMap deleted (by hand, or a broken upgrade): the binding refuses every create rather than
    letting everything through (parameterNotFoundAction: Deny). Runs last: it breaks the no-rules policy."""
    empty = world.layout["empty"][0]
    world.kubectl("delete", "configmap", "-n", world.ns("ops"), f"{empty.release}-iap-run-operator-tenancy")

    def refused_for_missing_params() -> str | None:
        proc = world.apply("empty", team_a("a-no-params"))
        return proc.stderr if proc.returncode != 0 and "no params found" in proc.stderr else None

    wait_for(refused_for_missing_params, timeout=60, what="the refusal for missing params")
