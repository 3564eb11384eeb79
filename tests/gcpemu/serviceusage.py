"""Service Usage v1beta1: ``generateServiceIdentity`` (creates a service agent) and operations.get.

Creating the IAP agent here is what makes ``serviceAccount:service-N@gcp-sa-iap...`` bindable in IAM
policies afterwards (see ``Emulator.account_exists``).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from gcpemu.errors import ApiError
from gcpemu.routing import Ctx, Route, route
from gcpemu.state import OperationRecord

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
