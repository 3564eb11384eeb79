"""Running blocking Google client calls from asyncio: rate limits, a thread pool, call reports, error kinds, and
answers asked once per key (``once``).

The official clients are synchronous. Each call runs in a bounded thread pool so the event loop (and
every other object's reconcile) keeps going; before it runs, it takes a token from its quota bucket;
after, it is reported to the ``CallObserver`` (the operator's metrics) by API, method and HTTP code; a failure
becomes a ``GoogleError`` with a ``Kind``. The adapters count nothing themselves.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import requests
from google.api_core import exceptions as core_exceptions
from googleapiclient.errors import HttpError

from iaprun_operator.core.errors import DOMAIN_RESTRICTED_SHARING, GoogleError, Kind, Violation
from iaprun_operator.google.ratelimit import TokenBucket

T = TypeVar("T")

_BY_STATUS = {
    "ABORTED": Kind.CONFLICT,
    "ALREADY_EXISTS": Kind.ALREADY_EXISTS,
    "FAILED_PRECONDITION": Kind.FAILED_PRECONDITION,
    "INVALID_ARGUMENT": Kind.INVALID,
    "OUT_OF_RANGE": Kind.INVALID,
    "NOT_FOUND": Kind.NOT_FOUND,
    "PERMISSION_DENIED": Kind.PERMISSION,
    "UNAUTHENTICATED": Kind.PERMISSION,
    "RESOURCE_EXHAUSTED": Kind.RATE_LIMITED,
    "UNAVAILABLE": Kind.TRANSIENT,
    "DEADLINE_EXCEEDED": Kind.TRANSIENT,
    "INTERNAL": Kind.TRANSIENT,
    "UNKNOWN": Kind.TRANSIENT,
}
_DRS_MESSAGE = "do not belong to a permitted customer"
"""Domain-restricted sharing's message; Cloud Run's v1 IAM answer carries it without a PreconditionFailure."""
_RATE_REASONS = {"RATE_LIMIT_EXCEEDED", "rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def kind_for(code: int, status: str, reason: str, violations: tuple[Violation, ...] = ()) -> Kind:
    """The kind of a Google error from its HTTP code, ``error.status``, ErrorInfo reason and PreconditionFailure
    violations."""
    if reason in _RATE_REASONS or code == 429:
        return Kind.RATE_LIMITED
    if reason == "SERVICE_DISABLED":
        return Kind.API_NOT_ENABLED
    if any(v.type == DOMAIN_RESTRICTED_SHARING for v in violations):
        return Kind.ORG_POLICY
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    # Else by HTTP code; any other (408, 5xx, a code Google never documented) is worth another try.
    return {
        400: Kind.INVALID,
        401: Kind.PERMISSION,
        403: Kind.PERMISSION,
        404: Kind.NOT_FOUND,
        409: Kind.CONFLICT,
        412: Kind.CONFLICT,
    }.get(code, Kind.TRANSIENT)


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _error_body(raw: bytes | str | None) -> dict[str, Any]:
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _without_html(message: str, code: int) -> str:
    """Google's front end answers an unknown location or path with an HTML page, not an API error: say so in
    one line instead of passing the page on into a condition message."""
    if "<html" not in message.lower():
        return message
    return f"HTTP {code} from Google's front end, with an HTML page instead of an API error (no such location or path)"


def _error_info(error: dict[str, Any]) -> dict[str, Any]:
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
            return detail
    return {}


def _reason_of(error: dict[str, Any]) -> str:
    info = _error_info(error)
    if info:
        return str(info.get("reason", ""))
    for legacy in error.get("errors") or ():
        if isinstance(legacy, dict) and legacy.get("reason"):
            return str(legacy["reason"])
    return ""


def _metadata_of(error: dict[str, Any]) -> dict[str, str]:
    metadata = _error_info(error).get("metadata")
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def _violations_of(error: dict[str, Any]) -> tuple[Violation, ...]:
    """The PreconditionFailure violations of an error body (domain-restricted sharing names its members here)."""
    out: list[Violation] = []
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.PreconditionFailure"):
            for v in detail.get("violations") or ():
                if isinstance(v, dict):
                    out.append(
                        Violation(str(v.get("type", "")), str(v.get("subject", "")), str(v.get("description", "")))
                    )
    return tuple(out)


def _from_body(error: dict[str, Any], code: int, fallback: str, *, api: str, method: str, headers: Any) -> GoogleError:
    """A ``GoogleError`` from Google's JSON error envelope (``fallback``: the client's message when it has none)."""
    status = str(error.get("status", ""))
    reason = _reason_of(error)
    violations = _violations_of(error)
    message = str(error.get("message") or _without_html(fallback, code))
    kind = kind_for(code, status, reason, violations)
    if kind in (Kind.INVALID, Kind.FAILED_PRECONDITION) and _DRS_MESSAGE in message:
        kind = Kind.ORG_POLICY
    return GoogleError(
        kind,
        message,
        api=api,
        method=method,
        code=code,
        reason=reason,
        retry_after=_retry_after(headers),
        metadata=_metadata_of(error),
        violations=violations,
    )


def to_google_error(exc: BaseException, *, api: str, method: str) -> GoogleError | None:
    """Map a client exception to a ``GoogleError``; None for exceptions that are bugs, not API answers."""
    if isinstance(exc, core_exceptions.GoogleAPICallError):
        response = getattr(exc, "response", None)
        error = _error_body(getattr(response, "content", None)) if response is not None else {}
        code = int(exc.code or 0) if isinstance(exc.code, int) else int(getattr(exc.code, "value", [0])[0] or 0)
        if not error.get("details") and getattr(exc, "reason", None):
            # An error without the HTTP body (a failed operation): api_core keeps ErrorInfo's reason and metadata.
            info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": exc.reason}
            error = {**error, "details": [{**info, "metadata": dict(getattr(exc, "metadata", None) or {})}]}
        return _from_body(error, code, exc.message, api=api, method=method, headers=getattr(response, "headers", None))
    if isinstance(exc, HttpError):
        error = _error_body(exc.content)
        return _from_body(
            error, int(exc.status_code or 0), str(exc.reason or exc), api=api, method=method, headers=exc.resp
        )
    if isinstance(exc, requests.exceptions.RequestException | socket.timeout | TimeoutError | ConnectionError):
        return GoogleError(Kind.TRANSIENT, f"{type(exc).__name__}: {exc}", api=api, method=method)
    if isinstance(exc, core_exceptions.RetryError):
        return GoogleError(Kind.TRANSIENT, str(exc), api=api, method=method)
    return None


class CallObserver(Protocol):
    """Told about every Google call and quota wait (``metrics.GOOGLE_CALLS`` counts them)."""

    def call(self, api: str, method: str, code: str, seconds: float) -> None: ...
    def rate_limited(self, api: str) -> None: ...
    def quota_wait(self, api: str, seconds: float) -> None: ...


class Unobserved:
    """A ``CallObserver`` that keeps nothing (tests, tools)."""

    def call(self, api: str, method: str, code: str, seconds: float) -> None:
        pass

    def rate_limited(self, api: str) -> None:
        pass

    def quota_wait(self, api: str, seconds: float) -> None:
        pass


class Calls:
    """The one place blocking Google calls are made from."""

    def __init__(self, *, threads: int, observer: CallObserver | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="google")
        self._observer = observer or Unobserved()

    async def run(self, api: str, method: str, bucket: TokenBucket | None, fn: Callable[[], T]) -> T:
        if bucket is not None:
            await bucket.acquire(api)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        code = "200"
        try:
            return await loop.run_in_executor(self._pool, fn)
        except Exception as exc:
            error = to_google_error(exc, api=api, method=method)
            if error is None:
                code = "exception"
                raise
            code = str(error.code or error.kind.value)
            if error.kind is Kind.RATE_LIMITED:
                self._observer.rate_limited(api)
                if bucket is not None:
                    bucket.pause(error.retry_after or 10.0)
            raise error from exc
        finally:
            self._observer.call(api, method, code, time.monotonic() - started)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def once(cache: dict[str, asyncio.Future[T]], key: str, make: Callable[[], Awaitable[T]]) -> T:
    """``make()``'s answer for ``key``, asked once: concurrent askers share the call in flight, a failure is asked
    again by the next one, and no asker's cancellation cancels the call the others wait for."""
    task = cache.get(key)
    if task is None or (task.done() and task.exception() is not None):
        task = asyncio.ensure_future(make())
        cache[key] = task
    return await asyncio.shield(task)
