"""The reconcile loop driven in-process against the emulator, recording every request each pass makes.

No Kubernetes: an ``ObjectView`` is built by hand for each pass, and each pass's returned status is merged
into the next pass's view, as ``handlers`` does (``merged``). A pass is a *follow-up* (kopf's retry of the
same handler: IAM verified this generation is not read again) when the previous pass asked to come back
and the spec has not changed since; a drift pass never is. The real Google adapters (``Google.build``) talk
to the emulator over HTTP, so what is recorded is exactly what the operator would send to Google.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gcpemu.admin import AdminClient
from gcpemu.testing import EmulatorThread
from golden.record import Request, Section, render
from iaprun_operator.core.model import parse_spec
from iaprun_operator.core.names import Owner, ServiceRef
from iaprun_operator.core.service import desired_service
from iaprun_operator.core.tenancy import TenancyPolicy
from iaprun_operator.google.bundle import Google
from iaprun_operator.handlers import merged
from iaprun_operator.reconcile import ObjectView, Result, finalize, reconcile
from iaprun_operator.settings import Settings

PROJECT = "demo-project"
REGION = "asia-northeast1"
NAMESPACE = "team-a"
NAME = "hello"
CLUSTER = "golden-cluster"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
START = "2026-06-01T00:00:00Z"
"""Every scenario starts at this instant on the emulator's clock, so expiry times in specs can be fixed."""
MAX_PASSES = 6
OPERATION_DELAY = 0.01
"""Seconds a Cloud Run operation takes on the emulator: never done in the answer to the write."""
OPERATION_TIMEOUT = 10.0


def base_spec(**overrides: Any) -> dict[str, Any]:
    """A small valid spec (IAP on, one accessor); ``overrides`` replace top-level keys."""
    spec: dict[str, Any] = {
        "region": REGION,
        "template": {"containers": [{"image": IMAGE}]},
        "iap": {"enabled": True, "accessors": [{"member": "user:alice@example.com"}]},
    }
    spec.update(overrides)
    return spec


def outcome(result: Result) -> str:
    """One line: come back or not, the Events (type and reason), and Ready as conditions show it."""
    ready = next((c for c in result.status.get("conditions") or () if c.get("type") == "Ready"), None)
    events = ", ".join(f"{e.type} {e.reason}" for e in result.events) or "no events"
    parts = [result.requeue or ("done" if result.done else "settled"), events]
    if ready is not None:
        parts.append(f"Ready={ready['status']}/{ready['reason']}")
    return "; ".join(parts)


class World:
    """One IapRunService object, the Google adapters, and the emulator; records each step as a ``Section``."""

    def __init__(self, emulator: EmulatorThread, admin: AdminClient) -> None:
        self.emulator = emulator
        self.admin = admin
        self.settings = Settings(
            google_api_endpoint=emulator.base_url,
            default_project=PROJECT,
            cluster_id=CLUSTER,
            workers=4,
            # One team's install: every scenario's request is allowed (the policy's own tests live elsewhere).
            tenancy=TenancyPolicy(single_tenant=True),
        )
        self.google = Google.build(self.settings)
        self.spec: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self.generation = 0
        self.sections: list[Section] = []
        self._retrying = False

    def close(self) -> None:
        self.google.calls.close()

    # ------------------------------------------------------------------------------------------- the object

    def view(self) -> ObjectView:
        return ObjectView(
            namespace=NAMESPACE,
            name=NAME,
            generation=self.generation,
            spec=copy.deepcopy(self.spec),
            status=copy.deepcopy(self.status),
            cluster_id=CLUSTER,
        )

    def apply(self, spec: Mapping[str, Any]) -> None:
        """A new spec: the generation moves on, and the next pass is a fresh handler run (not a retry)."""
        self.spec = copy.deepcopy(dict(spec))
        self.generation += 1
        self._retrying = False
        self.note(f"apply generation {self.generation}")

    def now(self) -> datetime:
        return self.emulator.emulator.clock.now().astimezone(UTC)

    @property
    def ref(self) -> ServiceRef:
        return ServiceRef(PROJECT, REGION, str(self.spec.get("serviceName") or NAME))

    # ------------------------------------------------------------------------------------------- passes

    async def reconcile(self, *, drift: bool = False) -> Result:
        """One pass of the reconcile handler (or, with ``drift``, of the drift timer)."""
        follow_up = self._retrying and not drift
        title = "drift pass" if drift else ("reconcile follow-up" if follow_up else "reconcile")
        since = self.emulator.emulator.log.seq
        result = await reconcile(self.view(), self.google, self.settings, self.now(), follow_up=follow_up)
        self.status = merged(self.status, result.status)
        self._retrying = result.requeue is not None
        self._record(f"{title} (generation {self.generation})", since, outcome(result))
        await self.operations_done()
        return result

    async def settle(self, *, drift: bool = False) -> Result:
        """Passes until one asks for nothing more (settled or stalled); fails if that never happens."""
        for _ in range(MAX_PASSES):
            result = await self.reconcile(drift=drift)
            if result.requeue is None:
                return result
        raise AssertionError(f"not settled after {MAX_PASSES} passes: {result.message}")

    async def delete(self) -> Result:
        """Deletion: finalize passes (the first not yet started, later ones retries) until it is done."""
        for attempt in range(MAX_PASSES):
            since = self.emulator.emulator.log.seq
            result = await finalize(self.view(), self.google, self.settings, deleting_started=attempt > 0)
            self._record("finalize" if attempt == 0 else "finalize follow-up", since, outcome(result))
            await self.operations_done()
            if result.done:
                return result
        raise AssertionError(f"deletion not done after {MAX_PASSES} passes: {result.message}")

    def _record(self, title: str, since: int, summary: str) -> None:
        entries = [e for e in list(self.emulator.emulator.log.entries) if e.seq > since]
        self.sections.append(Section(title, [Request.from_entry(e) for e in entries], summary))

    async def operations_done(self) -> None:
        """Await every Cloud Run operation the emulator still runs (an event on its loop, not a sleep).

        Cloud Run answers a write with an operation that is not yet done, as Google does; the scenarios let
        it finish between passes, so each pass sees a settled service and the log does not depend on timing.
        """
        emu = self.emulator.emulator

        async def wait() -> None:
            for op in list(emu.world.operations.values()):
                if op.kind == "run" and not op.done:
                    op.event = op.event or asyncio.Event()
                    await asyncio.wait_for(op.event.wait(), OPERATION_TIMEOUT)

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(wait(), emu.loop))

    # ------------------------------------------------------------------------------------------- the world

    def note(self, text: str) -> None:
        """A step that is not a pass (a spec change, something done behind the operator's back)."""
        self.sections.append(Section(text))

    async def create_foreign_service(self, owner: Owner | None, *, iap: bool = False) -> None:
        """A service at this object's place made by someone else (``owner``: another object; None: by hand).

        Made with the same adapters, outside any pass, so its requests are not part of the log.
        """
        body = desired_service(parse_spec(base_spec(), name=NAME), owner)
        body["iapEnabled"] = iap
        if owner is None:
            body.pop("labels")
            body.pop("annotations")
        await self.google.run.create(self.ref, body)
        await self.operations_done()
        self.note(f"out of band: service created {'by ' + owner.readable if owner else 'by hand, unowned'}")

    def render(self, scenario: str, doc: str) -> str:
        return render(scenario, doc, self.sections)
