"""Identities of the Google resources one IapRunService maps to, and the ownership marks.

Google names resources by typed templates; keeping them in one place means every adapter, status field
and log line spells them the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

RUN_INVOKER_ROLE = "roles/run.invoker"
IAP_ACCESSOR_ROLE = "roles/iap.httpsResourceAccessor"
IAP_SERVICE = "iap.googleapis.com"

# Cloud Run labels allow [a-z0-9_-] and at most 63 characters; annotations are free-form.
OWNER_LABEL = "iaprun-owner"
OWNER_ANNOTATION = "iaprun.dev/owner"
# The object's deletion policy, stamped on the service so that an orphan (a service whose object is gone
# without its finalizer having seen the service) is finished the way the object asked for.
DELETION_POLICY_ANNOTATION = "iaprun.dev/deletion-policy"
# Left on a service an object abandons: the owner label it had, so that same owner may take the service back
# without an adoption rule. It never makes a service owned (only OWNER_LABEL does).
ABANDONED_BY_ANNOTATION = "iaprun.dev/abandoned-by"
RESERVED_LABEL_PREFIX = "iaprun"


@dataclass(frozen=True)
class ServiceRef:
    """Where one Cloud Run service lives."""

    project: str
    region: str
    service: str

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def name(self) -> str:
        return f"{self.parent}/services/{self.service}"

    def iap_resource(self, project_number: str) -> str:
        """The IAP resource of the service; IAP always names the project by number."""
        return f"projects/{project_number}/iap_web/cloud_run-{self.region}/services/{self.service}"


def iap_service_agent(project_number: str) -> str:
    """The email of the project's IAP service agent (what gcloud grants run.invoker to)."""
    return f"service-{project_number}@gcp-sa-iap.iam.gserviceaccount.com"


@dataclass(frozen=True)
class Owner:
    """The ownership mark the operator puts on what it creates."""

    cluster_id: str
    namespace: str
    name: str

    @property
    def readable(self) -> str:
        return f"{self.cluster_id}/{self.namespace}/{self.name}"

    @property
    def label(self) -> str:
        digest = hashlib.sha256(self.readable.encode()).hexdigest()
        return digest[:16]

    @classmethod
    def parse(cls, readable: str) -> Owner | None:
        """The owner a readable mark names (``<cluster-id>/<namespace>/<name>``), or None if malformed."""
        parts = readable.rsplit("/", 2)
        if len(parts) != 3 or not all(parts):
            return None
        return cls(*parts)
