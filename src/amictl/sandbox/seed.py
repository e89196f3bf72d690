"""Seed a validated fleet into the running moto backends, inside the sandbox process.

Objects are made directly in the backends (no HTTP round trip per object), so the
20,000-image ``large`` fleet loads in seconds. What the fleet says about an image
(age, deprecation, protection, sharing, LastLaunchedTime, source image) is set as
AWS would report it; moto's own behaviour is corrected by ``sandbox/patches/``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id
from moto.ssm.models import ssm_backends

from . import patches
from .fleet import Fleet
from .seed_launchers import seed_launchers
from .seed_services import existing_names, seed_services

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}


def _perms(shared_with: list[str], public: bool) -> list[dict[str, str]]:
    out: list[dict[str, str]] = [{"Group": "all"}] if public else []
    for target in shared_with:
        if target.startswith("arn:aws:organizations::") and ":ou/" in target:
            out.append({"OrganizationalUnitArn": target})
        elif target.startswith("arn:aws:organizations::"):
            out.append({"OrganizationArn": target})
        else:
            out.append({"UserId": target})
    return out


_EXISTS_HINT = (
    "rename it, give the fleet another `account:`, "
    "or restart the sandbox (amictl sandbox down; amictl sandbox up)"
)


def preflight(fleet: Fleet) -> None:
    """What only the running sandbox can tell, checked before anything is created.

    ``fleet.parse`` validated the file itself; this adds the regions moto serves and
    the names that already exist from an earlier load (launch templates would fail,
    launch configurations and groups would be silently replaced). A problem is an
    InputError naming the file, line and key, and the sandbox is left untouched.
    """
    acct = fleet.account
    for i, region in enumerate(fleet.regions):
        try:
            ec2_backends[acct][region]
            autoscaling_backends[acct][region]
            ssm_backends[acct][region]
        except KeyError:
            raise fleet.error(
                ("regions", i), f"the sandbox does not serve region {region!r}"
            ) from None
    named: list[tuple[str, str, Any]] = [
        (
            "launch_templates",
            "launch template",
            lambda r: ec2_backends[acct][r].launch_template_name_to_ids,
        ),
        (
            "launch_configurations",
            "launch configuration",
            lambda r: autoscaling_backends[acct][r].launch_configurations,
        ),
        (
            "auto_scaling_groups",
            "auto scaling group",
            lambda r: autoscaling_backends[acct][r].autoscaling_groups,
        ),
    ]
    named += existing_names(acct)  # issue 26: stacks, environments, recipes
    for section, what, existing in named:
        for i, item in enumerate(getattr(fleet, section)):
            if item["name"] in existing(item["region"]):
                raise fleet.error(
                    (section, i, "name"),
                    f"a {what} named {item['name']!r} already exists in the sandbox "
                    f"(account {acct}, {item['region']}); nothing was loaded",
                    hint=_EXISTS_HINT,
                )


def _seed_settings(fleet: Fleet) -> None:
    """Image Block Public Access and Recycle Bin rules (fleet.md extension, docs/sandbox.md)."""
    from . import rbin
    from .patches import sharing as patches_sharing

    if fleet.image_block_public_access is not None:
        state = (
            patches_sharing.BLOCKED
            if fleet.image_block_public_access
            else patches_sharing.UNBLOCKED
        )
        for region in fleet.regions:
            patches_sharing.IMAGE_BLOCK_PUBLIC_ACCESS[(fleet.account, region)] = state
    for rule in fleet.recycle_bin_rules:
        body = {
            "ResourceType": rule["resource_type"],
            "RetentionPeriod": {
                "RetentionPeriodValue": rule["retention_days"],
                "RetentionPeriodUnit": "DAYS",
            },
            "Description": "seeded by the fleet file",
        }
        rbin.handle("POST", "/rules", json.dumps(body).encode(), fleet.account, rule["region"])
    if fleet.builder_instance_profile:  # what `amictl bake setup` makes in a real account
        from ..creation.builder_role import SSM_CORE_POLICY, TRUST_POLICY
        from .patches.iam import ensure_builder

        ensure_builder(
            fleet.account, fleet.builder_instance_profile, [SSM_CORE_POLICY], TRUST_POLICY
        )


def _seed_watermarks(fleet: Fleet, images_by_alias: dict[str, Any]) -> None:
    """``watermark: NAME`` attached by the image's owner, then ``watermarks_of: ALIAS``:
    that image's watermarks (its own, or inherited earlier in the file), as CreateImage
    from an instance of it would carry them, without lineage (issue 28)."""
    from .patches import governance

    for img in fleet.images:
        if img["watermark"]:
            ami = images_by_alias[img["alias"]]
            governance.watermark(ami, ami.owner_id, ami.ec2_backend.region_name, img["watermark"])
    for img in fleet.images:
        if img["watermarks_of"]:
            governance.inherit_watermarks(
                images_by_alias[img["alias"]].id, images_by_alias[img["watermarks_of"]].id
            )


def seed(fleet: Fleet, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Create everything in ``fleet``; return {"aliases": {...}, "seconds": s, "counts": {...}}.

    Raises InputError, before creating anything, if ``preflight`` finds a problem.
    """
    preflight(fleet)
    started = time.perf_counter()
    now = (now or patches.now()).astimezone(dt.UTC)
    naive_now = now.replace(tzinfo=None)
    acct = fleet.account
    aliases: dict[str, Any] = {}
    images_by_alias: dict[str, Any] = {}

    def ago(days: float) -> dt.datetime:
        return naive_now - dt.timedelta(days=float(days))

    # Images: those with their own snapshots first, then those reusing another's.
    by_alias = {i["alias"]: i for i in fleet.images}

    def depth(img: dict[str, Any]) -> int:
        n = 0
        while img["reuse_snapshot_of"]:
            img = by_alias[img["reuse_snapshot_of"]]
            n += 1
        return n

    ordered = sorted(fleet.images, key=depth)  # stable: after the image whose snapshot it reuses
    for img in ordered:
        b = ec2_backends[acct][img["region"]]
        created = ago(img["age_days"])
        ami_id = random_ami_id()
        bdm: list[dict[str, Any]] = []
        if img["image_location"]:  # instance-store-backed: the root is an S3 bundle
            bdm.append({"DeviceName": "/dev/sda1", "VirtualName": "ephemeral0"})
        elif img["reuse_snapshot_of"]:
            other = images_by_alias[img["reuse_snapshot_of"]]
            root = other.bdm[0]
            bdm.append({"DeviceName": root["DeviceName"], "Ebs": dict(root["Ebs"])})
        else:
            for s in img["snapshots"]:
                snap = patches.new_snapshot(
                    b,
                    s["size_gib"],
                    f"Created by CreateImage(i-0seeded00000000) for {ami_id}",
                    encrypted=s["encrypted"],
                    start_time=created,
                    owner_id=img["owner"],
                )
                snap.from_ami = ami_id
                snap.storage_tier = s["storage_tier"]
                if s["tags"]:
                    snap.add_tags({str(k): str(v) for k, v in s["tags"].items()})
                bdm.append(
                    {
                        "DeviceName": s["device"],
                        "Ebs": {
                            "SnapshotId": snap.id,
                            "VolumeSize": s["size_gib"],
                            "DeleteOnTermination": True,
                            "VolumeType": s["volume_type"],
                            "Encrypted": s["encrypted"],
                        },
                    }
                )
        ami = Ami(
            b,
            ami_id,
            name=img["name"],
            description=img["description"],
            owner_id=img["owner"],
            owner_alias=img["owner_alias"],
            architecture=img["architecture"],
            platform="windows" if img["platform"] == "windows" else None,
            creation_date=created,
            state=img["state"],
            root_device_name=bdm[0]["DeviceName"],
            boot_mode=img["boot_mode"],
            bdm=bdm,
            image_location=img["image_location"],
            root_device_type="instance-store" if img["image_location"] else "ebs",
        )
        ami.imds_support = img["imds_support"]
        ami.launch_permissions = _perms(img["shared_with"], img["public"])
        if img["deprecated_days_ago"] is not None:
            ami.deprecation_time = patches.iso_ms(
                ago(img["deprecated_days_ago"]).replace(tzinfo=dt.UTC)
            )
        if img["deprecate_in_days"] is not None:
            ami.deprecation_time = patches.iso_ms(
                ago(-img["deprecate_in_days"]).replace(tzinfo=dt.UTC)
            )
        if img["disabled"]:
            ami.state = "disabled"
            ami.launch_permissions = []
        if img["deregistration_protection"]:
            ami.deregistration_protection = "enabled"
        if img["last_launched_days_ago"] is not None:
            ami.last_launched_time = patches.iso_ms(
                ago(img["last_launched_days_ago"]).replace(tzinfo=dt.UTC)
            )
        b.amis[ami_id] = ami
        if img["tags"]:
            ami.add_tags(img["tags"])
        images_by_alias[img["alias"]] = ami
        aliases[img["alias"]] = ami_id
        if img.get("findings") is not None:  # issue 28: Amazon Inspector's scan
            from .patches import findings as patches_findings

            try:
                patches_findings.set_image(ami_id, img["findings"])
            except ValueError as exc:
                raise ValueError(f"image {img['alias']}: findings: {exc}") from None
    for img in fleet.images:
        if img["source"]:
            src = images_by_alias[img["source"]]
            ami = images_by_alias[img["alias"]]
            ami.source_image_id = src.id
            ami.source_image_region = src.ec2_backend.region_name
    _seed_watermarks(fleet, images_by_alias)

    for snap in fleet.snapshots:
        b = ec2_backends[acct][snap["region"]]
        if snap["description"]:
            desc = snap["description"]
        elif snap["made_for_deleted_image"]:
            desc = f"Created by CreateImage(i-0seeded00000000) for {random_ami_id()}"
        else:
            desc = "volume backup"
        s = patches.new_snapshot(
            b,
            snap["size_gib"],
            desc,
            encrypted=snap["encrypted"],
            volume_id="vol-0seeded0000000001",
            start_time=ago(snap["age_days"]),
        )
        if snap["tags"]:
            s.add_tags({str(k): str(v) for k, v in snap["tags"].items()})
        s.storage_tier = snap["storage_tier"]
        aliases[snap["alias"]] = s.id

    _seed_settings(fleet)
    patches.SEEDING.on = True
    try:
        for inst in fleet.instances:
            b = ec2_backends[acct][inst["region"]]
            res = b.run_instances(
                aliases[inst["image"]],
                inst["count"],
                None,
                [],
                instance_type=inst["instance_type"],
                is_instance_type_default=False,
                region_name=inst["region"],
                tags={"instance": inst["tags"]} if inst["tags"] else {},
            )
            ids = [i.id for i in res.instances]
            aliases[inst["alias"]] = ids[0] if len(ids) == 1 else ids
            if inst["state"] == "stopped":
                b.stop_instances(ids)
            elif inst["state"] == "terminated":
                b.terminate_instances(ids)
            elif inst["state"] != "running":
                for i in res.instances:
                    i._state.name = inst["state"]
                    i._state.code = STATE_CODES[inst["state"]]
    finally:
        patches.SEEDING.on = False

    for lt in fleet.launch_templates:
        b = ec2_backends[acct][lt["region"]]

        def data(v: dict[str, Any]) -> dict[str, Any]:
            d: dict[str, Any] = {"InstanceType": v["instance_type"]}
            image_id = aliases[v["image"]] if v["image"] else v["image_id"]
            if image_id:
                d["ImageId"] = image_id
            return d

        vs = lt["versions"]
        lt_tags = {"launch-template": {str(k): str(v) for k, v in lt["tags"].items()}}
        # tagged at creation: moto copies a template's tags into DescribeLaunchTemplates then
        tmpl = b.create_launch_template(
            lt["name"], vs[0]["description"] or "", data(vs[0]), lt_tags
        )
        for v in vs[1:]:
            tmpl.create_version(data(v), v["description"] or "")
        tmpl.default_version_number = lt["default_version"]
        if lt["tags"]:
            tmpl.add_tags({str(k): str(v) for k, v in lt["tags"].items()})
        aliases[lt["alias"]] = tmpl.id

    for lc in fleet.launch_configurations:
        asb = autoscaling_backends[acct][lc["region"]]
        asb.create_launch_configuration(
            name=lc["name"],
            image_id=aliases[lc["image"]],
            key_name=None,
            kernel_id="",
            ramdisk_id="",
            security_groups=[],
            user_data=None,
            instance_type=lc["instance_type"],
            instance_monitoring=False,
            instance_profile_name=None,
            spot_price=None,
            ebs_optimized=False,
            associate_public_ip_address=False,
            block_device_mappings=[],
        )
        aliases[lc["alias"]] = lc["name"]

    for asg in fleet.auto_scaling_groups:
        asb = autoscaling_backends[acct][asg["region"]]
        zones = [f"{asg['region']}a"]
        lt_spec = None
        lc_name = None
        mixed = None
        if asg["launch_template"]:
            lt_spec = {
                "LaunchTemplateId": aliases[asg["launch_template"]],
                "Version": asg["version"],
            }
        elif asg["launch_configuration"]:
            lc_name = aliases[asg["launch_configuration"]]
        else:
            m = asg["mixed"]
            overrides = []
            for o in m["overrides"]:
                ov: dict[str, Any] = {"InstanceType": o["instance_type"] or "t3.small"}
                if o["launch_template"]:
                    ov["LaunchTemplateSpecification"] = {
                        "LaunchTemplateId": aliases[o["launch_template"]],
                        "Version": o["version"],
                    }
                overrides.append(ov)
            mixed = {
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateId": aliases[m["launch_template"]],
                        "Version": m["version"],
                    },
                    "Overrides": overrides,
                }
            }
        asb.create_auto_scaling_group(
            name=asg["name"],
            availability_zones=zones,
            desired_capacity=asg["desired"],
            max_size=max(asg["desired"], 1),
            min_size=0,
            launch_config_name=lc_name,
            launch_template=lt_spec,
            vpc_zone_identifier=None,
            default_cooldown=300,
            health_check_period=300,
            health_check_type="EC2",
            load_balancers=[],
            target_group_arns=[],
            placement_group=None,
            termination_policies=[],
            tags=[],
            mixed_instances_policy=mixed,
        )
        aliases[asg["alias"]] = asg["name"]

    for prm in fleet.ssm_parameters:
        ssm = ssm_backends[acct][prm["region"]]
        value = aliases[prm["image"]] if prm["image"] else prm["value"]
        ssm.put_parameter(
            name=prm["name"],
            description="",
            value=value,
            parameter_type="String",
            allowed_pattern="",
            keyid="",
            overwrite=True,
            tags=[],
            data_type=prm["data_type"],
            tier=None,
            policies=None,
        )
        aliases[prm["alias"]] = prm["name"]
    seed_services(fleet, aliases)  # issue 26: stacks, environments, recipes

    seed_launchers(fleet, aliases)  # issue 26: Spot, fleets, EMR, Batch

    return {
        "aliases": aliases,
        "seconds": round(time.perf_counter() - started, 3),
        "counts": fleet.counts(),
        "account": acct,
        "regions": fleet.regions,
    }
