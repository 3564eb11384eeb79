"""Google's error envelope: one exception type that every handler raises and the server renders.

Every API here answers errors as ``{"error": {"code", "message", "status", "details": [...]}}`` with
``google.rpc`` detail messages (ErrorInfo, BadRequest, Help). Keeping construction in one place is what makes
the envelopes identical across Cloud Run, IAP, Service Usage and Resource Manager.
"""

from __future__ import annotations

from typing import Any

# google.rpc.Code name -> (gRPC number, HTTP status), from google/rpc/code.proto.
CODES: dict[str, tuple[int, int]] = {
    "OK": (0, 200),
    "CANCELLED": (1, 499),
    "UNKNOWN": (2, 500),
    "INVALID_ARGUMENT": (3, 400),
    "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400),
    "ABORTED": (10, 409),
    "OUT_OF_RANGE": (11, 400),
    "UNIMPLEMENTED": (12, 501),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "DATA_LOSS": (15, 500),
    "UNAUTHENTICATED": (16, 401),
}
HTTP_TO_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
HELP = "type.googleapis.com/google.rpc.Help"


class ApiError(Exception):
    """A Google API error: HTTP code, ``google.rpc.Code`` name, message and typed details."""

    def __init__(
        self,
        status: str,
        message: str,
        *,
        http: int | None = None,
        reason: str | None = None,
        domain: str = "googleapis.com",
        metadata: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http = http if http is not None else CODES.get(status, (2, 500))[1]
        self.details: list[dict[str, Any]] = []
        if reason is not None:
            info: dict[str, Any] = {"@type": ERROR_INFO, "reason": reason, "domain": domain}
            if metadata:
                info["metadata"] = dict(metadata)
            self.details.append(info)
        self.details.extend(details or [])
        self.headers = headers or {}

    @property
    def grpc_code(self) -> int:
        return CODES.get(self.status, (2, 500))[0]

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.http, "message": self.message, "status": self.status}
        if self.details:
            err["details"] = self.details
        return {"error": err}

    def rpc_status(self) -> dict[str, Any]:
        """The ``google.rpc.Status`` form used inside a failed long-running Operation."""
        st: dict[str, Any] = {"code": self.grpc_code, "message": self.message}
        if self.details:
            st["details"] = self.details
        return st


def bad_request(message: str, violations: list[tuple[str, str]], **kw: Any) -> ApiError:
    """400 INVALID_ARGUMENT with a ``google.rpc.BadRequest`` listing field violations."""
    fv: list[dict[str, str]] = []
    for field, desc in violations:
        v = {"description": desc}
        if field:
            v = {"field": field, "description": desc}
        fv.append(v)
    return ApiError("INVALID_ARGUMENT", message, details=[{"@type": BAD_REQUEST, "fieldViolations": fv}], **kw)


def invalid(message: str, field: str = "", *, domain: str = "googleapis.com") -> ApiError:
    """400 INVALID_ARGUMENT with ErrorInfo and a single field violation."""
    err = bad_request(message, [(field, message)], reason="INVALID_ARGUMENT", domain=domain)
    # ErrorInfo first, BadRequest second, as Google orders them.
    err.details.sort(key=lambda d: d["@type"] != ERROR_INFO)
    return err


def not_found(message: str, *, domain: str) -> ApiError:
    return ApiError("NOT_FOUND", message, reason="NOT_FOUND", domain=domain)


def permission_denied(permission: str, resource: str, *, domain: str) -> ApiError:
    return ApiError(
        "PERMISSION_DENIED",
        f"Permission '{permission}' denied on resource '{resource}' (or resource may not exist).",
        reason="IAM_PERMISSION_DENIED",
        domain="iam.googleapis.com",
        metadata={"permission": permission, "resource": resource},
    )


def concurrent_policy_change() -> ApiError:
    return ApiError(
        "ABORTED",
        "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
        reason="ABORTED",
        domain="iam.googleapis.com",
    )


class Html404Error(ApiError):
    """The front end's HTML 404 page (unknown URL or location): not a JSON envelope."""

    PAGE = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n"
        "  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not "
        "found on this server.  <ins>That\u2019s all we know.</ins>\n"
    )

    def __init__(self) -> None:
        super().__init__("NOT_FOUND", "Not Found")
