"""kopf's record of the last handled object, kept as a digest instead of a copy of the spec.

kopf tells create, update and resume apart by comparing the object's "essence" (spec, labels, annotations)
with the essence it stored after the last handled change. Its ``AnnotationsDiffBaseStorage`` stores a whole
copy in an annotation: every literal env value (a secret pasted as a value) then sits in metadata, readable
by anyone who may list the objects' metadata, and a spec above ~128 KB makes the object exceed the API
server's 256 KiB limit on annotations, so no status can be written and the finalizer cannot be removed.

This storage keeps only a SHA-256 of the essence. ``fetch`` returns the current essence when its digest
matches (no change: kopf sees an empty diff, a resume or nothing), and a marker that equals no essence when it
does not (kopf sees a change: an update). The operator's handlers never read kopf's diff, only that there is
one, so nothing is lost.

Objects written by earlier versions carry the copy under ``last-handled-configuration``. It is read as kopf
wrote it (a changed spec is still an update, an unchanged one is not), and replaced by the digest: by
``store`` after the next handled change, or by ``migrate`` (called from the drift timer) when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import kopf

LEGACY_KEY = "last-handled-configuration"


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    def __init__(self, *, prefix: str, key: str = "last-handled-digest", legacy_key: str = LEGACY_KEY) -> None:
        super().__init__(prefix=prefix, key=key)
        self.legacy_key = legacy_key

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> Any:
        """kopf's essence without any annotation under the operator's prefix (kopf's progress storage drops
        them before comparing too), so a digest of ``build`` equals the digest kopf hands to ``store``.

        kopf's ``build`` deep-copies the whole body (status and managedFields included) and then drops all but
        the essence, twice per watch event; it is handed only what the essence is made of (``essence_source``).
        """
        source = body if extra_fields else essence_source(body)
        return self._cleared(super().build(body=source, extra_fields=extra_fields))

    def _cleared(self, essence: Any) -> Any:
        """``essence`` (a fresh copy: ``build``'s or ``fetch``'s) as kopf compares it: without annotations under
        the prefix (its progress storage's ``clear``)."""
        if not isinstance(essence, dict):
            return essence
        cleared: Any = essence
        annotations = cleared.get("metadata", {}).get("annotations", {})
        self.remove_annotations(cleared, {key for key in annotations if key.startswith(f"{self.prefix}/")})
        self.remove_empty_stanzas(cleared)
        return cleared

    def fetch(self, *, body: kopf.Body) -> Any:
        stored = self._first(body, self.key)
        if stored is not None:
            current = self.build(body=body)
            return current if digest(current) == stored.strip() else {"lastHandledDigest": stored.strip()}
        legacy = self._first(body, self.legacy_key)
        if legacy is None:
            return None
        try:
            return json.loads(legacy)
        except ValueError:
            return {"lastHandledDigest": "unreadable"}

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        for full_key in self.make_keys(self.key, body=body):
            patch.metadata.annotations[full_key] = digest(essence)
        self._drop_legacy(body, patch)
        self._store_marker(prefix=self.prefix, patch=patch, body=body)

    def migrate(self, *, body: kopf.Body, patch: kopf.Patch) -> bool:
        """Replace an earlier version's copy by the digest when it records the object as it is (no change
        pending, which kopf is about to handle and ``store`` then migrates). Returns whether it patched."""
        if self._first(body, self.legacy_key) is None or self._first(body, self.key) is not None:
            return False
        current = self.build(body=body)
        if self._cleared(self.fetch(body=body)) != current:
            return False
        self.store(body=body, patch=patch, essence=current)
        return True

    def _first(self, body: kopf.Body, key: str) -> str | None:
        for full_key in self.make_keys(key, body=body):
            value = body.metadata.annotations.get(full_key)
            if value is not None:
                return str(value)
        return None

    def _drop_legacy(self, body: kopf.Body, patch: kopf.Patch) -> None:
        for full_key in self.make_keys(self.legacy_key, body=body):
            if full_key in body.metadata.annotations:
                patch.metadata.annotations[full_key] = None


def essence_source(body: kopf.Body) -> kopf.Body:
    """The parts of ``body`` kopf's essence is built from: all but ``metadata`` and ``status``, and of the
    metadata the labels, the annotations and the owner references (which its key naming reads)."""
    meta = body.get("metadata") or {}
    kept = {key: meta[key] for key in ("labels", "annotations", "ownerReferences") if key in meta}
    rest = {key: value for key, value in body.items() if key not in ("metadata", "status")}
    source: Any = {**rest, "metadata": kept}
    return kopf.Body(source)


def digest(essence: Any) -> str:
    canonical = json.dumps(essence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
