"""Issue 26's EC2-side launchers made (and removed) through the sandbox's AWS APIs, for
the end-to-end tests (test_launchers_ec2) and the keep property (test_keep_property).

Each maker makes the launcher reference ``image`` alone (no instance of it keeps
running) and returns what removes that reference again, and the resource's id."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

Undo = Callable[[], None]


def spot_request(env: Any, image: str, newest: str) -> tuple[str, Undo]:
    """A persistent Spot request whose instance was interrupted: open again, it relaunches."""
    ec2 = env.client("ec2")
    req = ec2.request_spot_instances(
        InstanceCount=1,
        Type="persistent",
        LaunchSpecification={"ImageId": image, "InstanceType": "t3.micro"},
    )["SpotInstanceRequests"][0]
    ec2.terminate_instances(InstanceIds=[req["InstanceId"]])
    rid = req["SpotInstanceRequestId"]
    return rid, lambda: ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[rid]) and None


def spot_fleet(env: Any, image: str, newest: str) -> tuple[str, Undo]:
    """A maintain-type Spot Fleet request scaled to zero: it launches on scale-out."""
    ec2 = env.client("ec2")
    fid = ec2.request_spot_fleet(
        SpotFleetRequestConfig={
            "IamFleetRole": f"arn:aws:iam::{env.account}:role/fleet",
            "TargetCapacity": 0,
            "Type": "maintain",
            "LaunchSpecifications": [{"ImageId": image, "InstanceType": "t3.micro"}],
        }
    )["SpotFleetRequestId"]

    def undo() -> None:
        ec2.cancel_spot_fleet_requests(SpotFleetRequestIds=[fid], TerminateInstances=False)

    return fid, undo


def ec2_fleet(env: Any, image: str, newest: str) -> tuple[str, Undo]:
    """An EC2 Fleet on a template of the newest image, with an ImageId override."""
    ec2 = env.client("ec2")
    lt = ec2.create_launch_template(
        LaunchTemplateName=f"fleet-{image}", LaunchTemplateData={"ImageId": newest}
    )["LaunchTemplate"]["LaunchTemplateId"]
    fid = ec2.create_fleet(
        Type="maintain",
        TargetCapacitySpecification={"TotalTargetCapacity": 0, "DefaultTargetCapacityType": "spot"},
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "$Latest"},
                "Overrides": [{"InstanceType": "t3.micro", "ImageId": image}],
            }
        ],
    )["FleetId"]
    return fid, lambda: ec2.delete_fleets(FleetIds=[fid], TerminateInstances=False) and None


def emr_cluster(env: Any, image: str, newest: str) -> tuple[str, Undo]:
    """A waiting EMR cluster with the image as its CustomAmiId."""
    emr = env.client("emr")
    cid = emr.run_job_flow(
        Name="etl",
        ReleaseLabel="emr-6.15.0",
        CustomAmiId=image,
        Instances={"KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    return cid, lambda: emr.terminate_job_flows(JobFlowIds=[cid]) and None


def batch_compute_environment(env: Any, image: str, newest: str) -> tuple[str, Undo]:
    """A managed Batch compute environment (no instances: minvCpus 0) with the image."""
    ec2, batch, iam = env.client("ec2"), env.client("batch"), env.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_instance_profile(InstanceProfileName="ecsInstanceRole")
    name = f"ce-{image}"
    arn = batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 4,
            "instanceTypes": ["optimal"],
            "imageId": image,
            "subnets": [ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
            "securityGroupIds": [
                ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
            ],
            "instanceRole": "ecsInstanceRole",
        },
    )["computeEnvironmentArn"]

    def undo() -> None:
        batch.update_compute_environment(computeEnvironment=name, state="DISABLED")
        batch.delete_compute_environment(computeEnvironment=name)

    return arn, undo


MAKERS: dict[str, Callable[[Any, str, str], tuple[str, Undo]]] = {
    "spot-request": spot_request,
    "spot-fleet": spot_fleet,
    "ec2-fleet": ec2_fleet,
    "emr-cluster": emr_cluster,
    "batch-compute-environment": batch_compute_environment,
}
# A sandbox fault that denies each kind's listing (Batch's REST calls name no action:
# the whole service is denied).
DENY = {
    "spot-request": {"action": "DescribeSpotInstanceRequests"},
    "spot-fleet": {"action": "DescribeSpotFleetRequests"},
    "ec2-fleet": {"action": "DescribeFleets"},
    "emr-cluster": {"action": "ListClusters"},
    "batch-compute-environment": {"service": "batch"},
}


def beanstalk_environment(env: Any, image: str) -> str:
    """A Beanstalk environment whose ImageId option is ``image``: its ARN."""
    eb = env.client("elasticbeanstalk")
    eb.create_application(ApplicationName="shop")
    return str(
        eb.create_environment(
            ApplicationName="shop",
            EnvironmentName="shop-prod",
            SolutionStackName="64bit Amazon Linux 2023 v4.0.0 running Python 3.11",
            OptionSettings=[
                {
                    "Namespace": "aws:autoscaling:launchconfiguration",
                    "OptionName": "ImageId",
                    "Value": image,
                }
            ],
        )["EnvironmentArn"]
    )
