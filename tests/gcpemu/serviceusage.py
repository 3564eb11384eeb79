"""Service Usage: which APIs are enabled for which consumer project, plus v1beta1 ``generateServiceIdentity``.

Enablement (``check_enabled``): Google's front end refuses a call to an API that is not enabled for the call's
*consumer* project with 403 ``SERVICE_DISABLED``, before any permission check. The consumer is the quota project
(``X-Goog-User-Project``) when the request names one; otherwise, for Cloud Run and IAP, the project the resource
lives in, and for Resource Manager and Service Usage the project of the caller's credentials (a service
account's own project; ``caller_projects`` in the config for other callers; none for a user signed in through
gcloud, whose OAuth client's project has everything enabled).

Creating the IAP agent here is what makes ``serviceAccount:service-N@gcp-sa-iap...`` bindable in IAM
policies afterwards (see ``Emulator.account_exists``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from gcpemu.errors import ApiError
from gcpemu.quota import service_title
from gcpemu.routing import Ctx, Route, route
from gcpemu.state import OperationRecord, Project

API = "serviceusage.googleapis.com"
IDENTITY_TYPE = "type.googleapis.com/google.api.serviceusage.v1beta1.ServiceIdentity"

# service -> agent domain prefix (service-{N}@{prefix}.iam.gserviceaccount.com)
AGENT_DOMAINS = {
    "iap.googleapis.com": "gcp-sa-iap",
    "run.googleapis.com": "serverless-robot-prod",
    "pubsub.googleapis.com": "gcp-sa-pubsub",
    "artifactregistry.googleapis.com": "gcp-sa-artifactregistry",
    "cloudbuild.googleapis.com": "gcp-sa-cloudbuild",
    "secretmanager.googleapis.com": "gcp-sa-secretmanager",
}


def agent_email(service: str, number: str) -> str | None:
    prefix = AGENT_DOMAINS.get(service)
    if prefix is None:
        return None
    return f"service-{number}@{prefix}.iam.gserviceaccount.com"


CALLER_PROJECT_APIS = frozenset({"cloudresourcemanager.googleapis.com", API})
"""APIs whose enablement Google checks in the caller's own project, not in the project the call is about."""
_SA_PROJECT = re.compile(r"^(?:serviceAccount:)?[a-z][-a-z0-9]*@([a-z][-a-z0-9]*)\.iam\.gserviceaccount\.com$")


def consumer(ctx: Ctx, api: str) -> Project | None:
    """The project whose enablement of ``api`` decides the call (None: nothing to check)."""
    world = ctx.emu.world
    quota = ctx.request.headers.get("X-Goog-User-Project", "").strip()
    if quota:
        return world.resolve_project(quota)
    if api not in CALLER_PROJECT_APIS:
        return ctx.project
    caller = ctx.caller or "anonymous"
    named = ctx.emu.config.caller_projects.get(caller)
    if named:
        return world.resolve_project(named)
    match = _SA_PROJECT.match(caller)
    return world.resolve_project(match.group(1)) if match else None


def check_enabled(ctx: Ctx, api: str) -> None:
    """Raise Google's 403 SERVICE_DISABLED when ``api`` is disabled for the call's consumer project."""
    table = ctx.emu.config.disabled_apis
    if not table:
        return
    project = consumer(ctx, api)
    if project is not None and api in table.get(project.id, []) + table.get(project.number, []):
        raise service_disabled(api, project.number)


def service_disabled(api: str, number: str) -> ApiError:
    """Google's answer for a disabled API (gcp-api.md §1.5 and §10): 403 PERMISSION_DENIED, ErrorInfo
    SERVICE_DISABLED with the service and the consumer, and a Help link to the activation page."""
    title = service_title(api)
    url = f"https://console.developers.google.com/apis/api/{api}/overview?project={number}"
    return ApiError(
        "PERMISSION_DENIED",
        f"{title} has not been used in project {number} before or it is disabled. Enable it by visiting {url} "
        "then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our "
        "systems and retry.",
        reason="SERVICE_DISABLED",
        domain="googleapis.com",
        metadata={
            "service": api,
            "consumer": f"projects/{number}",
            "activationUrl": url,
            "serviceTitle": title,
            "containerInfo": number,
        },
    )


def _render(op: OperationRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"name": op.name}
    if op.metadata:
        out["metadata"] = op.metadata
    if op.done:
        out["done"] = True
        if op.error is not None:
            out["error"] = op.error
        else:
            out["response"] = op.response or {}
    return out


async def generate_identity(ctx: Ctx) -> dict[str, Any]:
    emu = ctx.emu
    project = ctx.project
    assert project is not None
    service = ctx.params["service"]
    email = agent_email(service, project.number)
    response: dict[str, Any] = {"@type": IDENTITY_TYPE}
    if email is not None:
        kind = AGENT_DOMAINS[service].removeprefix("gcp-sa-")
        emu.world.agents.setdefault((project.number, kind), emu.clock.time())
        uid = str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]
        response.update(email=email, uniqueId=uid)
    delay = float(emu.config.operation_delays.get("serviceusage.services.generateServiceIdentity", 0.0))
    if delay <= 0:
        op = OperationRecord(name="operations/finished.DONE_OPERATION", method=ctx.route.method_id, kind="serviceusage")
        op.done = True
        op.response = response
        return _render(op)
    op = OperationRecord(
        name=f"operations/tmo-acf.{uuid.uuid4()}",
        method=ctx.route.method_id,
        kind="serviceusage",
        created=emu.clock.time(),
        seq=next(emu.world.seq),
    )
    emu.world.operations[op.name] = op

    def done() -> None:
        op.done = True
        op.response = response

    op.timer = emu.loop.call_later(delay, done)
    return _render(op)


async def get_operation(ctx: Ctx) -> dict[str, Any]:
    name = f"operations/{ctx.params['operation']}"
    if name == "operations/finished.DONE_OPERATION":
        return {"name": name, "done": True, "response": {"@type": "type.googleapis.com/google.protobuf.Empty"}}
    op = ctx.emu.world.operations.get(name)
    if op is None or op.kind != "serviceusage":
        raise ApiError("NOT_FOUND", f"Operation '{name}' not found.", reason="NOT_FOUND", domain=API)
    return _render(op)


ROUTES: list[Route] = [
    route(
        "POST",
        "/v1beta1/projects/{project}/services/{service}:generateServiceIdentity",
        "serviceusage.services.generateServiceIdentity",
        API,
        "write",
        None,
        generate_identity,
        "serviceusage.v1beta1.json:services.generateServiceIdentity",
    ),
    route(
        "GET",
        "/v1beta1/operations/{operation+}",
        "serviceusage.operations.get",
        API,
        "read",
        None,
        get_operation,
        "serviceusage.v1beta1.json:operations.get",
    ),
]
