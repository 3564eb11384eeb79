"""Shard assignment (core.shards): stable under a change of the shard count, and the selectors that let the API
server do the filtering.

Proves: going from N to N + 1 shards moves only objects to the new shard (never between old shards), about
1/(N + 1) of them; going down moves only the removed shard's objects; the assignment spreads evenly; one shard's
selector matches every object not labelled for another, several shards' selectors are disjoint. Pure: no
Kubernetes (the sharded watch itself is tests/integration/test_ha.py).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iaprun_operator.core.shards import LABEL, MAX_SHARDS, labelled_shard, selector, shard_of

KEYS = [(f"team-{i % 37}", f"svc-{i}") for i in range(4000)]


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 7, 16])
def test_adding_a_shard_moves_objects_only_to_the_new_shard(shards: int) -> None:
    before = {key: shard_of(*key, shards) for key in KEYS}
    after = {key: shard_of(*key, shards + 1) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == shards for key in moved)
    # About 1/(N + 1) move: the new shard's fair share, no more (a modulo hash would move most objects).
    assert abs(len(moved) / len(KEYS) - 1 / (shards + 1)) < 0.04


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=40), st.integers(2, MAX_SHARDS))
def test_removing_the_last_shard_moves_only_its_objects(namespace: str, name: str, shards: int) -> None:
    before, after = shard_of(namespace, name, shards), shard_of(namespace, name, shards - 1)
    assert before == after or before == shards - 1


def test_the_assignment_spreads_evenly() -> None:
    counts = [0] * 4
    for key in KEYS:
        counts[shard_of(*key, 4)] += 1
    assert min(counts) > 0.2 * len(KEYS)
    assert max(counts) < 0.3 * len(KEYS)


def test_one_shard_selects_everything_not_labelled_for_another_shard() -> None:
    assert selector(0, 1) == f"{LABEL} notin ({','.join(str(k) for k in range(1, MAX_SHARDS))})"


def test_several_shards_select_exactly_their_label() -> None:
    assert [selector(k, 3) for k in range(3)] == [f"{LABEL}=0", f"{LABEL}=1", f"{LABEL}=2"]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [({LABEL: "3"}, 3), ({}, None), (None, None), ({LABEL: "x"}, None), ({LABEL: "-1"}, None), ({LABEL: "64"}, None)],
)
def test_labelled_shard_reads_only_shard_indexes(labels: dict[str, str] | None, expected: int | None) -> None:
    assert labelled_shard(labels) == expected
