"""The kopf wiring binds the shared ``Runtime`` to module-level handlers under a keyword kopf never passes.

kopf calls every handler with its own keyword arguments, and a bound keyword of the same name is silently
replaced (kopf's ``runtime`` is a timedelta: the operator then fails at start-up, every 60 s, for ever).
"""

from __future__ import annotations

import asyncio
from functools import partial

import kopf
import pytest

from iaprun_operator.handlers import register
from iaprun_operator.runtime import Runtime, kube_session
from iaprun_operator.settings import Settings, SettingsError, from_env

KOPF_KWARGS = {
    "activity", "annotations", "body", "cause", "diff", "event", "index", "indices", "labels", "logger", "memo",
    "meta", "name", "namespace", "new", "old", "param", "patch", "reason", "resource", "retry", "runtime",
    "settings", "spec", "started", "status", "type", "uid", "namespaces",
}  # fmt: skip
"""kopf's handler keywords (docs: kwargs), and the operator's own index, ``namespaces``."""


def _bound_keywords(registry: kopf.OperatorRegistry) -> dict[str, set[str]]:
    handlers = [
        *registry._activities.get_all_handlers(),
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
        *registry._indexing.get_all_handlers(),
    ]
    return {h.id: set(h.fn.keywords) for h in handlers if isinstance(h.fn, partial)}


def test_bound_handler_keywords_are_not_kopf_keywords() -> None:
    registry = kopf.OperatorRegistry()
    register(registry, Runtime(settings=Settings()))
    bound = _bound_keywords(registry)
    assert {"start", "stop", "reconcile", "drift", "finalize"} <= set(bound)
    clashes = {handler: names & KOPF_KWARGS for handler, names in bound.items() if names & KOPF_KWARGS}
    assert not clashes, f"kopf would replace these bound keywords: {clashes}"


def test_a_handler_repr_does_not_grow_with_the_fleet() -> None:
    """kopf formats each timer's name from its handler (a ``partial`` holding the Runtime) when it stops it: a repr
    listing every object's lock made stopping 1,000 timers quadratic (4% of a scale-out's CPU, at exit)."""
    runtime = Runtime(settings=Settings())
    small = repr(partial(print, shared=runtime))
    for uid in range(1000):
        runtime.lock(str(uid))
    assert len(repr(partial(print, shared=runtime))) <= len(small) + 4


def test_the_api_server_session_has_a_bounded_pool() -> None:
    """kopf's own session opens a connection per request in flight (a third of the peak memory at 1,000 objects);
    the operator hands kopf a session built from the same connection info with ``IAPRUN_KUBE_CONNECTIONS`` as
    its limit, and the same authorisation header."""
    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t0k3n", default_namespace="ops")

    async def build() -> tuple[int, str, str | None]:
        made = kube_session(info, 12)
        try:
            connector = made.aiohttp_session.connector
            assert connector is not None
            return connector.limit, made.aiohttp_session.headers["Authorization"], made.default_namespace
        finally:
            await made.aiohttp_session.close()

    assert asyncio.run(build()) == (12, "Bearer t0k3n", "ops")


def test_too_few_api_server_connections_are_refused_at_start_up() -> None:
    with pytest.raises(SettingsError, match="IAPRUN_KUBE_CONNECTIONS=2: must be at least 4"):
        from_env({"IAPRUN_KUBE_CONNECTIONS": "2"})
