"""The service's own URL, answered the way IAP and Cloud Run's invoker check would.

Requests reach it by Host header (``{svc}-{hash}-{code}.a.run.app`` or ``{svc}-{number}.{region}.run.app``)
or by path prefix ``/_run/{host}/...``. The test user comes from ``X-Emulator-User``
(``user:alice@example.com``); there is no user without it.

Sign-in comes first, as at Google: with IAP's Google-managed OAuth client (no ``clientId`` in the service's
IAP settings) only users of the project's organisation's domains can sign in, and nobody in a project with
no organisation; Google's consent screen then says ``Error 403: org_internal``. IAP then evaluates the
conditions of accessor bindings with the request's time, host and path and the access levels the user meets
(``access_levels`` in the config, ``request.auth.access_levels``). See docs/emulator.md for the decision table.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gcpemu.iam import Policy, Request, holds

if TYPE_CHECKING:
    from gcpemu.server import Emulator
    from gcpemu.state import Project

IAP_HEADER = {"X-Goog-IAP-Generated-Response": "true"}

_FORBIDDEN = (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
    "<title>403 Forbidden</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>Error: Forbidden</h1>\n"
    "<h2>Your client does not have permission to get URL <code>{path}</code> from this server.</h2>\n"
    "<h2></h2>\n</body></html>\n"
)


def user_of(request: web.BaseRequest) -> str | None:
    raw = request.headers.get("X-Emulator-User", "").strip()
    if not raw:
        return None
    if ":" not in raw and "@" in raw:
        return f"user:{raw}"
    return raw


def serving_revision(d: dict[str, Any], tagged: str | None) -> str:
    """The revision a URL reaches: a traffic tag's ``{tag}---{svc}-{hash}-{code}.a.run.app`` host (registered like
    the others, so :func:`serve` checks it the same way) its tagged revision; the main URL the largest share
    (a LATEST target is the latest ready revision). Empty when the service never became ready."""
    ready = str(d.get("latestReadyRevision", "")).rsplit("/", 1)[-1]
    if not ready or tagged:
        return tagged or ready
    targets = [t for t in d.get("trafficStatuses") or [] if int(t.get("percent") or 0) > 0]
    if not targets:
        return ready
    top = max(targets, key=lambda t: int(t.get("percent") or 0))
    return str(top.get("revision") or ready)


def _wants_html(request: web.BaseRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "text/html" in accept


async def serve(emu: Emulator, request: web.BaseRequest, host: str, path: str) -> web.Response:
    """Answer one request to a service URL; ``path`` is the path on that host (with query)."""
    bare = host.split(":")[0].lower()
    key = emu.world.hosts.get(bare)
    rec = emu.world.services.get(key) if key else None
    if rec is None or rec.deleting:
        return web.Response(status=404, text=f"Error: Page not found\nThe requested URL {path} was not found.\n")
    d = rec.data
    if d.get("ingress") in ("INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_NONE"):
        return web.Response(status=404, text=f"Error: Page not found\nThe requested URL {path} was not found.\n")
    revision = serving_revision(d, rec.tag_hosts.get(bare))
    if not revision:
        return web.Response(status=503, text="Service Unavailable\n")
    user = user_of(request)
    now = emu.clock.now()
    groups = emu.config.groups
    run_policy = emu.world.run_policies.get(key or ("", "", ""), Policy())
    number = rec.project.number
    if d.get("iapEnabled"):
        if user is None:
            mode = emu.config.unauthenticated_mode
            if mode == "redirect" or (mode == "auto" and _wants_html(request)):
                redirect = urllib.parse.quote(f"https://{host}/_gcp_iap/handle_redirect", safe="")
                loc = (
                    "https://accounts.google.com/o/oauth2/v2/auth?client_id=emulator-iap.apps.googleusercontent.com"
                    f"&response_type=code&scope=openid+email&redirect_uri={redirect}&state=emulator"
                )
                return web.Response(status=302, headers={"Location": loc, **IAP_HEADER}, text="")
            return web.Response(status=401, headers=IAP_HEADER, text="Invalid IAP credentials: empty token\n")
        refused = _sign_in_refused(emu, rec.project, key, user)
        if refused is not None:
            return refused
        w = emu.world
        # IAP access is inherited: service, then region (cloud_run-{region}), then all web services, then
        # the project's own IAM policy.
        chain = [
            w.iap_policies.get(key or ("", "", ""), Policy()),
            w.iap_other_policies.get(f"projects/{number}/iap_web/cloud_run-{rec.region}", Policy()),
            w.iap_other_policies.get(f"projects/{number}/iap_web", Policy()),
            w.project_policies.get(number, Policy()),
        ]
        seen = Request(
            time=now,
            access_levels=tuple(emu.config.access_levels.get(user, ())),
            host=bare,
            path=path.split("?", 1)[0],
        )
        if not any(holds(p, "iap.webServiceVersions.accessViaIAP", user, groups, seen) for p in chain):
            return web.Response(
                status=403,
                headers=IAP_HEADER,
                text="You don't have access. Please contact your administrator to request access to this "
                f"resource ({user}).\n",
            )
        if not d.get("invokerIamDisabled"):
            agent = f"service-{number}@gcp-sa-iap.iam.gserviceaccount.com"
            if not emu.account_exists(agent):
                return web.Response(status=403, headers=IAP_HEADER, text="The IAP service account is not provisioned\n")
            member = f"serviceAccount:{agent}"
            project_policy = emu.world.project_policies.get(number, Policy())
            if not any(holds(p, "run.routes.invoke", member, groups, now) for p in (run_policy, project_policy)):
                return web.Response(status=403, content_type="text/html", text=_FORBIDDEN.format(path=path))
        return _app(rec.service_id, revision, user)
    project_policy = emu.world.project_policies.get(number, Policy())
    if not d.get("invokerIamDisabled") and not any(
        holds(p, "run.routes.invoke", user, groups, now) for p in (run_policy, project_policy)
    ):
        return web.Response(status=403, content_type="text/html", text=_FORBIDDEN.format(path=path))
    return _app(rec.service_id, revision, user)


def _sign_in_refused(
    emu: Emulator, project: Project, key: tuple[str, str, str] | None, user: str
) -> web.Response | None:
    """The OAuth sign-in step: None when ``user`` may sign in with the OAuth client the settings use."""
    kind, _, email = user.partition(":")
    if kind != "user":
        return None  # service accounts authenticate with tokens, not through the OAuth consent screen
    settings = emu.world.iap_settings.get(key or ("", "", ""), {})
    if ((settings.get("accessSettings") or {}).get("oauthSettings") or {}).get("clientId"):
        return None
    domains = emu.world.org_domains(project)
    if domains is not None and email.rsplit("@", 1)[-1].lower() in {d.lower() for d in domains}:
        return None
    return web.Response(
        status=403,
        text="Access blocked: this app can only be used within its organization\n"
        f"{email} cannot sign in to this app because it is restricted to users within its organization.\n"
        "Error 403: org_internal\n",
    )


def _app(service: str, revision: str, user: str | None) -> web.Response:
    who = user.split(":", 1)[-1] if user else "anonymous"
    return web.Response(
        status=200,
        text=f"Hello from {service} revision {revision} (user {who})\n",
        headers={"X-Emulator-Service": service, "X-Emulator-Revision": revision},
    )
