"""The golden scenarios: each drives one IapRunService through a story; its docstring heads its log.

A scenario only acts (apply a spec, run passes, change the world behind the operator's back); what the
operator sent is judged by comparing the recorded log with the committed one (``test_scenarios``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from golden.world import NAME, PROJECT, REGION, World, base_spec
from iaprun_operator.core.names import IAP_ACCESSOR_ROLE, RUN_INVOKER_ROLE, Owner, iap_service_agent

Scenario = Callable[[World], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}
AGENT = f"serviceAccount:{iap_service_agent('123456789012')}"


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__.replace("_", "-")] = fn
    return fn


@scenario
async def create(w: World) -> None:
    """A new object: the service is created with IAP on from the first write, the agent is made and granted
    run.invoker on the service, the accessor is granted; the follow-up reads only the service; a drift pass
    in steady state reads and writes nothing else."""
    w.apply(base_spec())
    await w.settle()
    await w.settle(drift=True)


@scenario
async def adopt(w: World) -> None:
    """A same-named service made by hand (no owner mark, IAP off) is taken over with adoption: IfUnowned:
    one PATCH with exactly the differing fields, then the IAM."""
    await w.create_foreign_service(None)
    w.apply(base_spec(adoption="IfUnowned"))
    await w.settle()


@scenario
async def conflict(w: World) -> None:
    """A service owned by another IapRunService is read and left untouched (even with adoption: IfUnowned):
    ManagementConflict, no write at all."""
    await w.create_foreign_service(Owner("golden-cluster", "team-b", "hello"), iap=True)
    w.apply(base_spec(adoption="IfUnowned"))
    await w.settle()


@scenario
async def iap_off_on(w: World) -> None:
    """IAP switched off (iapEnabled patched, the agent's invoker grant removed) and on again (patched, the
    grant restored); accessors are kept throughout."""
    w.apply(base_spec())
    await w.settle()
    w.apply(base_spec(iap={"enabled": False, "accessors": [{"member": "user:alice@example.com"}]}))
    await w.settle()
    w.apply(base_spec())
    await w.settle()


@scenario
async def accessors_add_remove(w: World) -> None:
    """An accessor added (one IAP setIamPolicy adding bob), then one removed (one adding nothing, dropping
    alice); the service itself is not written."""
    w.apply(base_spec())
    await w.settle()
    both = [{"member": "user:alice@example.com"}, {"member": "user:bob@example.com"}]
    w.apply(base_spec(iap={"enabled": True, "accessors": both}))
    await w.settle()
    w.apply(base_spec(iap={"enabled": True, "accessors": [{"member": "user:bob@example.com"}]}))
    await w.settle()


@scenario
async def accessor_expiry(w: World) -> None:
    """An accessor with an expiry is granted with an IAM condition; once the clock passes it, a drift pass
    removes the binding (AccessExpired) while the permanent accessor stays."""
    accessors = [
        {"member": "user:alice@example.com"},
        {"member": "user:temp@example.com", "expires": "2026-06-01T01:00:00Z"},
    ]
    w.apply(base_spec(iap={"enabled": True, "accessors": accessors}))
    await w.settle()
    w.admin.set_clock("2026-06-01T02:00:00Z")
    w.note("out of band: the clock passes the expiry (02:00)")
    await w.settle(drift=True)


@scenario
async def additive_ledger(w: World) -> None:
    """Additive: a member enters the ledger (status) in one pass and is granted in the next, never the other
    way round; a member granted out of band is kept as foreign; removing a member revokes only it."""
    w.apply(additive("user:alice@example.com"))
    await w.settle()
    w.admin.add_binding(PROJECT, REGION, NAME, IAP_ACCESSOR_ROLE, "user:carol@example.com", kind="iap")
    w.note("out of band: carol granted the accessor role")
    w.apply(additive("user:alice@example.com", "user:dave@example.com"))
    await w.settle()
    w.apply(additive("user:dave@example.com"))
    await w.settle()


def additive(*members: str) -> dict[str, object]:
    return base_spec(
        iap={"enabled": True, "accessors": [{"member": m} for m in members], "accessorsPolicy": "Additive"}
    )


@scenario
async def invoker_repair(w: World) -> None:
    """The agent's run.invoker grant removed out of band is restored by the next drift pass (read, write
    with the read etag), without asking Service Usage for the agent again."""
    w.apply(base_spec())
    await w.settle()
    w.admin.remove_binding(PROJECT, REGION, NAME, RUN_INVOKER_ROLE, AGENT)
    w.note("out of band: the agent's run.invoker binding removed")
    await w.settle(drift=True)


@scenario
async def public_binding_removal(w: World) -> None:
    """allUsers granted run.invoker out of band on an IAP-protected service is removed by the next drift
    pass, with a Warning Event; the agent's grant is kept."""
    w.apply(base_spec())
    await w.settle()
    w.admin.add_binding(PROJECT, REGION, NAME, RUN_INVOKER_ROLE, "allUsers")
    w.note("out of band: allUsers granted run.invoker")
    await w.settle(drift=True)


@scenario
async def iam_conflict(w: World) -> None:
    """A concurrent IAM change (setIamPolicy answers 409 ABORTED once): the whole read-modify-write is
    repeated, read first, so nothing another writer added is lost."""
    w.apply(base_spec())
    await w.settle()
    w.admin.remove_binding(PROJECT, REGION, NAME, RUN_INVOKER_ROLE, AGENT)
    w.admin.inject_error(
        "run.services.setIamPolicy",
        http=409,
        status="ABORTED",
        message="There were concurrent policy changes. Please retry the whole read-modify-write with exponential "
        "backoff.",
        count=1,
    )
    w.note("out of band: the agent's grant removed; the next setIamPolicy answers ABORTED")
    await w.settle(drift=True)


@scenario
async def revision_failure(w: World) -> None:
    """An image that does not exist: the service is created and its IAM still kept right, the failed
    revision is reported (stalled, no retry storm); fixing the image patches the template and recovers."""
    w.apply(base_spec(template={"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/does-not-exist"}]}))
    await w.settle()
    w.apply(base_spec())
    await w.settle()


@scenario
async def agent_not_provisioned(w: World) -> None:
    """First use of IAP in a project: the new agent is not usable for a minute, so the invoker grant fails
    as Google fails it (DependencyNotReady, retried); once it propagates the grant goes through."""
    w.admin.configure(agent_propagation_delay=60.0)
    w.apply(base_spec())
    await w.reconcile()
    w.admin.advance_clock(120)
    w.note("out of band: two minutes pass; the agent has propagated")
    await w.settle()


@scenario
async def abandon(w: World) -> None:
    """deletionPolicy: Abandon: deletion only removes the ownership marks (one PATCH of labels and
    annotations); the service keeps running with IAP and its access."""
    w.apply(base_spec(deletionPolicy="Abandon"))
    await w.settle()
    await w.delete()


@scenario
async def delete(w: World) -> None:
    """deletionPolicy: Delete: the service is deleted, and deletion completes once Cloud Run no longer has
    it."""
    w.apply(base_spec())
    await w.settle()
    await w.delete()
