"""Credentials and endpoints: Application Default Credentials on Google, anonymous on the emulator."""

from __future__ import annotations

from typing import Any

import google.auth
from google.auth.credentials import AnonymousCredentials, Credentials

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def credentials(endpoint: str | None) -> Credentials:
    if endpoint:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    creds: Any
    creds, _ = google.auth.default(scopes=list(SCOPES))
    return creds  # type: ignore[no-any-return]
