"""What Cloud Run checks about a service's runtime identity, beyond the caller's own run.* permissions.

- ``iam.serviceAccounts.actAs``: deploying a service that runs as an account needs actAs on that account
  (the default compute account included). Refused synchronously with Google's 403 (config ``act_as``).
- Secret Manager: the *runtime* account must be able to read every secret the revision references (env
  ``valueSource.secretKeyRef`` and ``volumes[].secret``). Cloud Run accepts the write and the revision then
  fails (config ``secret_accessors``); the message is Google's, one line per denied reference.
- ``invokerIamDisabled``: turning the invoker IAM check off (or on again) also needs
  ``run.services.setIamPolicy``, checked when the permission model is on.

See docs/emulator.md ("Runtime identity") for the sources and what is inferred.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from gcpemu.errors import ApiError

if TYPE_CHECKING:
    from gcpemu.routing import Ctx
    from gcpemu.server import Emulator
    from gcpemu.state import Project

ACT_AS = "iam.serviceaccounts.actAs"
SECRET_ROLE_HINT = (
    "The service account used must be granted the 'Secret Manager Secret Accessor' role "
    "(roles/secretmanager.secretAccessor) at the secret, project or higher level."
)


def runtime_account(emu: Emulator, project: Project, spec: Mapping[str, Any]) -> str:
    """The account the revision runs as: the template's, else the project's default compute account."""
    template = spec.get("template") or {}
    return str(template.get("serviceAccount") or emu.config.default_service_account.format(number=project.number))


def _matches(value: str, patterns: Any) -> bool:
    return any(
        fnmatch.fnmatchcase(value.lower(), str(p).lower().removeprefix("serviceaccount:")) for p in patterns or ()
    )


def check_act_as(ctx: Ctx, project: Project, spec: Mapping[str, Any]) -> None:
    """403 unless the caller may act as the runtime account (``act_as`` None: not modelled, always may)."""
    table = ctx.emu.config.act_as
    if table is None:
        return
    account = runtime_account(ctx.emu, project, spec)
    allowed = table.get(ctx.caller or "anonymous", table.get("*", []))
    if _matches(account, allowed):
        return
    raise ApiError(
        "PERMISSION_DENIED",
        f"Permission '{ACT_AS}' denied on service account {account} (or it may not exist).",
        reason="IAM_PERMISSION_DENIED",
        domain="iam.googleapis.com",
        metadata={"permission": ACT_AS, "resource": f"projects/-/serviceAccounts/{account}"},
    )


def check_invoker_switch(ctx: Ctx, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
    """Setting invokerIamDisabled (true on create, or any change) needs run.services.setIamPolicy."""
    before = bool((old or {}).get("invokerIamDisabled"))
    if bool(new.get("invokerIamDisabled")) == before:
        return
    if ctx.emu.permissions_denied(ctx, "run.services.setIamPolicy"):
        raise ctx.emu.permission_error(ctx, "run.services.setIamPolicy")


def _references(template: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, secret, version) for every Secret Manager reference, ``where`` in Cloud Run's own words."""
    for ci, container in enumerate(template.get("containers") or ()):
        for ei, env in enumerate(container.get("env") or ()):
            ref = ((env.get("valueSource") or {}).get("secretKeyRef")) or {}
            if ref.get("secret"):
                where = f"spec.template.spec.containers[{ci}].env[{ei}].value_from.secret_key_ref.name"
                yield where, str(ref["secret"]), str(ref.get("version") or "latest")
    for vi, volume in enumerate(template.get("volumes") or ()):
        secret = volume.get("secret") or {}
        if secret.get("secret"):
            versions = [str(i.get("version") or "latest") for i in secret.get("items") or ()] or ["latest"]
            for version in dict.fromkeys(versions):
                yield f"spec.template.spec.volumes[{vi}].secret.secret_name", str(secret["secret"]), version


def _secret_name(project: Project, secret: str) -> tuple[str, str, str]:
    """(project as written in messages, the secret's short name, its project for the lookup)."""
    parts = secret.split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "secrets":
        return parts[1], parts[3], parts[1]
    return project.number, secret, project.number


def secret_denials(emu: Emulator, project: Project, spec: Mapping[str, Any]) -> list[str]:
    """Google's message for each secret reference the runtime account may not read (empty: all readable)."""
    table = emu.config.secret_accessors
    if table is None:
        return []
    account = runtime_account(emu, project, spec)
    numbers = dict(emu.config.projects)
    out = []
    for where, secret, version in _references(spec.get("template") or {}):
        shown, name, owner = _secret_name(project, secret)
        aliases = {owner, numbers.get(owner, owner)} | {pid for pid, num in numbers.items() if num == owner}
        holders = [a for alias in aliases for a in table.get(f"projects/{alias}/secrets/{name}", [])]
        if not _matches(account, holders):
            out.append(
                f"{where}: Permission denied on secret: projects/{shown}/secrets/{name}/versions/{version} "
                f"for Revision service account {account}. {SECRET_ROLE_HINT}"
            )
    return out
