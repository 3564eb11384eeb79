"""All Google adapters of one operator process, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from iaprun_operator.google.calls import CallObserver, Calls, Unobserved
from iaprun_operator.google.cloudrun import CloudRun
from iaprun_operator.google.credentials import credentials
from iaprun_operator.google.discovery import DiscoveryClients
from iaprun_operator.google.iap import Iap
from iaprun_operator.google.organizations import Organizations
from iaprun_operator.google.projects import Projects
from iaprun_operator.google.ratelimit import Limiter
from iaprun_operator.google.secrets import Secrets
from iaprun_operator.settings import Settings


@dataclass
class Google:
    run: CloudRun
    iap: Iap
    projects: Projects
    calls: Calls
    secrets: Secrets
    organizations: Organizations

    @classmethod
    def build(cls, settings: Settings, observer: CallObserver | None = None) -> Google:
        """The adapters; ``observer`` is told of every call and quota wait (the operator passes its metrics)."""
        observer = observer or Unobserved()
        creds = credentials(settings.google_api_endpoint)
        calls = Calls(threads=max(4, settings.workers), observer=observer)
        q = settings.quotas
        # Google's quotas are per project (and region), shared by every shard: each takes an equal share.
        share = 1.0 / settings.ha.shards
        limiter = Limiter(
            {
                "run_write": q.run_writes_per_minute * share,
                "run_read": q.run_reads_per_minute * share,
                "iap": q.iap_per_minute * share,
                "crm": q.crm_per_minute * share,
                "serviceusage": 240.0 * share,
                "secretmanager": 600.0 * share,
            },
            on_wait=observer.quota_wait,
        )
        clients = DiscoveryClients(creds=creds, endpoint=settings.google_api_endpoint, timeout=settings.request_timeout)
        iap = Iap(calls=calls, limiter=limiter, clients=clients)
        projects = Projects(calls=calls, limiter=limiter, clients=clients, iap=iap)
        return cls(
            run=CloudRun(
                calls=calls,
                limiter=limiter,
                creds=creds,
                endpoint=settings.google_api_endpoint,
                timeout=settings.request_timeout,
                connections=max(4, settings.workers),
            ),
            iap=iap,
            projects=projects,
            calls=calls,
            secrets=Secrets(calls=calls, limiter=limiter, clients=clients),
            organizations=Organizations(calls=calls, limiter=limiter, clients=clients, projects=projects),
        )
