"""Prerequisites and organisation policy end to end: what a real project meets before anything works.

- Each API the operator needs (Cloud Run and IAP in the service's project, Resource Manager in the project of
  the operator's own credentials), when disabled, stalls a new object as ``ApiNotEnabled`` naming the API, the
  project and the exact ``gcloud services enable`` command, with no write anywhere; once the API is enabled the
  object becomes Ready by itself (nothing is done to the object: enabling an API sends no Kubernetes event).
  Service Usage (needed once per project, to create the IAP service agent) stalls the same way at the first
  grant, after the service was created.
- Domain-restricted sharing refusing an accessor stalls the object as ``OrgPolicyDenied`` naming the member and
  the constraint; later passes do not send the refused write again; a spec without the member goes through.
- The README quickstart's manifest, filled in, reaches Ready (it hard-codes no project and no person).
- ``gcloud run services remove-iam-policy-binding`` (Cloud Run v1 IAM) used out of band, with the real gcloud
  where it is installed and through the run v1 discovery client: the operator undoes it at its next drift pass.
"""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gcpemu.admin import AdminClient
from integration.harness import REPO, OperatorProcess, apply, condition, get, manifest, wait_for, wait_ready
from integration.harness import WRITES as SERVICE_WRITES
from integration.test_access import visit
from testworld.fixtures import Runner

pytestmark = pytest.mark.integration
REGION = "asia-northeast1"
WRITES = (*SERVICE_WRITES, "iap.updateIapSettings", "serviceusage.services.generateServiceIdentity")
SWITCHES = ("disabled_apis", "caller_projects", "allowed_policy_member_domains", "auto_register_projects")


@pytest.fixture
def switches(emu: AdminClient) -> Iterator[AdminClient]:
    """The emulator with fresh projects allowed; the prerequisite and policy switches are restored after."""
    before = {key: emu.config()[key] for key in SWITCHES}
    emu.configure(auto_register_projects=True)
    yield emu
    emu.configure(**before)


def fresh_project() -> str:
    """A project nobody used yet: no number cached in the operator, nothing enabled or created there before."""
    return f"pre-{uuid.uuid4().hex[:10]}"


def stalled(kubectl: Runner, namespace: str, name: str, reason: str) -> dict[str, Any]:
    def check() -> bool:
        found = condition(get(kubectl, namespace, name), "Stalled")
        return found.get("status") == "True" and found.get("reason") == reason

    wait_for(check, timeout=60, what=f"Stalled/{reason}")
    return get(kubectl, namespace, name)


def writes_about(emu: AdminClient, needles: tuple[str, ...], since: int) -> list[str]:
    return [
        r["method"] for r in emu.requests(since=since) if r["method"] in WRITES and any(n in r["path"] for n in needles)
    ]


@pytest.mark.parametrize(
    ("api", "where"),
    [
        ("run.googleapis.com", "service"),
        ("iap.googleapis.com", "service"),
        ("cloudresourcemanager.googleapis.com", "caller"),
    ],
)
def test_disabled_api_stalls_with_the_command_and_no_write_then_recovers_once_enabled(
    operator: OperatorProcess,
    kubectl: Runner,
    namespace: str,
    switches: AdminClient,
    svc: str,
    api: str,
    where: str,
) -> None:
    """ApiNotEnabled names the API, the consumer project and ``gcloud services enable API --project=P``; nothing
    is written while it lasts; enabling the API is enough for the object to become Ready."""
    emu = switches
    project = fresh_project()
    consumer = project
    if where == "caller":
        consumer = fresh_project()
        emu.set_caller_project("anonymous", consumer)
    emu.set_api_enabled(consumer, api, False)
    mark = emu.last_seq()
    apply(kubectl, namespace, manifest(svc, projectID=project, iap={"accessors": [{"member": "user:a@example.com"}]}))

    obj = stalled(kubectl, namespace, svc, "ApiNotEnabled")
    message = condition(obj, "Stalled")["message"]
    number = emu.state()["projects"][consumer]
    named = project if where == "service" else number
    assert f"gcloud services enable {api} --project={named}" in message
    assert api in message
    assert condition(obj, "Ready")["status"] == "False"
    assert writes_about(emu, (project, number, svc), mark) == []
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "reason=ApiNotEnabled").stdout
    assert svc in events

    emu.set_api_enabled(consumer, api, True)
    obj = wait_ready(kubectl, namespace, svc)
    assert "Stalled" not in {c["type"] for c in obj["status"]["conditions"]}


def test_service_usage_disabled_where_the_credentials_live_stalls_at_the_first_grant_and_recovers(
    operator: OperatorProcess, kubectl: Runner, namespace: str, switches: AdminClient, svc: str
) -> None:
    """Service Usage is needed once per project, to create the IAP service agent before its first grant: with it
    off in the credentials' project the object stalls there (the service itself already exists, with IAP on and
    nobody granted), names the command, and becomes Ready once it is enabled."""
    emu = switches
    project, consumer = fresh_project(), fresh_project()
    emu.set_caller_project("anonymous", consumer)
    emu.set_api_enabled(consumer, "serviceusage.googleapis.com", False)
    apply(kubectl, namespace, manifest(svc, projectID=project, iap={"accessors": [{"member": "user:a@example.com"}]}))

    obj = stalled(kubectl, namespace, svc, "ApiNotEnabled")
    number = emu.state()["projects"][consumer]
    message = condition(obj, "Stalled")["message"]
    assert f"gcloud services enable serviceusage.googleapis.com --project={number}" in message
    assert "credentials" in message
    assert condition(obj, "InvokerGranted")["status"] == "False"
    assert [r for r in emu.requests("iap.setIamPolicy") if svc in r["path"]] == []

    emu.set_api_enabled(consumer, "serviceusage.googleapis.com", True)
    wait_ready(kubectl, namespace, svc)


def test_domain_restricted_sharing_stalls_naming_members_and_is_not_retried_until_the_spec_changes(
    operator: OperatorProcess, kubectl: Runner, namespace: str, switches: AdminClient, svc: str
) -> None:
    """The refused accessor write is made once: another pass (a label change) reads but does not write it
    again; dropping the outside member from the spec lets the write through and clears the refusal."""
    emu = switches
    project = fresh_project()
    emu.restrict_member_domains(project, ["example.com"])
    inside, outside = "user:alice@example.com", "user:mallory@outside.test"
    body = manifest(svc, projectID=project, iap={"accessors": [{"member": inside}, {"member": outside}]})
    apply(kubectl, namespace, body)

    obj = stalled(kubectl, namespace, svc, "OrgPolicyDenied")
    message = condition(obj, "Stalled")["message"]
    assert "mallory@outside.test" in message
    assert "constraints/iam.allowedPolicyMemberDomains" in message
    assert "alice@example.com" not in message
    refusal = obj["status"]["iap"]["orgPolicyRefusal"]
    assert refusal["members"] == ["mallory@outside.test"]
    sets = [r for r in emu.requests("iap.setIamPolicy") if svc in r["path"]]
    assert [r["status"] for r in sets] == [400]

    mark = emu.last_seq()
    kubectl("label", "-n", namespace, f"iaprunservice/{svc}", "nudge=1")
    wait_for(
        lambda: any(svc in r["path"] for r in emu.requests("iap.getIamPolicy", since=mark)),
        timeout=30,
        what="another pass reading the IAP policy",
    )
    assert [r for r in emu.requests("iap.setIamPolicy", since=mark) if svc in r["path"]] == []
    assert condition(get(kubectl, namespace, svc), "Stalled")["reason"] == "OrgPolicyDenied"

    body["spec"]["iap"]["accessors"] = [{"member": inside}]
    apply(kubectl, namespace, body)
    obj = wait_ready(kubectl, namespace, svc)
    assert "orgPolicyRefusal" not in obj["status"]["iap"]


def run_v1_services(emulator_url: str) -> Any:
    """Cloud Run v1's ``projects.locations.services`` through the official discovery client."""
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient import discovery

    client = discovery.build(
        "run",
        "v1",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        static_discovery=True,
        client_options={"api_endpoint": emulator_url + "/"},
    )
    return client.projects().locations().services()


def remove_with_gcloud(emulator_url: str, workdir: Path, svc: str, member: str) -> None:
    """``gcloud run services remove-iam-policy-binding``, the real CLI, pointed at the emulator."""
    token = workdir / "token"
    token.write_text("emulator-token")
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(workdir),
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": emulator_url + "/",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
        "CLOUDSDK_CORE_PROJECT": "test-project",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
    }
    command = ["gcloud", "run", "services", "remove-iam-policy-binding", svc, f"--region={REGION}"]
    subprocess.run(
        [*command, f"--member={member}", "--role=roles/run.invoker"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "client",
    [
        "discovery",
        pytest.param("gcloud", marks=pytest.mark.skipif(shutil.which("gcloud") is None, reason="no gcloud")),
    ],
)
def test_out_of_band_v1_iam_change_through_gclouds_path_is_undone_at_the_next_drift_pass(
    operator: OperatorProcess,
    kubectl: Runner,
    namespace: str,
    emu: AdminClient,
    emulator_url: str,
    svc: str,
    client: str,
    tmp_path: Path,
) -> None:
    """Someone runs ``gcloud run services remove-iam-policy-binding`` (Cloud Run v1 IAM; the real CLI where it
    is installed, else the run v1 discovery client): the IAP agent loses run.invoker, and the operator grants it
    again at its next drift pass."""
    body = manifest(svc, projectID="test-project")
    body["metadata"]["annotations"] = {"iaprun.dev/drift-interval": "2"}
    apply(kubectl, namespace, body)
    obj = wait_ready(kubectl, namespace, svc)
    agent = f"serviceAccount:{obj['status']['iap']['serviceAgent']}"
    services = run_v1_services(emulator_url)
    resource = f"projects/test-project/locations/{REGION}/services/{svc}"
    mark = emu.last_seq()
    if client == "gcloud":
        remove_with_gcloud(emulator_url, tmp_path, svc, agent)
    else:
        policy = services.getIamPolicy(resource=resource).execute()
        policy["bindings"] = [b for b in policy.get("bindings", []) if agent not in b["members"]]
        services.setIamPolicy(resource=resource, body={"policy": policy}).execute()
    assert [r["method"] for r in emu.requests("run.v1.services.setIamPolicy", since=mark)] == [
        "run.v1.services.setIamPolicy"
    ]

    def invoker_back() -> bool:
        found = services.getIamPolicy(resource=resource).execute()
        return any(agent in b["members"] and b["role"] == "roles/run.invoker" for b in found.get("bindings", []))

    wait_for(invoker_back, timeout=60, what="the IAP agent's run.invoker granted again")
    assert any(svc in r["path"] for r in emu.requests("run.services.setIamPolicy", since=mark))


def test_the_readme_quickstart_manifest_reaches_ready_with_its_variables_filled_in(
    operator: OperatorProcess, kubectl: Runner, namespace: str, emu: AdminClient, emulator_url: str, svc: str
) -> None:
    """The quickstart's step 6 names no project and no person: filled in with the local world's, it becomes
    Ready and lets exactly the named accessor in."""
    readme = (REPO / "README.md").read_text()
    start = readme.index("kubectl apply -f - <<EOF\n") + len("kubectl apply -f - <<EOF\n")
    text = readme[start : readme.index("\nEOF\n", start)]
    assert {"$PROJECT", "$REGION", "$ACCESSOR"} <= {word for word in text.split() if word.startswith("$")}
    assert not [word for word in ("example.com", "-project", "@") if word in text]
    filled = string.Template(text).substitute(
        PROJECT="test-project", REGION=REGION, ACCESSOR="user:quickstart@example.com"
    )
    body = yaml.safe_load(filled)
    body["metadata"]["name"] = svc  # the emulator's world is shared by the session
    apply(kubectl, namespace, body)
    obj = wait_ready(kubectl, namespace, svc)
    assert visit(emulator_url, obj["status"]["url"], "user:quickstart@example.com") == 200
    assert visit(emulator_url, obj["status"]["url"], "user:someone@example.com") == 403
