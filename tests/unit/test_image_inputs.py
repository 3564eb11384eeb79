"""What the image keeps is what the operator uses: the discovery documents it builds clients from.

The Dockerfile deletes every google-api-python-client discovery document but those listed in
hack/image/discovery-documents.txt (~110 MB of ~600 APIs). A client built from a deleted document fails only at
run time, in the image, so the list must be exactly the ``service(name, version)`` calls of the Google adapters;
and each listed document must exist in the locked google-api-python-client.
"""

from __future__ import annotations

import re
from pathlib import Path

import googleapiclient

REPO = Path(__file__).resolve().parents[2]
LIST = REPO / "hack" / "image" / "discovery-documents.txt"


def listed() -> set[str]:
    return {line.strip() for line in LIST.read_text().splitlines() if line.strip() and not line.startswith("#")}


def used() -> set[str]:
    calls = set()
    for source in (REPO / "operator" / "iaprun_operator" / "google").glob("*.py"):
        calls |= set(re.findall(r'\.service\(\s*"([a-z0-9]+)",\s*"([a-z0-9]+)"\s*\)', source.read_text()))
    return {f"{name}.{version}" for name, version in calls}


def test_kept_discovery_documents_are_exactly_the_ones_the_operator_builds() -> None:
    """A new API version in the adapters without its document in the list (or a stale entry) fails here."""
    assert used() == listed()
    assert len(used()) == 4


def test_kept_discovery_documents_exist_in_the_locked_client() -> None:
    """Each listed document ships with google-api-python-client, so the Dockerfile's copy of it cannot miss."""
    documents = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
    for name in listed():
        assert (documents / f"{name}.json").is_file(), name
