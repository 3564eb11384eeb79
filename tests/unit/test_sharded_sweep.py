"""The orphan sweep across shards: every orphan is finished by exactly one shard, the one its owner hashes to.

Proves: with N shards sweeping the same place, each Delete-stamped orphan is deleted once in all (by the shard
``core.shards.shard_of`` names for its owner), and no shard touches another's. The Cloud Run port is a small
in-memory stand-in of this project's own ``RunPort`` (``sweep`` only lists and deletes); the claim rules are
tests/unit/test_orphans.py, the sweep against the emulator tests/integration/test_safety_nets.py.
"""

from __future__ import annotations

import hashlib
from typing import Any

from iaprun_operator.core.names import ServiceRef
from iaprun_operator.core.shards import shard_of
from iaprun_operator.sweep import sweep


class EmptyLedger:
    """No service was left under ObserveOnly/Paused: the record is empty."""

    async def entries(self) -> dict[str, str]:
        return {}

    async def holds(self, key: str) -> bool:
        return False

    async def forget(self, key: str, raw: str) -> bool:
        return False


CLUSTER = "c1"


class Run:
    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services, self.deleted = services, []

    async def list(self, project: str, region: str) -> list[dict[str, Any]]:
        return self.services

    async def delete(self, ref: ServiceRef, *, etag: str = "") -> None:
        self.deleted.append(ref.name)


class Google:
    def __init__(self, run: Run) -> None:
        self.run = run


def orphan(name: str) -> dict[str, Any]:
    readable = f"{CLUSTER}/team/{name}"
    return {
        "name": f"projects/p/locations/r/services/{name}",
        "labels": {"iaprun-owner": hashlib.sha256(readable.encode()).hexdigest()[:16]},
        "annotations": {"iaprun.dev/owner": readable, "iaprun.dev/deletion-policy": "Delete"},
    }


async def gone(namespace: str, name: str) -> bool:
    return False


async def test_each_orphan_is_finished_by_exactly_its_shard() -> None:
    shards, names = 3, [f"svc-{i}" for i in range(30)]
    deleted_by: dict[int, list[str]] = {}
    for shard in range(shards):
        run = Run([orphan(n) for n in names])
        mine = lambda ns, name, shard=shard: shard_of(ns, name, shards) == shard  # noqa: E731
        await sweep([("p", "r")], Google(run), CLUSTER, gone, EmptyLedger(), owns=mine)  # type: ignore[arg-type]
        deleted_by[shard] = run.deleted
    all_deleted = [name for names_ in deleted_by.values() for name in names_]
    assert sorted(all_deleted) == sorted(f"projects/p/locations/r/services/{n}" for n in names)
    for shard, deleted in deleted_by.items():
        assert all(shard_of("team", d.rsplit("/", 1)[-1], shards) == shard for d in deleted)
