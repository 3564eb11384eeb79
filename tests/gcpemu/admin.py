"""``AdminClient``: a small synchronous Python client for the emulator's ``/_emulator/`` admin API.

Stdlib only (urllib), so it works from sync tests, async tests (the server runs in another thread or
process) and from scripts.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class AdminError(RuntimeError):
    pass


class AdminClient:
    """Talks to ``{base_url}/_emulator/...``."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    # ------------------------------------------------------------------------------------------------ plumbing

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}/_emulator/{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AdminError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from None

    # ------------------------------------------------------------------------------------------------ general

    def health(self) -> dict[str, Any]:
        return dict(self.call("GET", "health"))

    def reset(self) -> None:
        """Empty world, starting config, clock offset 0, no faults/latency/quota buckets, empty log."""
        self.call("POST", "reset")

    def state(self) -> dict[str, Any]:
        return dict(self.call("GET", "state"))

    def config(self) -> dict[str, Any]:
        return dict(self.call("GET", "config"))

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change any config key (see docs/emulator.md), e.g. ``configure(operation_delay=0)``."""
        return dict(self.call("PATCH", "config", changes))

    def stats(self) -> dict[str, Any]:
        return dict(self.call("GET", "stats"))

    # ------------------------------------------------------------------------------------------------ request log

    def requests(
        self,
        method: str | None = None,
        *,
        since: int = 0,
        status: int | None = None,
        tag: str | None = None,
        include_tagged: bool = True,
    ) -> list[dict[str, Any]]:
        """Logged API calls (oldest first); ``method`` is an fnmatch pattern like ``run.services.*``."""
        q = {"method": method, "since": since, "status": status, "tag": tag}
        if not include_tagged:
            q["include_tagged"] = "false"
        return list(self.call("GET", "requests", query=q))

    def clear_requests(self) -> None:
        self.call("DELETE", "requests")

    def counts(self) -> dict[str, int]:
        """Per-method call counts, excluding requests tagged ``out-of-band``."""
        return dict(self.call("GET", "counts")["methods"])

    def last_seq(self) -> int:
        return int(self.call("GET", "counts")["last_seq"])

    # ------------------------------------------------------------------------------------------------ faults

    def inject_error(
        self,
        method: str = "*",
        *,
        http: int = 503,
        status: str = "",
        message: str = "The service is currently unavailable.",
        rate: float = 1.0,
        count: int | None = None,
        delay: float = 0.0,
        reason: str = "",
    ) -> int:
        """Fail matching calls with a Google error envelope; returns the rule id."""
        spec = {
            "method": method,
            "http": http,
            "status": status,
            "message": message,
            "rate": rate,
            "count": count,
            "delay": delay,
            "reason": reason,
        }
        return int(self.call("POST", "faults", spec)["id"])

    def hang(self, method: str = "*", seconds: float = 60.0, *, count: int | None = None) -> int:
        """Delay matching calls by ``seconds`` then answer normally (longer than a client timeout = hang)."""
        return int(self.call("POST", "faults", {"method": method, "http": 0, "delay": seconds, "count": count})["id"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "faults"))

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def set_latency(self, method: str = "*", seconds: float = 0.0) -> dict[str, float]:
        """Add ``seconds`` to every matching call (fnmatch pattern); 0 removes the entry."""
        table = dict(self.call("GET", "config")["latency"])
        if seconds:
            table[method] = seconds
        else:
            table.pop(method, None)
        return dict(self.call("PUT", "latency", table))

    # ------------------------------------------------------------------------------------------------ quotas

    def set_quota(
        self,
        api: str = "run.googleapis.com",
        *,
        read: int | None = None,
        write: int | None = None,
        enabled: bool = True,
        retry_after: int | None = None,
    ) -> dict[str, Any]:
        """Enable quotas and set per-minute limits (per project and region) for one API; refills buckets."""
        limits: dict[str, int] = {}
        if read is not None:
            limits["read"] = read
        if write is not None:
            limits["write"] = write
        body: dict[str, Any] = {"enabled": enabled, "limits": {api: limits}}
        if retry_after is not None:
            body["retry_after"] = retry_after
        return dict(self.call("PUT", "quotas", body))

    def quotas(self) -> dict[str, Any]:
        return dict(self.call("GET", "quotas"))

    # ------------------------------------------------------------------------------------------------ permissions

    def set_permissions(
        self,
        caller: str,
        *,
        allow: list[str] | None = None,
        deny: list[str] | None = None,
        deny_projects: list[str] | None = None,
        enabled: bool = True,
        default_allow: bool | None = None,
    ) -> dict[str, Any]:
        """Turn the permission model on and set what ``caller`` (``X-Emulator-Caller`` or a token's
        identity) may do: ``allow``/``deny`` are fnmatch patterns of permissions like ``run.services.*``."""
        entry: dict[str, Any] = {}
        if allow is not None:
            entry["allow"] = allow
        if deny is not None:
            entry["deny"] = deny
        if deny_projects is not None:
            entry["deny_projects"] = deny_projects
        body: dict[str, Any] = {"enabled": enabled, "callers": {caller: entry}}
        if default_allow is not None:
            body["default_allow"] = default_allow
        return dict(self.call("PUT", "permissions", body))

    def set_token(self, token: str, identity: str) -> None:
        """Map ``Authorization: Bearer {token}`` to a caller identity."""
        self.call("PUT", "permissions", {"tokens": {token: identity}})

    def disable_permissions(self) -> None:
        self.call("PUT", "permissions", {"enabled": False})

    def set_act_as(self, caller: str, accounts: list[str]) -> None:
        """Model ``iam.serviceAccounts.actAs``: ``caller`` (``*`` for anyone not listed) may deploy services that
        run as ``accounts`` (fnmatch patterns) and no others. ``reset`` turns the model off again."""
        self._set_entry("act_as", caller, list(accounts))

    def set_secret_access(self, secret: str, accounts: list[str]) -> None:
        """Model Secret Manager access: runtime ``accounts`` (fnmatch) may read ``projects/{p}/secrets/{s}``;
        secrets never named here are readable by nobody once one is."""
        self._set_entry("secret_accessors", secret, list(accounts))

    def set_api_enabled(self, project: str, api: str, enabled: bool) -> None:
        """Enable or disable ``api`` (``run.googleapis.com``) for calls whose consumer is ``project`` (ID or
        number): the resource's project for Cloud Run and IAP, the caller's own for Resource Manager and Service
        Usage (``set_caller_project``)."""
        table = {k: list(v) for k, v in (self.config().get("disabled_apis") or {}).items()}
        apis = [a for a in table.get(project, []) if a != api] + ([] if enabled else [api])
        table[project] = apis
        self.configure(disabled_apis={k: v for k, v in table.items() if v})

    def set_caller_project(self, caller: str, project: str) -> None:
        """The project of ``caller``'s credentials (``anonymous`` for a caller without identity)."""
        self._set_entry("caller_projects", caller, project)

    def restrict_member_domains(self, project: str, domains: list[str] | None) -> None:
        """Domain-restricted sharing on ``project``: only members of ``domains`` may be named in its IAM
        policies (None lifts it)."""
        self._set_entry("allowed_policy_member_domains", project, None if domains is None else list(domains))

    def set_access_levels(self, identity: str, levels: list[str]) -> None:
        """The access levels ``identity`` (``user:a@b``) meets when it calls a protected URL."""
        self._set_entry("access_levels", identity, list(levels))

    def _set_entry(self, table_name: str, key: str, value: Any) -> None:
        """One entry of the config table ``table_name`` (None removes it); the other entries are kept."""
        table = dict(self.config().get(table_name) or {})
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        self.configure(**{table_name: table})

    # ------------------------------------------------------------------------------------------------ clock, LROs

    def now(self) -> str:
        return str(self.call("GET", "clock")["now"])

    def advance_clock(self, seconds: float) -> str:
        return str(self.call("POST", "clock", {"advance": seconds})["now"])

    def set_clock(self, rfc3339: str) -> str:
        return str(self.call("POST", "clock", {"set": rfc3339})["now"])

    def reset_clock(self) -> str:
        """Back to real time (offset 0)."""
        return str(self.call("POST", "clock", {"reset": True})["now"])

    def set_operation_delay(self, seconds: float, method: str | None = None) -> None:
        """Seconds until create/patch/delete Operations complete (0 = done at once); per method if given."""
        if method is None:
            self.configure(operation_delay=seconds)
        else:
            delays = dict(self.config()["operation_delays"])
            delays[method] = seconds
            self.configure(operation_delays=delays)

    # ------------------------------------------------------------------------------------------------ out-of-band

    def service(self, project: str, region: str, service: str) -> dict[str, Any] | None:
        state = self.state()
        number = state["projects"].get(project, project)
        found = state["services"].get(f"{number}/{region}/{service}")
        return dict(found) if found is not None else None

    def mutate_service(
        self,
        project: str,
        region: str,
        service: str,
        changes: dict[str, Any],
        *,
        bump_generation: bool = True,
        settle: bool = True,
    ) -> dict[str, Any]:
        """Change a stored service as a console user would. ``changes`` maps dotted paths
        (``iapEnabled``, ``template.containers.0.image``) to values (None deletes). Bumps generation and etag
        and (``settle``) rolls out at once."""
        body = {
            "project": project,
            "region": region,
            "service": service,
            "set": changes,
            "bump_generation": bump_generation,
            "settle": settle,
        }
        return dict(self.call("POST", "services/mutate", body))

    def add_binding(
        self,
        project: str,
        region: str,
        service: str,
        role: str,
        member: str,
        *,
        kind: str = "run",
        condition: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Add a binding out of band to the Cloud Run (``kind="run"``) or IAP (``kind="iap"``) policy of a
        service, or (``kind="project"``; region/service ignored) to the project's IAM policy, which both the
        IAP access check and the invoker check inherit."""
        return self._binding("add", project, region, service, role, member, kind=kind, condition=condition)

    def remove_binding(
        self,
        project: str,
        region: str,
        service: str,
        role: str,
        member: str,
        *,
        kind: str = "run",
        condition: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._binding("remove", project, region, service, role, member, kind=kind, condition=condition)

    def _binding(
        self,
        action: str,
        project: str,
        region: str,
        service: str,
        role: str,
        member: str,
        *,
        kind: str,
        condition: dict[str, str] | None,
    ) -> dict[str, Any]:
        body = {
            "project": project,
            "region": region,
            "service": service,
            "role": role,
            "member": member,
            "kind": kind,
            "condition": condition,
        }
        return dict(self.call("POST", f"policies/{action}-binding", body))

    def create_service_agent(self, project: str, service: str = "iap.googleapis.com") -> str:
        """Make a service agent exist (as if generateServiceIdentity ran long ago); returns its email."""
        return str(self.call("POST", "agents", {"project": project, "service": service})["email"])

    def delete_service_agent(self, project: str, service: str = "iap.googleapis.com") -> None:
        self.call("POST", "agents", {"project": project, "service": service, "delete": True})
