"""What a pass's returned status means for the object's stored status: merge-patch arithmetic.

Shared by the kopf wiring (what to write, what to remember) and the golden tests (the next pass's view).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def status_changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields whose value differs from what the object already shows.

    None means "absent" in a merge patch, so a None that is already absent is no change.
    """
    return {key: value for key, value in wanted.items() if _without_none(current.get(key)) != _without_none(value)}


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def with_stored_ledger(known: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``known`` with the Additive ledger as the API server stores it.

    A grant waits until the ledger naming the member is stored (so a crash can never leave a grant the
    object does not remember). The cached status may hold a ledger whose patch failed; only the stored one
    may let a grant through. A lagging copy only costs an extra pass.
    """
    iap = dict(known.get("iap") or {})
    ledger = (stored.get("iap") or {}).get("addedMembers")
    if ledger is None:
        iap.pop("addedMembers", None)
    else:
        iap["addedMembers"] = ledger
    return {**known, "iap": iap}


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` after a JSON merge patch of ``changes`` (None removes a key; mappings merge)."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
