"""The small set of error kinds every Google adapter maps its failures to.

The reconcile loop decides from the kind alone. It stalls with Google's message on permission, invalid and
failed precondition (retrying cannot help), and retries the pass with backoff on everything else: transient,
rate-limited, conflict (after its own read-modify-write retries), and already exists (a create that lost a
race finds the service at the next pass's read). Not found is an answer where an adapter expects it (a
service that does not exist, or is already deleted); anywhere else it is retried like the rest.
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
