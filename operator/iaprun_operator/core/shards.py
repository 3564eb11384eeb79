"""Which shard owns an object: rendezvous hashing over its namespace and name, and the label selector of a shard.

An object belongs to the shard named by its label ``iaprun.dev/shard``; each shard's replica asks the API server
for its own objects only (a label selector on kopf's list and watch), so no replica even receives another shard's
objects. The label is written once by the assigner (``handoff``) from ``shard_of``: rendezvous (highest random
weight) hashing, so that going from N to N + 1 shards moves only the objects the new shard wins (about 1/(N + 1)
of them) and going down moves only the removed shard's objects; every other object keeps its shard. The key is
namespace/name, not the uid, so the orphan sweep can tell whose an orphan is when its object is gone.

With one shard nothing is labelled: shard 0's selector is "not labelled for another shard", which matches every
object, so a single replica costs no label write, and an object that a larger configuration handed to another
shard is never seen by a replica still running the smaller one. (A lone replica without Leases uses no selector.)
"""

from __future__ import annotations

import hashlib

MAX_SHARDS = 64
"""The most shards (the bound keeps the one-shard label selector short: it names every other shard)."""
LABEL = "iaprun.dev/shard"
"""The label naming an object's shard (a decimal index)."""


def _weight(key: str, shard: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{shard}:{key}".encode()).digest()[:8], "big")


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard that owns ``namespace/name`` among ``shards``: the one with the highest weight for the key."""
    key = f"{namespace}/{name}"
    return max(range(shards), key=lambda shard: _weight(key, shard))


def selector(shard: int, shards: int) -> str:
    """The label selector of one shard's watch.

    One shard: every object not labelled for another shard (unlabelled ones included, so nothing is written).
    Several: exactly the objects labelled for this shard (the assigner labels new objects first).
    """
    if shards == 1:
        others = ",".join(str(k) for k in range(1, MAX_SHARDS))
        return f"{LABEL} notin ({others})"
    return f"{LABEL}={shard}"


def labelled_shard(labels: dict[str, str] | None) -> int | None:
    """The shard an object's label names, or None (no label, or not a shard index)."""
    raw = (labels or {}).get(LABEL, "")
    return int(raw) if raw.isdigit() and int(raw) < MAX_SHARDS else None
