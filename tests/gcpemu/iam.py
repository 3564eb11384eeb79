"""IAM policy semantics shared by Cloud Run service policies and IAP resource policies.

Versions and conditions, etags, the empty policy (``{"etag": "ACAB"}``), member syntax, the principal limits,
service-account existence, the ``_withcond_`` rewrite for old readers, domain-restricted sharing
(``gcpemu.orgpolicy``), and conditions: every expression is parsed by a real CEL implementation (cel-python)
when written, refused with a 400 when it does not parse, and evaluated at the protected URL with the request's
time and the caller's access levels.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from gcpemu import orgpolicy
from gcpemu.errors import ApiError, concurrent_policy_change, invalid

EMPTY_ETAG = "ACAB"  # base64 of 0x00 0x20 0x01: what Google returns for a never-set policy
_etag_counter = itertools.count(1)

_EMAIL = r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"
_MEMBER_RES = [
    re.compile(rf"^user:{_EMAIL}$"),
    re.compile(rf"^group:{_EMAIL}$"),
    re.compile(rf"^serviceAccount:{_EMAIL}$"),
    re.compile(r"^serviceAccount:[a-z][-a-z0-9.:]*\.svc\.id\.goog\[[^/\]]+/[^/\]]+\]$"),
    re.compile(r"^domain:[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"),
    re.compile(r"^principal://iam\.googleapis\.com/\S+$"),
    re.compile(r"^principalSet://iam\.googleapis\.com/\S+$"),
    re.compile(rf"^deleted:(user|group|serviceAccount):{_EMAIL}\?uid=\d+$"),
    re.compile(r"^deleted:principal://\S+$"),
    re.compile(r"^(allUsers|allAuthenticatedUsers)$"),
    re.compile(r"^projectOwner:[a-z][-a-z0-9]+$"),
    re.compile(r"^projectEditor:[a-z][-a-z0-9]+$"),
    re.compile(r"^projectViewer:[a-z][-a-z0-9]+$"),
]
_AGENT = re.compile(r"^service-(\d+)@gcp-sa-([a-z0-9-]+)\.iam\.gserviceaccount\.com$")

# Permissions carried by the roles the emulator reasons about (for testIamPermissions and access checks).
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/run.invoker": frozenset({"run.routes.invoke"}),
    "roles/run.servicesInvoker": frozenset({"run.routes.invoke"}),
    "roles/run.developer": frozenset(
        {
            "run.routes.invoke",
            "run.services.get",
            "run.services.list",
            "run.services.update",
            "run.services.create",
            "run.services.delete",
            "run.services.getIamPolicy",
            "run.operations.get",
        }
    ),
    "roles/run.admin": frozenset(
        {
            "run.routes.invoke",
            "run.services.get",
            "run.services.list",
            "run.services.update",
            "run.services.create",
            "run.services.delete",
            "run.services.getIamPolicy",
            "run.services.setIamPolicy",
            "run.operations.get",
        }
    ),
    "roles/run.viewer": frozenset({"run.services.get", "run.services.list", "run.services.getIamPolicy"}),
    "roles/iap.httpsResourceAccessor": frozenset({"iap.webServiceVersions.accessViaIAP"}),
    "roles/iap.admin": frozenset(
        {
            "iap.webServices.getIamPolicy",
            "iap.webServices.setIamPolicy",
            "iap.web.getIamPolicy",
            "iap.web.setIamPolicy",
            "iap.webServiceVersions.getIamPolicy",
            "iap.webServiceVersions.setIamPolicy",
        }
    ),
}


def new_etag() -> str:
    """An opaque base64 etag like Google's (``BwY...``): 0x07 + 7 bytes of a process-wide counter."""
    n = next(_etag_counter)
    return base64.b64encode(b"\x07" + n.to_bytes(7, "big")).decode()


@dataclass
class Policy:
    """A stored IAM policy. ``etag`` is EMPTY_ETAG until the first write."""

    bindings: list[dict[str, Any]] = field(default_factory=list)
    audit_configs: list[dict[str, Any]] = field(default_factory=list)
    etag: str = EMPTY_ETAG
    written: bool = False

    def has_conditions(self) -> bool:
        return any(b.get("condition") for b in self.bindings)

    def view(self, requested_version: int = 0) -> dict[str, Any]:
        """The policy as getIamPolicy returns it for ``options.requestedPolicyVersion``."""
        if requested_version not in (0, 1, 3):
            raise invalid(
                f"Invalid requested policy version: {requested_version}. Valid values are 0, 1 and 3.",
                "options.requested_policy_version",
            )
        out: dict[str, Any] = {}
        if self.bindings:
            cond = self.has_conditions()
            if cond and requested_version >= 3:
                out["version"] = 3
                out["bindings"] = copy.deepcopy(self.bindings)
            else:
                out["version"] = 1
                bs = []
                for b in self.bindings:
                    nb = {"role": b["role"], "members": list(b["members"])}
                    if b.get("condition"):
                        h = hashlib.sha1(repr(b["condition"]).encode()).hexdigest()[:20]
                        nb["role"] = f"{b['role']}_withcond_{h}"
                    bs.append(nb)
                out["bindings"] = bs
        elif self.written:
            out["version"] = 1
        if self.audit_configs:
            out["auditConfigs"] = copy.deepcopy(self.audit_configs)
        out["etag"] = self.etag
        return out


@dataclass
class IamRules:
    """The knobs and look-ups a policy write needs (limits, which service accounts exist)."""

    max_principals: int = 1500
    max_groups: int = 250
    allow_conditions: bool = True
    allow_all_users: bool = True
    allow_all_authenticated: bool = True
    allowed_member_domains: tuple[str, ...] | None = None
    """Domain-restricted sharing in force (None: no such organisation policy); see ``gcpemu.orgpolicy``."""
    org_project: str = ""


def validate_member(member: str) -> None:
    if not isinstance(member, str) or not any(r.match(member) for r in _MEMBER_RES):
        if isinstance(member, str) and ":" not in member:
            msg = f"Invalid member '{member}'. Policy members must be of the form \"<type>:<value>\"."
        else:
            msg = f"Invalid principal: {member}. Unknown principal type or malformed identifier."
        raise invalid(msg, "policy.bindings.members")


def agent_project_number(email: str) -> tuple[str, str] | None:
    """``service-N@gcp-sa-X.iam.gserviceaccount.com`` -> (N, X); None for ordinary accounts."""
    m = _AGENT.match(email)
    return (m.group(1), m.group(2)) if m else None


def set_policy(
    current: Policy,
    body: dict[str, Any],
    rules: IamRules,
    account_exists: Any,
) -> Policy:
    """Apply a setIamPolicy request body to ``current``; returns the new policy or raises ApiError.

    ``account_exists(email) -> bool`` decides whether a ``serviceAccount:`` member exists.
    """
    pol = body.get("policy") or {}
    mask = body.get("updateMask")
    fields = {camel_path(p) for p in mask.split(",")} if mask else {"bindings", "etag"}
    etag = pol.get("etag")
    if etag and etag != current.etag:
        raise concurrent_policy_change()
    version = int(pol.get("version") or 0)
    if version not in (0, 1, 3):
        raise invalid(f"Invalid policy version: {version}. Valid values are 0, 1 and 3.", "policy.version")
    bindings_in = (pol.get("bindings") or []) if "bindings" in fields else current.bindings
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    principals: set[str] = set()
    groups: set[str] = set()
    has_cond = False
    for i, b in enumerate(bindings_in):
        role = b.get("role") or ""
        if not role.startswith(("roles/", "projects/", "organizations/")):
            raise invalid(f"Role ({role}) does not exist in the resource's hierarchy.", f"policy.bindings[{i}].role")
        if "_withcond_" in role:
            raise invalid(
                f"Role {role} is a placeholder for a conditional role binding; set the policy at version 3.",
                f"policy.bindings[{i}].role",
            )
        cond = b.get("condition")
        if cond:
            has_cond = True
            if not rules.allow_conditions:
                raise invalid("Conditions are not supported for this resource type.", f"policy.bindings[{i}].condition")
            if not cond.get("expression"):
                raise invalid("Condition expression is required.", f"policy.bindings[{i}].condition.expression")
            problem = expression_error(str(cond["expression"]))
            if problem is not None:
                # Google's exact wording for an unparseable expression is not recorded (gcp-api.md); the code
                # (400 INVALID_ARGUMENT) and the field are.
                raise invalid(
                    f"Condition expression is invalid: {problem}", f"policy.bindings[{i}].condition.expression"
                )
        members = b.get("members") or []
        for m in members:
            validate_member(m)
            if m == "allUsers" and not rules.allow_all_users:
                raise invalid(
                    "allUsers is not a supported member for this resource type.", f"policy.bindings[{i}].members"
                )
            if m.startswith("serviceAccount:") and "[" not in m and not account_exists(m.split(":", 1)[1]):
                raise invalid(f"Service account {m.split(':', 1)[1]} does not exist.", "policy.bindings.members")
            principals.add(m)
            if m.startswith("group:"):
                groups.add(m)
        key = (role, repr(sorted(cond.items())) if cond else "")
        tgt = merged.setdefault(key, {"role": role, "members": []})
        if cond:
            tgt["condition"] = dict(cond)
        for m in members:
            if m not in tgt["members"]:
                tgt["members"].append(m)
    if has_cond and version < 3:
        raise invalid(
            f"Invalid policy version: {version or 1}. Policies with conditional role bindings must specify version 3.",
            "policy.version",
        )
    if current.has_conditions() and version < 3 and etag:
        raise invalid(
            "The policy contains conditional role bindings; setIamPolicy must specify version 3.",
            "policy.version",
        )
    orgpolicy.check(merged.values(), rules, present={m for b in current.bindings for m in b.get("members") or ()})
    if len(principals) > rules.max_principals:
        raise invalid(
            f"The number of members in the policy ({len(principals)}) is larger than the maximum allowed "
            f"size {rules.max_principals}.",
            "policy.bindings",
        )
    if len(groups) > rules.max_groups:
        raise invalid(f"The number of groups in the policy exceeds the maximum of {rules.max_groups}.", "policy")
    return Policy(
        bindings=[b for b in merged.values() if b["members"]],
        audit_configs=list(pol.get("auditConfigs") or []) if "auditConfigs" in fields else list(current.audit_configs),
        etag=new_etag(),
        written=True,
    )


def camel_path(p: str) -> str:
    p = p.strip()
    head, *rest = p.split("_")
    return head + "".join(x[:1].upper() + x[1:] for x in rest)


# ----------------------------------------------------------------------------------------------------------
# Access checks


def member_matches(member: str, identity: str | None, groups: dict[str, list[str]]) -> bool:
    """Does binding ``member`` cover caller ``identity`` (``user:a@b`` / ``serviceAccount:...``)?"""
    if member == "allUsers":
        return True
    if identity is None:
        return False
    if member == "allAuthenticatedUsers" or member == identity:
        return True
    if member.startswith("group:"):
        return identity in groups.get(member, [])
    if member.startswith("domain:") and "@" in identity and identity.startswith(("user:", "group:")):
        return identity.rsplit("@", 1)[1].lower() == member[7:].lower()
    return False


def holds(
    policy: Policy,
    permission: str,
    identity: str | None,
    groups: dict[str, list[str]],
    now: dt.datetime | Request,
) -> bool:
    """Whether ``identity`` holds ``permission`` through some binding whose condition is true for the request
    (``now``: a bare time is a request with no access levels)."""
    for b in policy.bindings:
        perms = ROLE_PERMISSIONS.get(b["role"], frozenset())
        if permission not in perms:
            continue
        if not any(member_matches(m, identity, groups) for m in b["members"]):
            continue
        cond = b.get("condition")
        if cond and not evaluate_condition(cond.get("expression", ""), now):
            continue
        return True
    return False


_CEL = celpy.Environment()


@functools.lru_cache(maxsize=1024)
def _compiled(expression: str) -> celpy.Runner:
    """The expression parsed by a real CEL implementation (cel-python), once per distinct text."""
    return _CEL.program(_CEL.compile(expression))


def expression_error(expression: str) -> str | None:
    """Why Google would refuse ``expression`` as a condition (None: it parses as CEL)."""
    try:
        _compiled(expression)
    except CELParseError as error:
        return " ".join(str(error).split())
    return None


@dataclass(frozen=True)
class Request:
    """The request attributes a condition may read: ``request.time``, ``request.auth.access_levels``,
    ``request.host`` and ``request.path``."""

    time: dt.datetime
    access_levels: tuple[str, ...] = ()
    host: str = ""
    path: str = ""

    def activation(self) -> dict[str, Any]:
        levels = celtypes.ListType(celtypes.StringType(a) for a in self.access_levels)
        auth = celtypes.MapType({celtypes.StringType("access_levels"): levels})
        request = celtypes.MapType(
            {
                celtypes.StringType("time"): celtypes.TimestampType(self.time.astimezone(dt.UTC)),
                celtypes.StringType("auth"): auth,
                celtypes.StringType("host"): celtypes.StringType(self.host),
                celtypes.StringType("path"): celtypes.StringType(self.path),
            }
        )
        return {"request": request}


def evaluate_condition(expression: str, request: Request | dt.datetime) -> bool:
    """Evaluate a condition as IAM does: true grants; false, or an error (an unknown attribute, a type
    mismatch), does not."""
    if isinstance(request, dt.datetime):
        request = Request(time=request)
    try:
        result = _compiled(expression).evaluate(request.activation())
    except (CELParseError, CELEvalError, TypeError, ValueError):
        return False
    return isinstance(result, celtypes.BoolType) and bool(result)


def check_policy_version_param(raw: str | None) -> int:
    if raw in (None, ""):
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"Invalid value at 'options.requested_policy_version' (TYPE_INT32), \"{raw}\"",
        ) from None
