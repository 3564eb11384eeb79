"""Cloud Run Admin API v2 adapter (``google-cloud-run`` run_v2, REST transport).

Services travel as v2 JSON dicts (camelCase, enums by name) so the core compares them with plain
equality. Writes return as soon as Google has accepted the long-running operation: the loop never holds
a worker while Cloud Run works, it reads the service's ``reconciling``/``terminalCondition`` next pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests.adapters
from google.api_core import exceptions as core_exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import Credentials
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import field_mask_pb2, json_format

from iaprun_operator.core.errors import GoogleError, Kind
from iaprun_operator.core.names import ServiceRef
from iaprun_operator.google.calls import Calls, kind_for
from iaprun_operator.google.ratelimit import Limiter

API = "run"


def service_to_dict(service: run_v2.Service) -> dict[str, Any]:
    text = run_v2.Service.to_json(service, always_print_fields_with_no_presence=False, use_integers_for_enums=False)
    return json.loads(text)  # type: ignore[no-any-return]


def service_from_dict(body: Mapping[str, Any]) -> run_v2.Service:
    service: run_v2.Service = run_v2.Service.from_json(json.dumps(body), ignore_unknown_fields=False)
    return service


def policy_to_dict(policy: policy_pb2.Policy) -> dict[str, Any]:
    body: dict[str, Any] = json_format.MessageToDict(policy)
    return body


def policy_from_dict(body: Mapping[str, Any]) -> policy_pb2.Policy:
    return json_format.ParseDict(dict(body), policy_pb2.Policy())


def operation_error(raw: Any, method: str) -> GoogleError | None:
    """The error of a ``google.longrunning`` Operation that is done and failed, else None.

    Its gRPC code is mapped to HTTP and a status name by ``google.api_core``, then to a kind as any call's.
    """
    if not (raw.done and raw.HasField("error")):
        return None
    answer = core_exceptions.from_grpc_status(int(raw.error.code), raw.error.message)  # type: ignore[no-untyped-call]
    http = int(answer.code or 500)
    status = answer.grpc_status_code.name if answer.grpc_status_code is not None else ""
    return GoogleError(kind_for(http, status, ""), raw.error.message, api=API, method=method, code=http)


def read_environment_once(session: requests.Session, url: str) -> None:
    """Proxy and CA-bundle variables read once, not on every call.

    requests looks for a ``.netrc`` (two file-system checks) and re-reads the proxy and CA variables for every
    request of a session that trusts the environment: a tenth of the operator's CPU in a scale-out profile.
    Authentication is Google's bearer token, so ``.netrc`` never applied.
    """
    session.proxies.update(requests.utils.get_environ_proxies(url, no_proxy=None))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


def _to_snake(path: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in path)


@dataclass
class _Listing:
    """One ``services.list`` of a project and region, shared by every pass that asks while it is fresh."""

    started: float
    """Monotonic time the listing was asked for: its age counts from there (what it shows is at least that
    recent)."""
    by_name: asyncio.Future[dict[str, run_v2.Service]]
    """Kept as the client's messages, turned into dicts only when a pass asks for one: a shard's listing holds
    every service of the region, most of them other shards' (docs/performance.md, "sharded-10k")."""


class CloudRun:
    """Find / create / update / delete of one service, and its IAM policy."""

    def __init__(
        self,
        *,
        calls: Calls,
        limiter: Limiter,
        creds: Credentials,
        endpoint: str | None,
        timeout: float,
        connections: int = 10,
    ):
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        self._client = run_v2.ServicesClient(credentials=creds, transport="rest", client_options=options)
        # One kept-alive connection per Google-call thread: requests pools 10 and closes any connection
        # beyond that after its call, so each call above 10 at once would pay a new connection (TLS).
        session = getattr(self._client.transport, "_session", None)
        if session is not None:
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(10, connections))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            read_environment_once(session, endpoint or "https://run.googleapis.com")
        self._calls = calls
        self._limiter = limiter
        self._timeout = timeout
        self._listings: dict[tuple[str, str], _Listing] = {}

    def _reads(self, ref: ServiceRef) -> Any:
        return self._limiter.bucket("run_read", ref.project, ref.region)

    def _writes(self, ref: ServiceRef) -> Any:
        return self._limiter.bucket("run_write", ref.project, ref.region)

    async def get(self, ref: ServiceRef) -> dict[str, Any] | None:
        """The observed service, or None when it does not exist."""

        def call() -> run_v2.Service:
            return self._client.get_service(name=ref.name, timeout=self._timeout)

        try:
            return service_to_dict(await self._calls.run(API, "services.get", self._reads(ref), call))
        except GoogleError as error:
            if error.kind is Kind.NOT_FOUND:
                return None
            raise

    async def list(self, project: str, region: str) -> list[dict[str, Any]]:
        """Every service in one project and region (all pages; the orphan sweep's one read per place)."""
        return [service_to_dict(s) for s in await self._list(project, region)]

    async def _list(self, project: str, region: str) -> tuple[run_v2.Service, ...]:
        ref = ServiceRef(project, region, "-")

        def call() -> tuple[run_v2.Service, ...]:
            request = run_v2.ListServicesRequest(parent=ref.parent, page_size=500)
            return tuple(self._client.list_services(request=request, timeout=self._timeout))

        return await self._calls.run(API, "services.list", self._reads(ref), call)

    async def listed(self, ref: ServiceRef, *, max_age: float) -> dict[str, Any] | None:
        """The service as a listing of its project and region at most ``max_age`` seconds old shows it.

        None: not in the listing, or the listing failed (for ``max_age``, so a missing permission costs one call,
        not one per pass). A listing may be stale by ``max_age``: a caller acts on it only where a fresher copy
        would change nothing, and reads the service itself (``get``) otherwise.
        """
        place = (ref.project, ref.region)
        listing = self._listings.get(place)
        if listing is None or time.monotonic() - listing.started > max_age:
            listing = _Listing(time.monotonic(), asyncio.ensure_future(self._by_name(*place)))
            self._listings[place] = listing
        try:
            by_name = await asyncio.shield(listing.by_name)
        except GoogleError:
            return None
        found = by_name.get(ref.name)
        return None if found is None else service_to_dict(found)

    async def _by_name(self, project: str, region: str) -> dict[str, run_v2.Service]:
        return {str(service.name): service for service in await self._list(project, region)}

    @staticmethod
    def _started(operation: Any, method: str) -> str:
        """The operation's name; an operation that already failed raises its error."""
        raw = operation.operation
        error = operation_error(raw, method)
        if error is not None:
            raise error
        return str(raw.name)

    async def create(self, ref: ServiceRef, body: Mapping[str, Any]) -> str:
        request = run_v2.CreateServiceRequest(
            parent=ref.parent, service=service_from_dict(body), service_id=ref.service
        )
        op = await self._calls.run(
            API,
            "services.create",
            self._writes(ref),
            lambda: self._client.create_service(request=request, timeout=self._timeout),
        )
        return self._started(op, "services.create")

    async def update(self, ref: ServiceRef, body: Mapping[str, Any], mask: Sequence[str]) -> str:
        service = service_from_dict({**body, "name": ref.name})
        request = run_v2.UpdateServiceRequest(
            service=service, update_mask=field_mask_pb2.FieldMask(paths=[_to_snake(p) for p in mask])
        )
        op = await self._calls.run(
            API,
            "services.patch",
            self._writes(ref),
            lambda: self._client.update_service(request=request, timeout=self._timeout),
        )
        return self._started(op, "services.patch")

    async def delete(self, ref: ServiceRef, *, etag: str = "") -> str | None:
        """Start deleting; None when the service is already gone (NotFound on delete is success).

        With ``etag``, Google refuses (ABORTED) if the service changed since it was read that way.
        """
        request = run_v2.DeleteServiceRequest(name=ref.name, etag=etag)
        try:
            op = await self._calls.run(
                API,
                "services.delete",
                self._writes(ref),
                lambda: self._client.delete_service(request=request, timeout=self._timeout),
            )
        except GoogleError as error:
            if error.kind is Kind.NOT_FOUND:
                return None
            raise
        return self._started(op, "services.delete")

    async def get_iam_policy(self, ref: ServiceRef) -> dict[str, Any]:
        request = iam_policy_pb2.GetIamPolicyRequest(resource=ref.name)
        request.options.requested_policy_version = 3
        policy = await self._calls.run(
            API,
            "services.getIamPolicy",
            self._reads(ref),
            lambda: self._client.get_iam_policy(request=request, timeout=self._timeout),
        )
        return policy_to_dict(policy)

    async def set_iam_policy(self, ref: ServiceRef, policy: Mapping[str, Any]) -> dict[str, Any]:
        request = iam_policy_pb2.SetIamPolicyRequest(resource=ref.name, policy=policy_from_dict(policy))
        written = await self._calls.run(
            API,
            "services.setIamPolicy",
            self._writes(ref),
            lambda: self._client.set_iam_policy(request=request, timeout=self._timeout),
        )
        return policy_to_dict(written)
