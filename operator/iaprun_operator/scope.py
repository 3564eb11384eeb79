"""Where an object's service lives (its project) and whether the tenancy policy lets the object use it.

Shared by the reconcile pass, its service step (adoption) and finalize (where a service may have been made).
"""

from __future__ import annotations

from iaprun_operator.core import references, tenancy
from iaprun_operator.core.model import Spec
from iaprun_operator.results import ObjectView
from iaprun_operator.settings import Settings

DEFAULT_PROJECT_ANNOTATION = "iaprun.dev/default-project"


def resolve_project(obj: ObjectView, spec: Spec, settings: Settings) -> str | None:
    return spec.project_id or obj.namespace_annotations.get(DEFAULT_PROJECT_ANNOTATION) or settings.default_project


def authorise(obj: ObjectView, spec: Spec, project: str, settings: Settings, *, adopting: bool = False) -> str | None:
    """The tenancy policy's word on everything this object asks the operator to do: None, or why not.

    ``adopting``: the object is about to take over an unowned service, which its rule must allow as well.
    """
    return tenancy.check(
        settings.tenancy,
        namespace=obj.namespace,
        namespace_labels=obj.namespace_labels,
        refs=references.extract(spec, project),
        operator_account=settings.operator_service_account,
        adopting=adopting,
    )
