"""The small set of error kinds every Google adapter maps its failures to.

The reconcile loop decides from the kind alone: retry with backoff (transient, rate-limited, conflict),
stall with the message (permission, invalid), or treat as an answer (not found, already exists).
"""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    TRANSIENT = "Transient"
    RATE_LIMITED = "RateLimited"
    CONFLICT = "Conflict"
    PERMISSION = "PermissionDenied"
    INVALID = "InvalidArgument"
    NOT_FOUND = "NotFound"
    ALREADY_EXISTS = "AlreadyExists"
    FAILED_PRECONDITION = "FailedPrecondition"


RETRYABLE = frozenset({Kind.TRANSIENT, Kind.RATE_LIMITED, Kind.CONFLICT})


class GoogleError(Exception):
    """A failed Google call, with the kind the loop acts on and Google's own message."""

    def __init__(
        self,
        kind: Kind,
        message: str,
        *,
        api: str,
        method: str,
        code: int = 0,
        reason: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{api} {method}: {message}")
        self.kind = kind
        self.message = message
        self.api = api
        self.method = method
        self.code = code
        self.reason = reason
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE
