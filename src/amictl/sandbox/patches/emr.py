"""EMR clusters with custom AMIs (issue 26), as the EMR API reference documents them and
moto 5.2.5 does not:

* RunJobFlow / AddInstanceGroups keep an instance group's ``CustomAmiId`` (moto failed
  with a TypeError), and the group's instances launch from it (or from the cluster's
  ``CustomAmiId``; moto launched a fixed example AMI).
* DescribeCluster returns ``InstanceCollectionType`` (``INSTANCE_GROUP`` or
  ``INSTANCE_FLEET``); RunJobFlow keeps ``Instances.InstanceFleets`` and
  ListInstanceFleets lists them with each instance type's ``CustomAmiId`` (moto had no
  instance fleets).
* TerminateJobFlows terminates the cluster's EC2 instances (moto left them running).
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, PaginatedResult
from moto.emr.models import Cluster, ElasticMapReduceBackend, Instance, InstanceGroup
from moto.emr.responses import ElasticMapReduceResponse
from moto.emr.utils import random_instance_group_id

from .helpers import patch

EXAMPLE_AMI_ID = "ami-12c6146b"


def _plain(value: Any) -> Any:
    """moto's parsed parameters as the API's own (CamelCase) dicts and lists."""
    if hasattr(value, "original_dict"):
        value = value.original_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _fleet(cfg: dict[str, Any]) -> dict[str, Any]:
    specs = [
        {k: v for k, v in t.items() if k in ("InstanceType", "CustomAmiId", "WeightedCapacity")}
        for t in cfg.get("InstanceTypeConfigs") or []
    ]
    return {
        "Id": "if-" + random_instance_group_id()[3:],
        "Name": cfg.get("Name") or cfg.get("InstanceFleetType", "").lower(),
        "Status": {"State": "RUNNING"},
        "InstanceFleetType": cfg.get("InstanceFleetType", "CORE"),
        "TargetOnDemandCapacity": cfg.get("TargetOnDemandCapacity", 0),
        "TargetSpotCapacity": cfg.get("TargetSpotCapacity", 0),
        "InstanceTypeSpecifications": specs,
    }


@patch(
    "EMR: CustomAmiId per instance group (its instances launch from it), "
    "InstanceCollectionType, instance fleets (ListInstanceFleets), TerminateJobFlows "
    "terminates the cluster's instances"
)
def emr_custom_amis() -> None:
    orig_group_init = InstanceGroup.__init__
    orig_run_job_flow = ElasticMapReduceResponse.run_job_flow
    orig_terminate = Cluster.terminate

    def group_init(self: Any, *args: Any, custom_ami_id: str | None = None, **kw: Any) -> None:
        orig_group_init(self, *args, **kw)
        self.custom_ami_id = custom_ami_id

    def run_instances(self: Any, cluster_id: str, instances: dict[str, Any], group: Any) -> None:
        cluster = self.clusters[cluster_id]
        kw = {k: v for k, v in instances.items() if k != "custom_ami_id"}
        kw["is_instance_type_default"] = not kw.get("instance_type")
        image = group.custom_ami_id or cluster.custom_ami_id or EXAMPLE_AMI_ID
        response = self.ec2_backend.run_instances(image, kw["instance_count"], None, [], **kw)
        for ec2_instance in response.instances:
            cluster.add_instance(Instance(ec2_instance=ec2_instance, instance_group=group))

    def run_job_flow(self: Any) -> ActionResult:
        result = orig_run_job_flow(self)
        fleets = _plain(self._get_param("Instances.InstanceFleets", []) or [])
        if fleets:
            cluster = self.backend.clusters[result.result["JobFlowId"]]  # type: ignore[index]
            cluster.instance_collection_type = "INSTANCE_FLEET"
            cluster.sandbox_instance_fleets = [_fleet(f) for f in fleets]
        return result

    def list_instance_fleets(self: Any) -> ActionResult:
        cluster = self.backend.describe_cluster(self._get_param("ClusterId"))
        return PaginatedResult({"InstanceFleets": getattr(cluster, "sandbox_instance_fleets", [])})

    def terminate(self: Any) -> None:
        orig_terminate(self)
        ids = [i.ec2_instance.id for i in getattr(self, "ec2_instances", [])]
        if ids:
            self.emr_backend.ec2_backend.terminate_instances(ids)

    InstanceGroup.__init__ = group_init  # type: ignore[method-assign]
    Cluster.instance_collection_type = "INSTANCE_GROUP"  # type: ignore[attr-defined]
    Cluster.terminate = terminate  # type: ignore[method-assign]
    ElasticMapReduceBackend.run_instances = run_instances  # type: ignore[method-assign,assignment]
    ElasticMapReduceResponse.run_job_flow = run_job_flow  # type: ignore[method-assign]
    ElasticMapReduceResponse.list_instance_fleets = list_instance_fleets  # type: ignore[attr-defined]
