"""Seed the EC2-side launchers of issue 26 (``fleet_launchers``) into moto's backends,
inside the sandbox process, after the images and launch templates they name."""

from __future__ import annotations

from typing import Any

from moto.batch.models import batch_backends
from moto.ec2.models import ec2_backends
from moto.emr.models import emr_backends
from moto.iam.models import iam_backends

from .fleet import Fleet
from .patches import spot as spot_patches

INSTANCE_PROFILE = "ecsInstanceRole"


def seed_launchers(fleet: Fleet, aliases: dict[str, Any]) -> None:
    acct = fleet.account
    for r in fleet.spot_requests:
        b = ec2_backends[acct][r["region"]]
        spot_patches.UNFULFILLED.on = r["state"] != "active"
        try:
            req = b.request_spot_instances(
                price="0.05", image_id=aliases[r["image"]], count=1,
                spot_instance_type=r["type"], valid_from=None, valid_until=None,
                launch_group=None, availability_zone_group=None, key_name="",
                security_groups=[], user_data=None, instance_type=r["instance_type"],
                placement=None, kernel_id=None, ramdisk_id=None, monitoring_enabled=False,
                subnet_id="",
            )[0]  # fmt: skip
        finally:
            spot_patches.UNFULFILLED.on = False
        if r["state"] == "cancelled":
            b.cancel_spot_instance_requests([req.id])
        aliases[r["alias"]] = req.id
    for f in fleet.spot_fleets:
        b = ec2_backends[acct][f["region"]]
        sfr = b.request_spot_fleet(
            spot_price="0.05", target_capacity=str(f["capacity"]),
            iam_fleet_role=f"arn:aws:iam::{acct}:role/aws-ec2-spot-fleet-tagging-role",
            allocation_strategy="lowestPrice",
            launch_specs=[{"ImageId": aliases[f["image"]], "InstanceType": "t3.micro"}],
        )  # fmt: skip
        sfr.fleet_type = f["type"]  # type: ignore[attr-defined]  # patches.spot returns it
        aliases[f["alias"]] = sfr.id
    for f in fleet.ec2_fleets:
        b = ec2_backends[acct][f["region"]]
        override = {"InstanceType": "t3.micro"}
        if f["image"]:
            override["ImageId"] = aliases[f["image"]]
        ef = b.create_fleet(
            on_demand_options={}, spot_options={},
            target_capacity_specification={
                "TotalTargetCapacity": f["capacity"], "DefaultTargetCapacityType": "spot"
            },
            launch_template_configs=[{
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": aliases[f["launch_template"]], "Version": f["version"]
                },
                "Overrides": [override],
            }],
            excess_capacity_termination_policy="termination", replace_unhealthy_instances=False,
            terminate_instances_with_expiration=True, fleet_type=f["type"], valid_from=None,
            valid_until=None, tag_specifications=[],
        )  # fmt: skip
        aliases[f["alias"]] = ef.id
    for c in fleet.emr_clusters:
        _emr_cluster(fleet, c, aliases)
    for ce in fleet.batch_compute_environments:
        _batch_compute_environment(fleet, ce, aliases)


def _emr_cluster(fleet: Fleet, c: dict[str, Any], aliases: dict[str, Any]) -> None:
    emr = emr_backends[fleet.account][c["region"]]
    attrs = {
        "ec2_subnet_id": None,
        "emr_managed_master_security_group": None,
        "emr_managed_slave_security_group": None,
        "service_access_security_group": None,
        "availability_zone": f"{c['region']}a",
        "keep_job_flow_alive_when_no_steps": True,
    }
    cluster = emr.run_job_flow(
        name=c["name"], log_uri=None, job_flow_role="EMR_EC2_DefaultRole",
        service_role="EMR_DefaultRole", steps=[], instance_attrs=attrs,
        release_label="emr-6.15.0", custom_ami_id=aliases[c["image"]] if c["image"] else None,
    )  # fmt: skip
    for i, alias in enumerate(c["group_images"]):
        role = "MASTER" if i == 0 else "CORE"
        spec = {"instance_count": 1, "instance_role": role, "instance_type": "m5.xlarge"}
        (group,) = emr.add_instance_groups(cluster.id, [{**spec, "custom_ami_id": aliases[alias]}])
        emr.run_instances(cluster.id, dict(spec), group)
    if c["state"] == "TERMINATED":
        cluster.terminate()
    aliases[c["alias"]] = cluster.id


def _batch_compute_environment(fleet: Fleet, ce: dict[str, Any], aliases: dict[str, Any]) -> None:
    acct, region = fleet.account, ce["region"]
    iam = iam_backends[acct]["aws"]
    if INSTANCE_PROFILE not in iam.instance_profiles:
        iam.create_instance_profile(INSTANCE_PROFILE, "/", [])
    ec2 = ec2_backends[acct][region]
    subnet = ec2.describe_subnets()[0].id
    group = ec2.get_security_group_by_name_or_id("default")
    assert group is not None  # every VPC has one
    resources: dict[str, Any] = {
        "type": "EC2", "minvCpus": 0, "maxvCpus": 16, "instanceTypes": ["optimal"],
        "subnets": [subnet], "securityGroupIds": [group.id], "instanceRole": INSTANCE_PROFILE,
    }  # fmt: skip
    if ce["image"]:
        resources["imageId"] = aliases[ce["image"]]
    if ce["image_override"]:
        resources["ec2Configuration"] = [
            {"imageType": "ECS_AL2", "imageIdOverride": aliases[ce["image_override"]]}
        ]
    if ce["launch_template"]:
        resources["launchTemplate"] = {
            "launchTemplateId": aliases[ce["launch_template"]],
            "version": ce["version"],
        }
    env = batch_backends[acct][region].create_compute_environment(
        ce["name"], "MANAGED", ce["state"], resources, ""
    )
    aliases[ce["alias"]] = env.arn
