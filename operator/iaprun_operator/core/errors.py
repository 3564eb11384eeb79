"""The small set of error kinds every Google adapter maps its failures to.

The reconcile loop decides from the kind alone. It stalls with Google's message on permission, invalid and
failed precondition (retrying cannot help), and retries the pass with backoff on everything else: transient,
rate-limited, conflict (after its own read-modify-write retries), and already exists (a create that lost a
race finds the service at the next pass's read). Not found is an answer where an adapter expects it (a
service that does not exist, or is already deleted); anywhere else it is retried like the rest.

Two answers look like others but need a different remedy, so they are kinds of their own: an API that is not
enabled (Google's 403 with ErrorInfo ``SERVICE_DISABLED``: a prerequisite, not a missing role) and a policy
write refused by domain-restricted sharing (Google's 400 ``FAILED_PRECONDITION`` with a PreconditionFailure
violation of ``constraints/iam.allowedPolicyMemberDomains``: an organisation policy, not an invalid spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

DOMAIN_RESTRICTED_SHARING = "constraints/iam.allowedPolicyMemberDomains"


class Kind(Enum):
    TRANSIENT = "Transient"
    RATE_LIMITED = "RateLimited"
    CONFLICT = "Conflict"
    PERMISSION = "PermissionDenied"
    INVALID = "InvalidArgument"
    NOT_FOUND = "NotFound"
    ALREADY_EXISTS = "AlreadyExists"
    FAILED_PRECONDITION = "FailedPrecondition"
    API_NOT_ENABLED = "ApiNotEnabled"
    ORG_POLICY = "OrgPolicyDenied"


@dataclass(frozen=True)
class Violation:
    """One ``google.rpc.PreconditionFailure`` violation: the constraint (``type``), what it is about, why."""

    type: str
    subject: str = ""
    description: str = ""

    @property
    def member(self) -> str:
        """The refused member's email, from the subject ``orgpolicy:projects/P?configvalue=EMAIL``."""
        _, found, value = self.subject.partition("configvalue=")
        if found:
            return value
        words = self.description.split()
        return words[1] if len(words) > 1 and words[0] == "User" else ""


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
        metadata: Mapping[str, str] | None = None,
        violations: tuple[Violation, ...] = (),
    ) -> None:
        super().__init__(f"{api} {method}: {message}")
        self.kind = kind
        self.message = message
        self.api = api
        self.method = method
        self.code = code
        self.reason = reason
        self.retry_after = retry_after
        self.metadata: Mapping[str, str] = dict(metadata or {})
        """The ErrorInfo metadata (``service`` and ``consumer`` for SERVICE_DISABLED)."""
        self.violations = violations


@dataclass(frozen=True)
class Prerequisite:
    """An API the operator needs and Google says is not enabled: which, and in which consumer project."""

    service: str
    title: str
    consumer_number: str
    consumer: str
    """The project to name in ``gcloud --project``: the object's project ID when the consumer is that project
    (same number), else the consumer's number (the project of the operator's credentials or quota project)."""
    own_project: bool

    @property
    def command(self) -> str:
        return f"gcloud services enable {self.service} --project={self.consumer}"

    def describe(self) -> str:
        where = (
            f"project {self.consumer} (number {self.consumer_number})"
            if self.own_project
            else f"project number {self.consumer_number}, the project of the operator's Google credentials (or its "
            "quota project), where Google checks this API"
        )
        return (
            f"{self.title} ({self.service}) is not enabled in {where}. Enable it: {self.command}; the object "
            "recovers by itself at a later pass (Google may take a few minutes to propagate it)"
        )


_TITLES = {
    "run.googleapis.com": "Cloud Run Admin API",
    "iap.googleapis.com": "Cloud Identity-Aware Proxy API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "serviceusage.googleapis.com": "Service Usage API",
}


def prerequisite(error: GoogleError, *, project: str, number: str | None) -> Prerequisite:
    """What an API_NOT_ENABLED error asks for, for an object in ``project`` (its number, when known)."""
    service = error.metadata.get("service") or error.api
    consumer_number = error.metadata.get("consumer", "").removeprefix("projects/") or (number or project)
    own = number is not None and consumer_number == number
    return Prerequisite(
        service=service,
        title=error.metadata.get("serviceTitle") or _TITLES.get(service, service),
        consumer_number=consumer_number,
        consumer=project if own else consumer_number,
        own_project=own,
    )


@dataclass(frozen=True)
class OrgPolicyRefusal:
    """A policy write refused by domain-restricted sharing: the constraint and the members it names."""

    constraint: str
    members: tuple[str, ...] = field(default_factory=tuple)

    def describe(self, resource: str) -> str:
        who = ", ".join(self.members) if self.members else "members Google did not name"
        return (
            f"the organisation policy {self.constraint} (domain-restricted sharing) refused the IAM policy of "
            f"{resource}: {who} do(es) not belong to a permitted customer. Remove them from spec.iap.accessors, "
            "or ask the organisation's policy admins to permit their domain and then change the spec; the "
            "operator does not repeat the refused write until then"
        )


def org_policy_refusal(error: GoogleError) -> OrgPolicyRefusal:
    members = tuple(sorted({v.member for v in error.violations if v.member}))
    constraint = next((v.type for v in error.violations if v.type), DOMAIN_RESTRICTED_SHARING)
    return OrgPolicyRefusal(constraint, members)
