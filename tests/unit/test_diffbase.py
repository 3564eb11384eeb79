"""kopf's bookkeeping keeps a digest of the last handled object, never a copy of its spec.

Proved against kopf's own classes: ``DigestDiffBaseStorage`` must let kopf tell create (nothing stored),
update (spec changed) and resume/no-op (unchanged) apart exactly as kopf's ``AnnotationsDiffBaseStorage``
did, store no spec value in any annotation, and read what the earlier version stored (a JSON copy) without
seeing a change that is not there, replacing it by a digest.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kopf

from iaprun_operator.diffbase import LEGACY_KEY, DigestDiffBaseStorage
from iaprun_operator.handlers import PREFIX, merged

SECRET = "hunter2-pasted-as-a-literal"


def _body(image: str = "hello", **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "iaprun.dev/v1alpha1",
        "kind": "IapRunService",
        "metadata": {"name": "a", "namespace": "n", "labels": {"team": "a"}, "annotations": dict(annotations)},
        "spec": {
            "region": "asia-northeast1",
            "template": {"containers": [{"image": image, "env": [{"name": "TOKEN", "value": SECRET}]}]},
        },
        "status": {"conditions": []},
    }


def _as_kopf_compares(storage: kopf.DiffBaseStorage, raw: dict[str, Any]) -> tuple[Any, Any]:
    """(old, new) as kopf's processing computes them (progress annotations cleared from both)."""
    body = kopf.Body(raw)
    progress = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    old = storage.fetch(body=body)
    new = storage.build(body=body)
    return (progress.clear(essence=old) if old is not None else None), progress.clear(essence=new)


def _stored(storage: kopf.DiffBaseStorage, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` after kopf stored its essence (a handled change) and the patch was applied."""
    _, new = _as_kopf_compares(storage, raw)
    patch = kopf.Patch()
    storage.store(body=kopf.Body(raw), patch=patch, essence=new)
    return merged(raw, json.loads(json.dumps(dict(patch))))


def test_create_then_no_change_then_update() -> None:
    storage = DigestDiffBaseStorage(prefix=PREFIX)
    raw = _body()
    old, _ = _as_kopf_compares(storage, raw)
    assert old is None  # kopf: a creation
    handled = _stored(storage, raw)
    old, new = _as_kopf_compares(storage, handled)
    assert old == new  # kopf: nothing changed (a resume after a restart, else no handler)
    changed = copy.deepcopy(handled)
    changed["spec"]["template"]["containers"][0]["image"] = "hello:2"
    old, new = _as_kopf_compares(storage, changed)
    assert old is not None
    assert old != new


def test_no_annotation_holds_a_spec_value() -> None:
    storage = DigestDiffBaseStorage(prefix=PREFIX)
    handled = _stored(storage, _body())
    annotations = handled["metadata"]["annotations"]
    assert annotations[f"{PREFIX}/last-handled-digest"].startswith("sha256:")
    assert not [key for key, value in annotations.items() if SECRET in value or "asia-northeast1" in value]


def test_progress_and_status_changes_are_not_updates() -> None:
    storage = DigestDiffBaseStorage(prefix=PREFIX)
    handled = _stored(storage, _body())
    touched = copy.deepcopy(handled)
    touched["metadata"]["annotations"][f"{PREFIX}/reconcile"] = '{"retries": 1}'
    touched["metadata"]["annotations"][f"{PREFIX}/drift-interval"] = "120"
    touched["status"] = {"observedGeneration": 3}
    old, new = _as_kopf_compares(storage, touched)
    assert old == new


def test_a_label_change_is_still_an_update_as_with_kopfs_own_storage() -> None:
    storage = DigestDiffBaseStorage(prefix=PREFIX)
    handled = _stored(storage, _body())
    relabelled = copy.deepcopy(handled)
    relabelled["metadata"]["labels"]["team"] = "b"
    old, new = _as_kopf_compares(storage, relabelled)
    assert old != new


def _written_by_the_earlier_version(raw: dict[str, Any]) -> dict[str, Any]:
    return _stored(kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key=LEGACY_KEY), raw)


def test_the_earlier_versions_copy_is_read_without_a_spurious_update_and_migrated() -> None:
    legacy = _written_by_the_earlier_version(_body(**{f"{PREFIX}/drift-interval": "120"}))
    assert SECRET in legacy["metadata"]["annotations"][f"{PREFIX}/{LEGACY_KEY}"]
    storage = DigestDiffBaseStorage(prefix=PREFIX)
    old, new = _as_kopf_compares(storage, legacy)
    assert old == new  # the upgrade alone is no update: no pass for every object at once
    patch = kopf.Patch()
    assert storage.migrate(body=kopf.Body(legacy), patch=patch)
    migrated = merged(legacy, json.loads(json.dumps(dict(patch))))
    assert f"{PREFIX}/{LEGACY_KEY}" not in migrated["metadata"]["annotations"]
    assert not [v for v in migrated["metadata"]["annotations"].values() if SECRET in v]
    old, new = _as_kopf_compares(storage, migrated)
    assert old == new
    assert not storage.migrate(body=kopf.Body(migrated), patch=kopf.Patch())  # once


def test_a_change_made_before_the_upgrade_is_still_an_update_and_store_migrates() -> None:
    legacy = _written_by_the_earlier_version(_body())
    legacy["spec"]["template"]["containers"][0]["image"] = "hello:2"  # not handled before the upgrade
    storage = DigestDiffBaseStorage(prefix=PREFIX)
    old, new = _as_kopf_compares(storage, legacy)
    assert old != new
    assert not storage.migrate(body=kopf.Body(legacy), patch=kopf.Patch())  # left to kopf's update
    handled = _stored(storage, legacy)
    assert f"{PREFIX}/{LEGACY_KEY}" not in handled["metadata"]["annotations"]
    old, new = _as_kopf_compares(storage, handled)
    assert old == new


def test_the_essence_is_the_one_kopf_builds_from_the_whole_body() -> None:
    """``build`` hands kopf only the essence's sources (no status, no managedFields); the essence, and so every
    stored digest, is the one kopf's own ``build`` makes from the whole body."""
    raw = _body(**{"keep/me": "1", f"{PREFIX}/last-handled-digest": "sha256:x", f"{PREFIX}/reconcile": "{}"})
    raw["metadata"] |= {"managedFields": [{"manager": "kubectl"}], "uid": "u", "resourceVersion": "7"}
    raw["metadata"]["ownerReferences"] = [{"kind": "Thing", "name": "t"}]
    raw["status"] = {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True"}]}
    storage = DigestDiffBaseStorage(prefix=PREFIX)
    whole = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key="last-handled-digest").build(body=kopf.Body(raw))

    assert storage.build(body=kopf.Body(raw)) == storage._cleared(whole)
    assert storage.build(body=kopf.Body(raw))["metadata"]["annotations"] == {"keep/me": "1"}
