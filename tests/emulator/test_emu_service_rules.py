"""Cloud Run v2's semantic rules in the emulator, through the unmodified run_v2 REST client: each invalid
service is refused with 400 INVALID_ARGUMENT and Google's "Violation in ..." message, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import run_v2

from gcpemu.admin import AdminClient
from gcpemu.testing import raw_request

PARENT = "projects/demo-project/locations/us-central1"
IMG = "us-docker.pkg.dev/demo-project/apps/hello:1"
V = "Violation in CreateServiceRequest.service."
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
GPU_OK = {"limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}}


def _template(containers: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    return {"containers": containers or [{"image": IMG}], **kw}


def _refused(run_client: Any, admin: AdminClient, service: dict[str, Any], parent: str = PARENT) -> str:
    with pytest.raises(gexc.BadRequest) as exc:
        run_client.create_service(parent=parent, service=run_v2.Service(service), service_id="svc")
    assert admin.service("demo-project", parent.rsplit("/", 1)[-1], "svc") is None
    return _google_message(exc.value)


def _google_message(err: gexc.GoogleAPICallError) -> str:
    """The server's message: the REST client prefixes it with ``METHOD url: ``."""
    return str(err.message).split(": ", 1)[1]


APP = {"name": "app", "image": IMG, "ports": [{"container_port": 8080}]}
SIDE = {"name": "side", "image": IMG}

TEMPLATE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "system annotation in the template": (
        _template(annotations={"autoscaling.knative.dev/maxScale": "3"}),
        V + "template.annotations[autoscaling.knative.dev/maxScale]: system annotations are not supported in "
        "Cloud Run API v2.",
    ),
    "system label in the template": (
        _template(labels={"run.googleapis.com/x": "y"}),
        V + "template.labels[run.googleapis.com/x]: system labels are not supported in Cloud Run API v2.",
    ),
    "two ports on one container": (
        _template([{"image": IMG, "ports": [{"container_port": 1}, {"container_port": 2}]}]),
        V + "template.containers[0].ports: ports should contain 0 or 1 port.",
    ),
    "two containers with ports": (
        _template([APP, {**SIDE, "ports": [{"container_port": 9090}]}]),
        "template.containers: Revision template should contain exactly one container with an exposed port.",
    ),
    "several containers, none with a port": (
        _template([{"name": "a", "image": IMG}, SIDE]),
        "template.containers: Revision template should contain exactly one container with an exposed port.",
    ),
    "duplicate container names": (
        _template([APP, {"name": "app", "image": IMG}]),
        V + "template.containers[1].name: Container name 'app' is not unique.",
    ),
    "reserved env name": (
        _template([{"image": IMG, "env": [{"name": "PORT", "value": "80"}, {"name": "K_SERVICE", "value": "x"}]}]),
        V + "template.containers[0].env: The following reserved env names were provided: PORT, K_SERVICE. These "
        "values are automatically set by the system.",
    ),
    "mount of an unknown volume": (
        _template([{"image": IMG, "volume_mounts": [{"name": "nope", "mount_path": "/x"}]}]),
        V + "template.containers[0].volume_mounts[0].name: Volume 'nope' was not found in the revision template's "
        "volumes.",
    ),
    "dependsOn an unknown container": (
        _template([{**APP, "depends_on": ["ghost"]}, SIDE]),
        V + "template.containers[0].depends_on: Container 'ghost' not found.",
    ),
    "dependsOn cycle": (
        _template([{**APP, "depends_on": ["side"]}, {**SIDE, "depends_on": ["app"]}]),
        V + "template.containers[0].depends_on: Container dependencies form a cycle.",
    ),
    "dependsOn a container without a startup probe": (
        _template([{**APP, "depends_on": ["side"]}, SIDE]),
        V + "template.containers[0].depends_on: Dependent container 'side' must have startup probe specified",
    ),
    "duplicate volume names": (
        _template(volumes=[{"name": "v", "empty_dir": {}}, {"name": "v", "empty_dir": {}}]),
        V + "template.volumes[1].name: Volume name 'v' is not unique.",
    ),
    "Cloud SQL connection name without the project": (
        _template(volumes=[{"name": "db", "cloud_sql_instance": {"instances": [":us-central1:db"]}}]),
        V + "template.volumes[0].cloud_sql_instance.instances: Invalid cloud sql instance names: "
        "[':us-central1:db']. Instance names must be 97 characters or less, matching "
        "[a-zA-Z0-9-]{1,}:[a-zA-Z0-9-]{1,}:[a-z][a-z0-9-]{0,}, and cannot end in an hyphen",
    ),
    "template min instances above max": (
        _template(scaling={"min_instance_count": 5, "max_instance_count": 2}),
        V + "template.scaling.max_instance_count: must be greater or equal than min_instance_count.",
    ),
    "connector that is not a full name": (
        _template(vpc_access={"connector": "my-connector"}),
        V + "template.vpc_access.connector: Invalid connector name 'my-connector'. Expected format: "
        "projects/{project}/locations/{location}/connectors/{connector}.",
    ),
    "connector and Direct VPC together": (
        _template(
            vpc_access={
                "connector": "projects/p/locations/us-central1/connectors/c",
                "network_interfaces": [{"network": "default"}],
            }
        ),
        V + "template.vpc_access: Only one of connector or network_interfaces may be specified.",
    ),
    "two network interfaces": (
        _template(vpc_access={"network_interfaces": [{"network": "a"}, {"network": "b"}]}),
        V + "template.vpc_access.network_interfaces: Only a single network interface is supported.",
    ),
    "network interface without network or subnetwork": (
        _template(vpc_access={"network_interfaces": [{"tags": ["t"]}]}),
        V + "template.vpc_access.network_interfaces[0]: At least one of network or subnetwork must be specified.",
    ),
    "GPU limit without an accelerator": (
        _template([{"image": IMG, "resources": GPU_OK}]),
        V + "template.containers[0].resources.limits: 'nvidia.com/gpu' requires node_selector.accelerator to be set.",
    ),
    "unknown accelerator": (
        _template([{"image": IMG, "resources": GPU_OK}], node_selector={"accelerator": "nvidia-h100"}),
        V + "template.node_selector.accelerator: Accelerator type 'nvidia-h100' is not supported. Supported "
        "values: nvidia-l4, nvidia-rtx-pro-6000.",
    ),
    "accelerator without a GPU limit": (
        _template(node_selector={"accelerator": "nvidia-l4"}),
        V + "template.containers: A container must set resources.limits['nvidia.com/gpu'] when a GPU is requested.",
    ),
    "GPU with CPU only allocated during requests": (
        _template(
            [{"image": IMG, "resources": {**GPU_OK, "cpu_idle": True}}], node_selector={"accelerator": "nvidia-l4"}
        ),
        V + "template.containers[0].resources.cpu_idle: GPU requires CPU to be always allocated (cpu_idle: false).",
    ),
    "GPU with 2 CPU": (
        _template(
            [{"image": IMG, "resources": {"limits": {**GPU_OK["limits"], "cpu": "2"}}}],
            node_selector={"accelerator": "nvidia-l4"},
        ),
        V + "template.containers[0].resources.limits.cpu: GPU requires at least 4 CPU.",
    ),
    "GPU with 8Gi of memory": (
        _template(
            [{"image": IMG, "resources": {"limits": {**GPU_OK["limits"], "memory": "8Gi"}}}],
            node_selector={"accelerator": "nvidia-l4"},
        ),
        V + "template.containers[0].resources.limits.memory: GPU requires at least 16Gi of memory.",
    ),
}


@pytest.mark.parametrize("case", list(TEMPLATE_CASES))
def test_template_rules(case: str, run_client: Any, gcp_admin: AdminClient) -> None:
    """Each invalid template gets Google's 400 and its exact message."""
    template, message = TEMPLATE_CASES[case]
    assert _refused(run_client, gcp_admin, {"template": template}) == message


SERVICE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "system annotation on a new service": (
        {"annotations": {"run.googleapis.com/ingress": "all"}},
        V + "annotations[run.googleapis.com/ingress]: system annotations are not supported in Cloud Run API v2.",
    ),
    "system label on the service": (
        {"labels": {"serving.knative.dev/x": "y"}},
        V + "labels[serving.knative.dev/x]: system labels are not supported in Cloud Run API v2.",
    ),
    "service min instances above max": (
        {"scaling": {"min_instance_count": 3, "max_instance_count": 1}},
        V + "scaling.max_instance_count: must be greater or equal than min_instance_count.",
    ),
    "traffic summing to 90": (
        {"traffic": [run_v2.TrafficTarget(type_=LATEST, percent=90)]},
        V + "traffic: traffic percentages must add up to 100.",
    ),
    "duplicate tags": (
        {
            "traffic": [
                run_v2.TrafficTarget(type_=LATEST, percent=100, tag="blue"),
                run_v2.TrafficTarget(type_=REVISION, revision="svc-00001-abc", percent=0, tag="blue"),
            ]
        },
        V + "traffic[1].tag: Tag 'blue' is used by more than one traffic target.",
    ),
    "REVISION target without a revision": (
        {"traffic": [run_v2.TrafficTarget(type_=REVISION, percent=100)]},
        V + "traffic[0].revision: revision is required when type is TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION.",
    ),
    "tag that is too long with the service name": (
        {"traffic": [run_v2.TrafficTarget(type_=LATEST, percent=100, tag="t" * 44)]},
        V + f"traffic[0].tag: Tag '{'t' * 44}' must be lowercase letters, digits and hyphens, and together with the "
        "service name at most 46 characters.",
    ),
}


@pytest.mark.parametrize("case", list(SERVICE_CASES))
def test_service_rules(case: str, run_client: Any, gcp_admin: AdminClient) -> None:
    """Service-level rules (annotations, labels, scaling, traffic) get Google's 400 and exact message."""
    fields, message = SERVICE_CASES[case]
    assert _refused(run_client, gcp_admin, {"template": _template(), **fields}) == message


def test_gpu_needs_a_supported_region(run_client: Any, gcp_admin: AdminClient) -> None:
    """The same valid GPU template is refused in us-east1 (no Cloud Run GPUs there) and accepted in us-central1,
    where the declared limits and the CPU-always-allocated setting read back unchanged."""
    template = _template([{"image": IMG, "resources": GPU_OK}], node_selector={"accelerator": "nvidia-l4"})
    assert (
        _refused(run_client, gcp_admin, {"template": template}, "projects/demo-project/locations/us-east1")
        == V + "template.node_selector.accelerator: GPU is not supported in region 'us-east1'."
    )
    svc = run_client.create_service(parent=PARENT, service=run_v2.Service({"template": template}), service_id="gpu")
    got = svc.result(timeout=30)
    res = got.template.containers[0].resources
    assert dict(res.limits) == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert not res.cpu_idle
    assert got.template.node_selector.accelerator == "nvidia-l4"


def test_service_annotation_already_present_may_stay(run_client: Any, gcp_admin: AdminClient) -> None:
    """v2 rejects system annotations "in new resources": one a v1 client left on the service survives a v2
    patch, but adding another is refused."""
    run_client.create_service(parent=PARENT, service=run_v2.Service({"template": _template()}), service_id="old")
    v1_edit = {"annotations": {"run.googleapis.com/ingress": "all"}}
    gcp_admin.mutate_service("demo-project", "us-central1", "old", v1_edit)
    got = run_client.get_service(name=f"{PARENT}/services/old")
    got.description = "still fine"
    run_client.update_service(service=got).result(timeout=30)
    got = run_client.get_service(name=f"{PARENT}/services/old")
    got.annotations["run.googleapis.com/launch-stage"] = "BETA"
    with pytest.raises(gexc.BadRequest) as exc:
        run_client.update_service(service=got)
    assert _google_message(exc.value) == (
        "Violation in UpdateServiceRequest.service.annotations[run.googleapis.com/launch-stage]: system annotations "
        "are not supported in Cloud Run API v2."
    )


def test_vpc_egress_value_outside_the_enum(gcp_base_url: str, gcp_admin: AdminClient) -> None:
    """The run_v2 client cannot send an egress outside the enum, so this goes on the wire: "ALL" (a v1-style
    spelling) is refused with Google's enum message; ALL_TRAFFIC is accepted and read back."""
    url = f"{gcp_base_url}/v2/{PARENT}/services?serviceId="
    vpc: dict[str, Any] = {"egress": "ALL", "networkInterfaces": [{"network": "default"}]}
    st, _, err = raw_request("POST", url + "bad", {"template": {"containers": [{"image": IMG}], "vpcAccess": vpc}})
    assert st == 400
    assert err["error"]["message"] == (
        "Invalid value at 'service.template.vpc_access.egress' "
        '(type.googleapis.com/google.cloud.run.v2.VpcAccess.VpcEgress), "ALL"'
    )
    vpc["egress"] = "ALL_TRAFFIC"
    st, _, _ = raw_request("POST", url + "good", {"template": {"containers": [{"image": IMG}], "vpcAccess": vpc}})
    assert st == 200
    stored = gcp_admin.service("demo-project", "us-central1", "good")
    assert stored is not None
    assert stored["template"]["vpcAccess"]["egress"] == "ALL_TRAFFIC"
