"""Fail-closed checks of the Cloud Run v2 part of a spec (the template and the service-level fields).

The CRD's CEL rules refuse these at ``kubectl apply``; the parser repeats them because an object may predate a
CRD upgrade or the CRD may be installed without its rules, and a spec Google would refuse (or half-apply)
must stop as ``InvalidSpec`` before any Google call. Values keep Cloud Run v2's JSON shapes: nothing here
renames a field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from iaprun_operator.core.names import RESERVED_LABEL_PREFIX

EXECUTION_ENVIRONMENTS = ("EXECUTION_ENVIRONMENT_GEN1", "EXECUTION_ENVIRONMENT_GEN2")
TRAFFIC_LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
TRAFFIC_REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
SYSTEM_ANNOTATION_PREFIXES = (
    "run.googleapis.com/",
    "autoscaling.knative.dev/",
    "serving.knative.dev/",
    "cloud.googleapis.com/",
)
"""Prefixes Cloud Run v2 refuses in service and template annotations (each stands for a v2 field)."""
RESERVED_ANNOTATION_PREFIX = "iaprun.dev/"


class InvalidSpecError(ValueError):
    """The spec cannot be reconciled as written; the message says why."""


def check_annotations(annotations: Mapping[str, Any], where: str) -> dict[str, str]:
    """User annotations: Cloud Run v2 refuses its system keys, and ``iaprun.dev/*`` is the operator's."""
    for key in annotations:
        if key.startswith(SYSTEM_ANNOTATION_PREFIXES):
            raise InvalidSpecError(
                f"{where}: {key!r} is a system annotation, which Cloud Run v2 does not accept; use the v2 field "
                "it stands for"
            )
        if key.startswith(RESERVED_ANNOTATION_PREFIX):
            raise InvalidSpecError(
                f"{where}: {key!r} uses the prefix {RESERVED_ANNOTATION_PREFIX!r}, reserved for the operator"
            )
    return {str(k): str(v) for k, v in annotations.items()}


def check_labels(labels: Mapping[str, Any], where: str) -> dict[str, str]:
    for key in labels:
        if str(key).startswith(RESERVED_LABEL_PREFIX):
            raise InvalidSpecError(f"{where}: {key!r} uses the reserved prefix {RESERVED_LABEL_PREFIX!r}")
    return {str(k): str(v) for k, v in labels.items()}


def check_scaling(scaling: Mapping[str, Any], where: str) -> None:
    low, high = scaling.get("minInstanceCount"), scaling.get("maxInstanceCount")
    if low is not None and high is not None and int(low) > int(high):
        raise InvalidSpecError(f"{where}: minInstanceCount {low} exceeds maxInstanceCount {high}")


def _unique(names: Iterable[str], where: str, what: str) -> set[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidSpecError(f"{where}: {what} {name!r} is declared twice")
        seen.add(name)
    return seen


def _check_container(container: Mapping[str, Any], where: str, volumes: set[str]) -> None:
    if not str(container.get("image", "")).strip():
        raise InvalidSpecError(f"{where}.image: required")
    for var in container.get("env") or ():
        if "valueFrom" in var:
            raise InvalidSpecError(
                f"{where}.env {var.get('name')!r}: valueFrom is not a Cloud Run v2 field; write valueSource"
            )
    for mount in container.get("volumeMounts") or ():
        if mount.get("name") not in volumes:
            raise InvalidSpecError(f"{where}.volumeMounts: {mount.get('name')!r} names no volume of the template")


def _check_depends_on(containers: Sequence[Mapping[str, Any]], names: set[str]) -> None:
    graph = {str(c.get("name", "")): [str(d) for d in c.get("dependsOn") or ()] for c in containers}
    for name, needs in graph.items():
        for need in needs:
            if need not in names or need == name:
                raise InvalidSpecError(
                    f"spec.template.containers {name!r}: dependsOn {need!r} names no other container of the template"
                )
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise InvalidSpecError(f"spec.template.containers: dependsOn has a cycle through {name!r}")
        visiting.add(name)
        for need in graph.get(name, ()):
            visit(need)
        visiting.discard(name)
        done.add(name)

    for name in graph:
        visit(name)


def check_template(template: Mapping[str, Any]) -> None:
    """A v2 RevisionTemplate that Google would accept as far as its references go."""
    containers = template.get("containers") or []
    if not containers:
        raise InvalidSpecError("spec.template.containers: at least one container is required")
    volumes = _unique(
        (str(v.get("name", "")) for v in template.get("volumes") or ()), "spec.template.volumes", "volume"
    )
    for index, container in enumerate(containers):
        _check_container(container, f"spec.template.containers[{index}]", volumes)
    names = _unique((str(c["name"]) for c in containers if c.get("name")), "spec.template.containers", "container")
    if sum(1 for c in containers if c.get("ports")) > 1:
        raise InvalidSpecError("spec.template.containers: at most one container may declare ports (the ingress one)")
    _check_depends_on(containers, names)
    env = template.get("executionEnvironment")
    if env is not None and env not in EXECUTION_ENVIRONMENTS:
        raise InvalidSpecError(
            f"spec.template.executionEnvironment: {env!r} is not one of {', '.join(EXECUTION_ENVIRONMENTS)}"
        )
    check_annotations(template.get("annotations") or {}, "spec.template.annotations")
    check_labels(template.get("labels") or {}, "spec.template.labels")
    check_scaling(template.get("scaling") or {}, "spec.template.scaling")


def check_traffic(traffic: Sequence[Mapping[str, Any]]) -> None:
    """Percents add up to 100, tags are unique, a REVISION target names its revision."""
    if not traffic:
        return
    total = sum(int(t.get("percent") or 0) for t in traffic)
    if total != 100:
        raise InvalidSpecError(f"spec.traffic: percents add up to {total}, not 100")
    _unique((str(t["tag"]) for t in traffic if t.get("tag")), "spec.traffic", "tag")
    for index, target in enumerate(traffic):
        kind = target.get("type", TRAFFIC_LATEST if not target.get("revision") else TRAFFIC_REVISION)
        if kind not in (TRAFFIC_LATEST, TRAFFIC_REVISION):
            raise InvalidSpecError(
                f"spec.traffic[{index}].type: {kind!r} is not {TRAFFIC_LATEST} or {TRAFFIC_REVISION}"
            )
        if kind == TRAFFIC_REVISION and not target.get("revision"):
            raise InvalidSpecError(f"spec.traffic[{index}]: a {TRAFFIC_REVISION} target names its revision")
