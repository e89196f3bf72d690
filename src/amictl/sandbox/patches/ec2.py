"""EC2 images and snapshots as AWS documents them: the core of the amictl layer over moto.

Each function reproduces one AWS behaviour, is named after it, and is applied once in the
sandbox process by ``amictl.sandbox.patches.apply_all``; ``tests/test_sandbox_layer.py``
asserts each one through real boto3 clients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import (
    InvalidAMIIdError,
    InvalidSnapshotIdError,
    UnvailableAMIIdError,
)
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.utils import random_ami_id

from ..fastxml import FastResult
from .helpers import (
    FAST_XML,
    SEEDING,
    _paginate,
    as_bool,
    err,
    image_snapshot_ids,
    iso_ms,
    new_snapshot,
    now,
    parse_time,
    patch,
    snapshot_users,
)


def _ami_init(
    self: Any,
    ec2_backend: Any,
    ami_id: str,
    instance: Any = None,
    source_ami: Any = None,
    name: str | None = None,
    description: str | None = None,
    owner_id: str | None = None,
    owner_alias: str | None = None,
    public: bool = False,
    virtualization_type: str | None = "hvm",
    architecture: str | None = "x86_64",
    state: str = "available",
    creation_date: Any = None,
    platform: str | None = None,
    image_type: str = "machine",
    image_location: str | None = None,
    hypervisor: str | None = "xen",
    root_device_type: str = "ebs",
    root_device_name: str = "/dev/xvda",
    sriov: str = "simple",
    region_name: str | None = None,
    snapshot_description: str | None = None,
    product_codes: Any = None,
    boot_mode: str | None = None,
    tags: dict[str, Any] | None = None,
    bdm: list[dict[str, Any]] | None = None,
    **_ignored: Any,
) -> None:
    self.ec2_backend = ec2_backend
    self.id = ami_id
    self.state = state
    self.name = name
    self.image_type = image_type
    self.owner_id = owner_id or ec2_backend.account_id
    self.image_location = image_location or f"{self.owner_id}/{name}"
    self.owner_alias = owner_alias
    self.description = description
    self.virtualization_type = virtualization_type
    self.architecture = architecture
    self.kernel_id = None
    self.ramdisk = None
    self.platform = platform
    self.hypervisor = hypervisor
    self.root_device_name = root_device_name
    self.root_device_type = root_device_type
    self.sriov = sriov
    self.creation_date = creation_date or utcnow()
    self.product_codes = product_codes or set()
    self.boot_mode = boot_mode
    self.instance_id = None
    self.bdm = list(bdm or [])
    self.ena_support = True
    self.imds_support = None
    self.tpm_support = None
    self.uefi_data = None
    self.deprecation_time = None
    self.deregistration_protection = "disabled"
    self.protection_cooldown = False
    self.last_launched_time = None
    self.source_image_id = None
    self.source_image_region = None
    self.launch_permissions = []
    if public:
        self.launch_permissions.append({"Group": "all"})
    if tags:
        self.add_tags(tags)
    if instance is not None:
        self.instance = instance
        self.instance_id = instance.id
        self.virtualization_type = instance.virtualization_type
        self.architecture = instance.architecture
        self.platform = instance.platform
    elif source_ami is not None:
        for attr in (
            "virtualization_type",
            "architecture",
            "platform",
            "boot_mode",
            "root_device_name",
            "root_device_type",
            "ena_support",
            "imds_support",
            "tpm_support",
            "hypervisor",
        ):
            setattr(self, attr, getattr(source_ami, attr))
        self.name = name or source_ami.name
        self.description = description or source_ami.description


# The big listings are written by fastxml (seconds -> tens of ms per 1,000 items);
# tests switch it off to compare with moto's own serializer.
# Launch template versions whose data has only these keys are written by fastxml too
# (one call per template: the per-call cost counts); any other data goes through moto.
FAST_LT_KEYS = frozenset({"ImageId", "InstanceType"})


def _snapshot_view(s: Any) -> dict[str, Any]:
    """The Snapshot shape as DescribeSnapshots returns it (what moto's serializer picks)."""
    tags = [{"Key": k, "Value": v} for k, v in (s.ec2_backend.tags.get(s.id) or {}).items()]
    return {
        "OwnerAlias": getattr(s, "owner_alias", None),
        "StorageTier": s.storage_tier,
        "RestoreExpiryTime": s.restore_expiry_time,
        "SnapshotId": s.id,
        "VolumeId": s.volume.id,
        "State": s.status,
        "StartTime": s.start_time,
        "Progress": "100%",
        "OwnerId": s.owner_id,
        "Description": s.description,
        "VolumeSize": s.volume.size,
        "Encrypted": s.encrypted,
        "KmsKeyId": s.kms_key_id,
        "Tags": tags,
    }


def _aws_time_text(v: Any) -> Any:
    """moto's stored creation time (a datetime or '2026-06-06 19:50:27.614795') as
    DescribeImages writes it."""
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(v, str) and " " in v:
        try:
            t = dt.datetime.fromisoformat(v)
        except ValueError:
            return v
        return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return v


def _image_view(ami: Any) -> dict[str, Any]:
    """The Image shape as DescribeImages returns it."""
    tags = [{"Key": k, "Value": v} for k, v in (ami.ec2_backend.tags.get(ami.id) or {}).items()]
    view: dict[str, Any] = {
        "ImageId": ami.id,
        "ImageLocation": ami.image_location,
        "State": ami.state,
        "OwnerId": ami.owner_id,
        "CreationDate": ami.creation_date,
        "Public": ami.is_public,
        "ProductCodes": [
            {"ProductCodeId": c, "ProductCodeType": "marketplace"} for c in ami.product_codes
        ],
        "Architecture": ami.architecture,
        "ImageType": ami.image_type,
        "Name": ami.name,
        "Description": ami.description or None,
        "RootDeviceName": ami.root_device_name,
        "RootDeviceType": ami.root_device_type,
        "VirtualizationType": ami.virtualization_type,
        "Hypervisor": ami.hypervisor,
        "BlockDeviceMappings": ami.bdm,
        "EnaSupport": ami.ena_support,
        "SriovNetSupport": ami.sriov,
        "BootMode": ami.boot_mode,
        "ImdsSupport": ami.imds_support,
        "TpmSupport": ami.tpm_support,
        "DeprecationTime": ami.deprecation_time,
        "DeregistrationProtection": ami.deregistration_protection,
        "LastLaunchedTime": ami.last_launched_time,
        "SourceImageId": ami.source_image_id,
        "SourceImageRegion": ami.source_image_region,
        "SourceInstanceId": ami.instance_id,
        "ImageOwnerAlias": ami.owner_alias,
        "Tags": tags or None,
    }
    if ami.platform == "windows":
        view["Platform"] = "windows"
        view["PlatformDetails"] = "Windows"
    else:
        view["PlatformDetails"] = "Linux/UNIX"
    view["UsageOperation"] = "RunInstances:0002" if ami.platform == "windows" else "RunInstances"
    return view


@patch("RegisterImage/CreateImage/CopyImage: real image<->snapshot link (no fake 15 GiB snapshot)")
def real_image_snapshot_link() -> None:
    Ami.__init__ = _ami_init  # type: ignore[method-assign]
    Ami.block_device_mappings = property(lambda self: self.bdm)  # type: ignore[assignment,method-assign]

    def _tags_for(tag_specs: list[dict[str, Any]] | None, rtype: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for spec in tag_specs or []:
            if spec.get("ResourceType") == rtype:
                for t in spec.get("Tags", []):
                    out[t["Key"]] = t.get("Value", "")
            elif spec.get("ResourceType") not in ("image", "snapshot"):
                raise err(
                    "InvalidParameterValue",
                    f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this operation.",
                )
        return out

    def register_image(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        name = self._get_param("Name")
        if not name:
            raise err("MissingParameter", "The request must contain the parameter name")
        if any(a.name == name and a.owner_id == b.account_id for a in b.amis.values()):
            raise err("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI")
        mappings = self._get_param("BlockDeviceMappings", []) or []
        root = self._get_param("RootDeviceName") or (
            mappings[0]["DeviceName"] if mappings else "/dev/xvda"
        )
        bdm = []
        for m in mappings:
            ebs = m.get("Ebs")
            if ebs is None:
                bdm.append({"DeviceName": m["DeviceName"], "VirtualName": m.get("VirtualName")})
                continue
            snap_id = ebs.get("SnapshotId")
            size = ebs.get("VolumeSize")
            encrypted = False
            if snap_id:
                snap = b.snapshots.get(snap_id)
                if snap is None:
                    raise err(
                        "InvalidSnapshot.NotFound", f"The snapshot '{snap_id}' does not exist."
                    )
                size = size or snap.volume.size
                encrypted = snap.encrypted
                if int(size) < snap.volume.size:
                    raise err(
                        "InvalidBlockDeviceMapping",
                        f"Volume of size {size}GB is smaller than snapshot '{snap_id}', expect size >= {snap.volume.size}GB",
                    )
            bdm.append(
                {
                    "DeviceName": m["DeviceName"],
                    "Ebs": {
                        "SnapshotId": snap_id,
                        "VolumeSize": int(size or 8),
                        "DeleteOnTermination": as_bool(ebs.get("DeleteOnTermination", True)),
                        "VolumeType": ebs.get("VolumeType", "gp3"),
                        "Encrypted": encrypted,
                    },
                }
            )
        if not any(m["DeviceName"] == root for m in bdm) and not self._get_param("ImageLocation"):
            raise err(
                "InvalidBlockDeviceMapping",
                f"The root device name {root} has no block device mapping",
            )
        ami = Ami(
            b,
            random_ami_id(),
            name=name,
            description=self._get_param("Description"),
            architecture=self._get_param("Architecture") or "x86_64",
            virtualization_type=self._get_param("VirtualizationType") or "hvm",
            root_device_name=root,
            boot_mode=self._get_param("BootMode"),
            bdm=bdm,
            image_location=self._get_param("ImageLocation"),
        )
        ena = self._get_param("EnaSupport")
        ami.ena_support = True if ena is None else as_bool(ena)
        ami.imds_support = self._get_param("ImdsSupport")
        ami.tpm_support = self._get_param("TpmSupport")
        ami.uefi_data = self._get_param("UefiData")
        b.amis[ami.id] = ami
        ami.add_tags(_tags_for(self._get_param("TagSpecifications"), "image"))
        return ActionResult({"ImageId": ami.id})

    def create_image(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        instance = b.get_instance(self._get_param("InstanceId"))
        name = self._get_param("Name")
        specs = self._get_param("TagSpecifications", [])
        image_tags = _tags_for(specs, "image")
        snap_tags = _tags_for(specs, "snapshot")
        ami_id = random_ami_id()
        bdm = []
        for device, mapping in instance.get_block_device_mapping:
            vol = b.get_volume(mapping.volume_id)
            snap = b.create_snapshot(
                vol.id, f"Created by CreateImage({instance.id}) for {ami_id}", from_ami=ami_id
            )
            snap.add_tags(snap_tags)
            bdm.append(
                {
                    "DeviceName": device,
                    "Ebs": {
                        "SnapshotId": snap.id,
                        "VolumeSize": vol.size,
                        "DeleteOnTermination": True,
                        "VolumeType": getattr(vol, "volume_type", "gp3") or "gp3",
                        "Encrypted": bool(vol.encrypted),
                    },
                }
            )
        ami = Ami(
            b,
            ami_id,
            instance=instance,
            name=name,
            description=self._get_param("Description"),
            root_device_name=instance.root_device_name,
            bdm=bdm,
        )
        ami.state = "available"
        b.amis[ami_id] = ami
        ami.add_tags(image_tags)
        return ActionResult({"ImageId": ami_id})

    def copy_image(self: Any) -> ActionResult:
        self.error_on_dryrun()
        from moto.ec2.models import ec2_backends

        b = self.ec2_backend
        src_region = self._get_param("SourceRegion")
        src_id = self._get_param("SourceImageId")
        src_backend = ec2_backends[b.account_id][src_region]
        src = src_backend.amis.get(src_id)
        if src is None:
            raise InvalidAMIIdError(src_id)
        if src.state == "disabled":
            raise err(
                "InvalidAMIID.Unavailable", f"The image {src_id} is disabled and cannot be copied"
            )
        encrypted = as_bool(self._get_param("Encrypted", False))
        kms = self._get_param("KmsKeyId")
        if kms and not encrypted:
            raise err("InvalidParameterDependency", "KmsKeyId requires Encrypted=true")
        if encrypted and not kms:
            kms = f"arn:aws:kms:{b.region_name}:{b.account_id}:alias/aws/ebs"
        ami_id = random_ami_id()
        bdm = []
        for m in src.bdm:
            m2 = {k: (dict(v) if isinstance(v, dict) else v) for k, v in m.items()}
            ebs = m2.get("Ebs")
            if ebs and ebs.get("SnapshotId"):
                old = src_backend.snapshots.get(ebs["SnapshotId"])
                size = old.volume.size if old else ebs.get("VolumeSize", 8)
                enc = encrypted or bool(old and old.encrypted)
                snap = new_snapshot(
                    b,
                    size,
                    f"Copied for DestinationAmi {ami_id} from SourceAmi {src_id} for SourceSnapshot {ebs['SnapshotId']}. Task created on {now().date()}.",
                    encrypted=enc,
                    kms_key_id=kms if encrypted else (old.kms_key_id if old else None),
                )
                snap.from_ami = ami_id
                ebs["SnapshotId"] = snap.id
                ebs["Encrypted"] = enc
            bdm.append(m2)
        ami = Ami(
            b,
            ami_id,
            source_ami=src,
            name=self._get_param("Name"),
            description=self._get_param("Description"),
            bdm=bdm,
        )
        ami.source_image_id = src_id
        ami.source_image_region = src_region
        b.amis[ami_id] = ami
        if as_bool(self._get_param("CopyImageTags", False)):
            ami.add_tags({k: v for k, v in src.get_tags_dict().items() if not k.startswith("aws:")})
        ami.add_tags(_tags_for(self._get_param("TagSpecifications"), "image"))
        return ActionResult({"ImageId": ami_id})

    def get_tags_dict(self: Any) -> dict[str, str]:
        return dict(self.ec2_backend.tags.get(self.id) or {})

    Ami.get_tags_dict = get_tags_dict  # type: ignore[attr-defined]
    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    AmisResponse.create_image = create_image  # type: ignore[method-assign]
    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]


@patch(
    "DescribeImages: MaxResults (5..1000) + NextToken; IncludeDisabled; Owners/ExecutableUsers; the full Image shape"
)
def describe_images_as_aws() -> None:
    def describe_images(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ids = self._get_param("ImageIds", []) or []
        owners = self._get_param("Owners", []) or []
        exec_users = self._get_param("ExecutableUsers", []) or []
        include_disabled = as_bool(self._get_param("IncludeDisabled", False))
        filters = self._filters_from_querystring()
        if ids and self._get_param("MaxResults"):
            raise err(
                "InvalidParameterCombination",
                "The parameter imageIdsSet cannot be used with the parameter maxResults",
            )
        images = b.describe_images(
            ami_ids=ids, filters=filters, exec_users=exec_users, owners=owners
        )
        if not include_disabled:
            images = [a for a in images if a.state != "disabled"]
        page, token = _paginate(
            images, self._get_param("MaxResults"), self._get_param("NextToken"), key=lambda a: a.id
        )
        result: dict[str, Any] = {"Images": [_image_view(a) for a in page]}
        if token:
            result["NextToken"] = token
        if FAST_XML["on"]:
            for view in result["Images"]:
                view["CreationDate"] = _aws_time_text(view["CreationDate"])
            return FastResult(result)
        return ActionResult(result)

    AmisResponse.describe_images = describe_images  # type: ignore[method-assign]


@patch(
    "DescribeImageAttribute: every attribute incl. lastLaunchedTime, imdsSupport, tpmSupport, deregistrationProtection"
)
def describe_image_attribute_as_aws() -> None:
    simple = {
        "description": ("Description", "description"),
        "kernel": ("KernelId", "kernel_id"),
        "ramdisk": ("RamdiskId", "ramdisk"),
        "sriovNetSupport": ("SriovNetSupport", "sriov"),
        "bootMode": ("BootMode", "boot_mode"),
        "tpmSupport": ("TpmSupport", "tpm_support"),
        "uefiData": ("UefiData", "uefi_data"),
        "lastLaunchedTime": ("LastLaunchedTime", "last_launched_time"),
        "imdsSupport": ("ImdsSupport", "imds_support"),
        "deregistrationProtection": ("DeregistrationProtection", "deregistration_protection"),
    }

    def describe_image_attribute(self: Any) -> ActionResult:
        self.error_on_dryrun()
        ami_id = self._get_param("ImageId")
        attr = self._get_param("Attribute")
        ami = _get_owned(self.ec2_backend, ami_id)
        result: dict[str, Any] = {"ImageId": ami_id}
        if attr == "launchPermission":
            result["LaunchPermissions"] = ami.launch_permissions
        elif attr == "productCodes":
            result["ProductCodes"] = [
                {"ProductCodeId": c, "ProductCodeType": "marketplace"} for c in ami.product_codes
            ]
        elif attr == "blockDeviceMapping":
            result["BlockDeviceMappings"] = ami.bdm
        elif attr in simple:
            key, field = simple[attr]
            value = getattr(ami, field, None)
            result[key] = {"Value": value} if value is not None else {}
        else:
            raise err(
                "InvalidRequest",
                f"Value ({attr}) for parameter attribute is invalid. Unknown attribute.",
            )
        return ActionResult(result)

    AmisResponse.describe_image_attribute = describe_image_attribute  # type: ignore[method-assign]


def _get_owned(backend: Any, ami_id: str) -> Any:
    if ami_id in backend.amis:
        return backend.amis[ami_id]
    if ami_id in backend.deleted_amis:
        raise UnvailableAMIIdError(ami_id)
    raise InvalidAMIIdError(ami_id)


@patch(
    "EnableImageDeprecation / DisableImageDeprecation: DeprecationTime, rounded to the minute, never in the past"
)
def image_deprecation() -> None:
    def enable_image_deprecation(self: Any) -> ActionResult:
        self.error_on_dryrun()
        ami = _get_owned(self.ec2_backend, self._get_param("ImageId"))
        at = parse_time(self._get_param("DeprecateAt"))
        at = (at + dt.timedelta(seconds=30)).replace(second=0, microsecond=0)
        if at < now() - dt.timedelta(minutes=1):
            raise err("InvalidParameterValue", "The deprecation time can't be in the past.")
        if at > now() + dt.timedelta(days=3653):
            raise err(
                "InvalidParameterValue",
                "The deprecation time can't be more than 10 years from now.",
            )
        ami.deprecation_time = iso_ms(at)
        return ActionResult({"Return": True})

    def disable_image_deprecation(self: Any) -> ActionResult:
        self.error_on_dryrun()
        ami = _get_owned(self.ec2_backend, self._get_param("ImageId"))
        ami.deprecation_time = None
        return ActionResult({"Return": True})

    AmisResponse.enable_image_deprecation = enable_image_deprecation  # type: ignore[attr-defined]
    AmisResponse.disable_image_deprecation = disable_image_deprecation  # type: ignore[attr-defined]


@patch(
    "DisableImage/EnableImage: disabling removes all launch permissions; disabled images are hidden, cannot be launched or shared"
)
def disable_image_semantics() -> None:
    def disable_image(self: Any, ami_id: str) -> None:
        ami = _get_owned(self, ami_id)
        ami.state = "disabled"
        ami.launch_permissions = []

    def enable_image(self: Any, ami_id: str) -> None:
        ami = _get_owned(self, ami_id)
        if ami.state != "disabled":
            raise err("IncorrectState", f"The image {ami_id} is not disabled.")
        ami.state = "available"

    orig_modify = AmiBackend.modify_image_attribute

    def modify_image_attribute(
        self: Any, ami_id: str, launch_permissions_to_add: Any, launch_permissions_to_remove: Any
    ) -> None:
        ami = _get_owned(self, ami_id)
        if ami.state == "disabled" and launch_permissions_to_add:
            raise err(
                "InvalidAMIID.Unavailable", f"The image {ami_id} is disabled and cannot be shared."
            )
        for lp in launch_permissions_to_add:
            if set(lp) - {"Group", "UserId", "OrganizationArn", "OrganizationalUnitArn"}:
                raise err("InvalidParameterValue", f"Unknown launch permission {lp}")
        adds = [lp for lp in launch_permissions_to_add if "UserId" in lp or "Group" in lp]
        removes = [lp for lp in launch_permissions_to_remove if "UserId" in lp or "Group" in lp]
        orig_modify(self, ami_id, adds, removes)
        for lp in launch_permissions_to_add:
            if (
                "OrganizationArn" in lp or "OrganizationalUnitArn" in lp
            ) and lp not in ami.launch_permissions:
                ami.launch_permissions.append(lp)
        for lp in launch_permissions_to_remove:
            if lp in ami.launch_permissions:
                ami.launch_permissions.remove(lp)

    AmiBackend.disable_image = disable_image  # type: ignore[method-assign]
    AmiBackend.enable_image = enable_image  # type: ignore[method-assign]
    AmiBackend.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]


@patch(
    "Enable/DisableImageDeregistrationProtection: DeregisterImage fails while protected; WithCooldown keeps it 24 h"
)
def deregistration_protection() -> None:
    def enable(self: Any) -> ActionResult:
        self.error_on_dryrun()
        ami = _get_owned(self.ec2_backend, self._get_param("ImageId"))
        cooldown = as_bool(self._get_param("WithCooldown", False))
        ami.protection_cooldown = cooldown
        ami.deregistration_protection = "enabled-with-cooldown" if cooldown else "enabled"
        return ActionResult({"Return": "true"})

    def disable(self: Any) -> ActionResult:
        self.error_on_dryrun()
        ami = _get_owned(self.ec2_backend, self._get_param("ImageId"))
        if ami.protection_cooldown and ami.deregistration_protection.startswith("enabled"):
            ami.deregistration_protection = "disabled-until " + iso_ms(
                now() + dt.timedelta(hours=24)
            )
        else:
            ami.deregistration_protection = "disabled"
        ami.protection_cooldown = False
        return ActionResult({"Return": "true"})

    AmisResponse.enable_image_deregistration_protection = enable  # type: ignore[attr-defined]
    AmisResponse.disable_image_deregistration_protection = disable  # type: ignore[attr-defined]


def is_protected(ami: Any) -> bool:
    p = ami.deregistration_protection or "disabled"
    if p.startswith("enabled"):
        return True
    if p.startswith("disabled-until "):
        if parse_time(p.split(" ", 1)[1]) > now():
            return True
        ami.deregistration_protection = "disabled"
    return False


@patch(
    "DeregisterImage: refuses protected images; DeleteAssociatedSnapshots deletes snapshots no other image uses"
)
def deregister_image_as_aws() -> None:
    def deregister_image(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ami_id = self._get_param("ImageId")
        ami = _get_owned(b, ami_id)
        if ami.owner_id != b.account_id:
            raise err("AuthFailure", f"Not authorized for image:{ami_id}")
        if is_protected(ami):
            raise err(
                "InvalidParameterValue",
                f"Image {ami_id} has deregistration protection enabled ({ami.deregistration_protection}). Disable it first.",
            )
        snaps = image_snapshot_ids(ami)
        b.amis.pop(ami_id)
        b.deleted_amis.append(ami_id)
        result: dict[str, Any] = {"Return": True}
        if as_bool(self._get_param("DeleteAssociatedSnapshots", False)):
            from .retention import is_locked  # registered after this area (see apply_all)

            results = []
            for sid in snaps:
                if sid not in b.snapshots:
                    continue
                # AWS's codes (botocore SnapshotReturnCodes): ``skipped`` for a snapshot
                # another AMI uses; a lock's refusal is reported ``client-error`` (the
                # sandbox's choice: AWS documents no code for it)
                if snapshot_users(b, sid):
                    results.append({"SnapshotId": sid, "ReturnCode": "skipped"})
                    continue
                if is_locked(sid):
                    results.append({"SnapshotId": sid, "ReturnCode": "client-error"})
                    continue
                b.snapshots.pop(sid)
                results.append({"SnapshotId": sid, "ReturnCode": "success"})
            result["DeleteSnapshotResults"] = results
        return ActionResult(result)

    AmisResponse.deregister_image = deregister_image  # type: ignore[method-assign]


@patch("DeleteSnapshot: InvalidSnapshot.InUse while any registered image uses the snapshot")
def snapshot_in_use() -> None:
    def delete_snapshot(self: Any, snapshot_id: str) -> Snapshot:
        if snapshot_id not in self.snapshots:
            raise InvalidSnapshotIdError()
        users = snapshot_users(self, snapshot_id)
        if users:
            raise err(
                "InvalidSnapshot.InUse",
                f"The snapshot {snapshot_id} is currently in use by {users[0]}",
            )
        return self.snapshots.pop(snapshot_id)

    orig_tier = EBSBackend.modify_snapshot_tier

    def modify_snapshot_tier(self: Any, snapshot_id: str, storage_tier: str) -> Snapshot:
        if snapshot_id not in self.snapshots:
            raise InvalidSnapshotIdError()
        live = [
            a
            for a in self.amis.values()
            if snapshot_id in image_snapshot_ids(a) and a.state != "disabled"
        ]
        if live:
            raise err(
                "InvalidSnapshot.InUse",
                f"The snapshot {snapshot_id} is used by {live[0].id}; deregister or disable the image before archiving it.",
            )
        return orig_tier(self, snapshot_id, storage_tier)

    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]
    EBSBackend.modify_snapshot_tier = modify_snapshot_tier  # type: ignore[method-assign]


@patch(
    "DescribeSnapshots: OwnerIds (self, account ids, amazon) and MaxResults (5..1000) + NextToken"
)
def describe_snapshots_as_aws() -> None:
    def describe_snapshots(self: Any) -> ActionResult:
        b = self.ec2_backend
        filters = self._filters_from_querystring()
        ids = self._get_param("SnapshotIds", []) or []
        owners = self._get_param("OwnerIds", []) or []
        if ids and self._get_param("MaxResults"):
            raise err(
                "InvalidParameterCombination",
                "The parameter snapshotSet cannot be used with the parameter maxResults",
            )
        snaps = b.describe_snapshots(snapshot_ids=ids, filters=filters)
        if owners:
            wanted = {b.account_id if o == "self" else o for o in owners}
            snaps = [
                s
                for s in snaps
                if s.owner_id in wanted
                or ("amazon" in wanted and getattr(s, "owner_alias", None) == "amazon")
            ]
        page, token = _paginate(
            snaps, self._get_param("MaxResults"), self._get_param("NextToken"), key=lambda s: s.id
        )
        if FAST_XML["on"]:
            view = {"Snapshots": [_snapshot_view(x) for x in page]}
            if token:
                view["NextToken"] = token
            return FastResult(view)
        result: dict[str, Any] = {"Snapshots": page}
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]


@patch(
    "RunInstances: refuses disabled/deregistered images and records the image's LastLaunchedTime"
)
def run_instances_last_launched() -> None:
    orig = InstanceBackend.run_instances

    def run_instances(
        self: Any,
        image_id: str,
        count: int,
        user_data: Any,
        security_group_names: Any,
        **kwargs: Any,
    ) -> Any:
        ami = self.amis.get(image_id) if image_id else None
        if image_id and ami is None:
            if image_id in self.deleted_amis:
                raise UnvailableAMIIdError(image_id)
            raise InvalidAMIIdError(image_id)
        if ami is not None and ami.state == "disabled" and not getattr(SEEDING, "on", False):
            raise err(
                "InvalidAMIID.Unavailable",
                f"The image id '[{image_id}]' is disabled and cannot be launched",
            )
        res = orig(self, image_id, count, user_data, security_group_names, **kwargs)
        if ami is not None and not getattr(SEEDING, "on", False):
            ami.last_launched_time = iso_ms(now())
        return res

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]


@patch(
    "SSM Run Command: a command whose invocations did not all succeed is Failed (the outcome "
    "of each invocation is set in patches/ssm.py)"
)
def run_command_outcomes() -> None:
    from moto.ssm.models import Command

    orig_init = Command.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        failed = [i for i in self.invocations if i["Status"] != "Success"]
        if failed:
            self.status = "Failed"
            self.status_details = "Failed"
            self.error_count = len(failed)

    Command.__init__ = init  # type: ignore[method-assign]


@patch("ModifyImageAttribute Description / reset: simple attributes the executors may touch")
def image_description_attribute() -> None:
    orig = AmisResponse.modify_image_attribute

    def modify_image_attribute(self: Any) -> Any:
        desc = self._get_param("Description")
        if isinstance(desc, dict) and "Value" in desc:
            ami = _get_owned(self.ec2_backend, self._get_param("ImageId"))
            ami.description = desc["Value"]
            return EmptyResult()
        return orig(self)

    AmisResponse.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]


@patch(
    "Tags at scale: read a resource's tags by its id (moto scans every tag of the region per resource)"
)
def tag_lookup_by_resource_id() -> None:
    from moto.ec2.models.core import TaggedEC2Resource

    def get_tags(self: Any) -> list[dict[str, str]]:
        rid = getattr(self, "id", None)
        if not rid:
            return []
        tags = self.ec2_backend.tags.get(rid) or {}
        return [
            {"Key": k, "Value": v, "key": k, "value": v, "resource_id": rid}
            for k, v in tags.items()
        ]

    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]


@patch(
    "DescribeImages filters block-device-mapping.snapshot-id / .volume-size / .device-name "
    "(moto raises FilterNotImplementedError); apply's snapshot re-check relies on the first"
)
def describe_images_bdm_filters() -> None:
    orig = Ami.get_filter_value

    def get_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "block-device-mapping.snapshot-id":
            return image_snapshot_ids(self)
        if filter_name == "block-device-mapping.device-name":
            return [m.get("DeviceName") for m in self.bdm if m.get("DeviceName")]
        if filter_name == "block-device-mapping.volume-size":
            return [str(m["Ebs"].get("VolumeSize")) for m in self.bdm if m.get("Ebs")]
        return orig(self, filter_name, method_name)

    Ami.get_filter_value = get_filter_value  # type: ignore[method-assign]


@patch(
    "Scale: look an image up by id directly (moto filters every image of the region per instance launched)"
)
def image_lookup_by_id() -> None:
    orig = AmiBackend.describe_images

    def describe_images(
        self: Any,
        ami_ids: Any = None,
        filters: Any = None,
        exec_users: Any = None,
        owners: Any = None,
    ) -> list[Any]:
        if (
            filters
            and set(filters) == {"image-id"}
            and not ami_ids
            and not exec_users
            and not owners
        ):
            wanted = filters["image-id"]
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            if not any("*" in w or "?" in w for w in wanted):
                return [self.amis[w] for w in wanted if w in self.amis]
        return orig(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)

    AmiBackend.describe_images = describe_images  # type: ignore[method-assign]


@patch(
    "DescribeLaunchTemplates / DescribeLaunchTemplateVersions: MaxResults (1..200) + NextToken; moto cuts the list at 15"
)
def launch_template_pagination() -> None:
    from moto.ec2.responses.launch_templates import LaunchTemplates

    def describe_launch_templates(self: Any) -> ActionResult:
        self.error_on_dryrun()
        templates = self.ec2_backend.describe_launch_templates(
            template_names=self._get_param("LaunchTemplateNames", []),
            template_ids=self._get_param("LaunchTemplateIds", []),
            filters=self._filters_from_querystring(),
        )
        page, token = _paginate(
            list(templates),
            self._get_param("MaxResults"),
            self._get_param("NextToken"),
            key=lambda t: t.id,
            lo=1,
            hi=200,
        )
        result: dict[str, Any] = {
            "LaunchTemplates": [
                {
                    "CreateTime": t.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersionNumber": t.default_version_number,
                    "LatestVersionNumber": t.latest_version_number,
                    "LaunchTemplateId": t.id,
                    "LaunchTemplateName": t.name,
                    "Tags": t.tags,
                }
                for t in page
            ]
        }
        if token:
            result["NextToken"] = token
        if FAST_XML["on"]:  # (tests/test_aws_model.py: boto3 reads the same as from moto's)
            return FastResult(result)
        return ActionResult(result)

    def describe_launch_template_versions(self: Any) -> ActionResult:
        self.error_on_dryrun()
        found = self.ec2_backend.describe_launch_template_versions(
            template_name=self._get_param("LaunchTemplateName"),
            template_id=self._get_param("LaunchTemplateId"),
            versions=self._get_param("Versions", []),
            min_version=self._get_int_param("MinVersion"),
            max_version=self._get_int_param("MaxVersion"),
            max_results=10**9,
        )
        page, token = _paginate(
            list(found),
            self._get_param("MaxResults"),
            self._get_param("NextToken"),
            key=lambda tv: f"{tv[0].id}:{tv[1].number:010d}",
            lo=1,
            hi=200,
        )
        result: dict[str, Any] = {
            "LaunchTemplateVersions": [
                {
                    "CreateTime": v.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersion": t.is_default(v),
                    "LaunchTemplateData": v.data,
                    "LaunchTemplateId": t.id,
                    "LaunchTemplateName": t.name,
                    "VersionDescription": v.description,
                    "VersionNumber": v.number,
                }
                for t, v in page
            ]
        }
        if token:
            result["NextToken"] = token
        if FAST_XML["on"] and all(set(v.data or {}) <= FAST_LT_KEYS for _t, v in page):
            for item in result["LaunchTemplateVersions"]:
                if item["VersionDescription"] is None:
                    item["VersionDescription"] = ""
            return FastResult(result)
        return ActionResult(result)

    LaunchTemplates.describe_launch_templates = describe_launch_templates  # type: ignore[method-assign]
    LaunchTemplates.describe_launch_template_versions = describe_launch_template_versions  # type: ignore[method-assign]


# What the Recycle Bin holds: (account, region) -> id -> (object, enter time, exit time)
BIN_IMAGES: dict[tuple[str, str], dict[str, tuple[Any, dt.datetime, dt.datetime]]] = {}
BIN_SNAPSHOTS: dict[tuple[str, str], dict[str, tuple[Any, dt.datetime, dt.datetime]]] = {}


def _bin(store: dict[tuple[str, str], dict[str, Any]], backend: Any) -> dict[str, Any]:
    key = (backend.account_id, backend.region_name)
    items = store.setdefault(key, {})
    for rid in [k for k, v in items.items() if v[2] <= now()]:
        del items[rid]  # retention over: gone for good
    return items


@patch(
    "Recycle Bin: deregistered images / deleted snapshots matching a retention rule are kept and restorable"
)
def recycle_bin() -> None:
    from .. import rbin

    orig_dereg = AmisResponse.deregister_image

    def deregister_image(self: Any) -> ActionResult:
        b = self.ec2_backend
        ami = b.amis.get(self._get_param("ImageId"))
        result = orig_dereg(self)
        if ami is not None and ami.id not in b.amis:
            keep = rbin.retention_for(b.account_id, b.region_name, "EC2_IMAGE", ami.get_tags_dict())
            if keep is not None:
                _bin(BIN_IMAGES, b)[ami.id] = (ami, now(), now() + keep)
        return result

    orig_del = EBSBackend.delete_snapshot

    def delete_snapshot(self: Any, snapshot_id: str) -> Snapshot:
        snap = orig_del(self, snapshot_id)
        tags = dict(self.tags.get(snapshot_id) or {})
        keep = rbin.retention_for(self.account_id, self.region_name, "EBS_SNAPSHOT", tags)
        if keep is not None:
            _bin(BIN_SNAPSHOTS, self)[snapshot_id] = (snap, now(), now() + keep)
        return snap

    def list_images_in_recycle_bin(self: Any) -> ActionResult:
        items = _bin(BIN_IMAGES, self.ec2_backend)
        ids = self._get_param("ImageIds", []) or list(items)
        rows = [
            {
                "ImageId": i,
                "Name": items[i][0].name,
                "Description": items[i][0].description,
                "RecycleBinEnterTime": items[i][1],
                "RecycleBinExitTime": items[i][2],
            }
            for i in ids
            if i in items
        ]
        return ActionResult({"Images": rows})

    def restore_image_from_recycle_bin(self: Any) -> ActionResult:
        b = self.ec2_backend
        ami_id = self._get_param("ImageId")
        items = _bin(BIN_IMAGES, b)
        if ami_id not in items:
            raise err("InvalidAMIID.NotFound", f"The image {ami_id} is not in the Recycle Bin")
        ami = items.pop(ami_id)[0]
        b.amis[ami_id] = ami
        if ami_id in b.deleted_amis:
            b.deleted_amis.remove(ami_id)
        return ActionResult({"Return": True})

    def list_snapshots_in_recycle_bin(self: Any) -> ActionResult:
        items = _bin(BIN_SNAPSHOTS, self.ec2_backend)
        ids = self._get_param("SnapshotIds", []) or list(items)
        rows = [
            {
                "SnapshotId": i,
                "Description": items[i][0].description,
                "VolumeId": items[i][0].volume.id,
                "RecycleBinEnterTime": items[i][1],
                "RecycleBinExitTime": items[i][2],
            }
            for i in ids
            if i in items
        ]
        return ActionResult({"Snapshots": rows})

    def restore_snapshot_from_recycle_bin(self: Any) -> ActionResult:
        b = self.ec2_backend
        sid = self._get_param("SnapshotId")
        items = _bin(BIN_SNAPSHOTS, b)
        if sid not in items:
            raise err("InvalidSnapshot.NotFound", f"The snapshot {sid} is not in the Recycle Bin")
        snap = items.pop(sid)[0]
        b.snapshots[sid] = snap
        return ActionResult(
            {"SnapshotId": sid, "State": "completed", "VolumeSize": snap.volume.size}
        )

    AmisResponse.deregister_image = deregister_image  # type: ignore[method-assign]
    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]
    AmisResponse.list_images_in_recycle_bin = list_images_in_recycle_bin  # type: ignore[attr-defined]
    AmisResponse.restore_image_from_recycle_bin = restore_image_from_recycle_bin  # type: ignore[attr-defined]
    AmisResponse.list_snapshots_in_recycle_bin = list_snapshots_in_recycle_bin  # type: ignore[attr-defined]
    AmisResponse.restore_snapshot_from_recycle_bin = restore_snapshot_from_recycle_bin  # type: ignore[attr-defined]
