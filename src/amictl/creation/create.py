"""Create a new version of an image family from an instance or from snapshots.

The image is named ``<family>-<version>`` (the default name convention of
``amictl.model``) and tagged, together with every one of its snapshots, with
``family``, ``version``, ``amictl:created-by`` (the caller's ARN) and its lineage
(``amictl:source-instance``, ``amictl:source-image``, ``amictl:source-snapshots``).
A family+version (or name) that already exists in the account/region is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import botocore.exceptions

from ..aws import stopping
from ..aws.session import Connector, Target, aws_error
from ..errors import AmictlError, InputError
from ..governance.watermarks import DEFAULT_TEMPLATE as WATERMARK_TEMPLATE
from ..governance.watermarks import try_attach
from ..model import DEFAULT_NAME_PATTERN, version_key
from ..tagnames import FAMILY_TAG, VERSION_TAG
from ..versions import written_version_problem
from . import volumes as volumes_mod

CREATED_BY_TAG = "amictl:created-by"
SOURCE_INSTANCE_TAG = "amictl:source-instance"
SOURCE_IMAGE_TAG = "amictl:source-image"
SOURCE_SNAPSHOTS_TAG = "amictl:source-snapshots"

BUMPS = ("major", "minor", "patch")
ARCHITECTURES = ("x86_64", "arm64")
BOOT_MODES = ("uefi", "legacy-bios", "uefi-preferred")
EXTRA_DEVICES = tuple(f"/dev/sd{c}" for c in "fghijklmnop")

# What `amictl create` calls (sts:GetCallerIdentity is in every command's base set).
CREATE_PERMISSIONS = frozenset(
    {
        "ec2:CreateImage",
        "ec2:RegisterImage",
        "ec2:CreateTags",
        "ec2:DescribeImages",
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:AttachImageWatermark",  # the family's provenance watermark (issue 20)
    }
)

FAMILY_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
SEMVER_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


@dataclass
class Created:
    """The image made, where, and what it was made from."""

    image_id: str
    name: str
    family: str
    version: str
    account: str
    region: str
    state: str
    snapshot_ids: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    source_instance: str | None = None
    source_image: str | None = None
    source_snapshots: list[str] = field(default_factory=list)
    watermark: str | None = None  # the WatermarkKey attached (issue 20)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ names and versions


def check_family(family: str) -> None:
    if not FAMILY_RE.match(family or "") or len(family) > 100:
        raise InputError(
            f"{family!r} is not a family name: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
            key="--family",
        )


def check_version(version: str) -> None:
    problem = written_version_problem(version)
    if problem:
        raise InputError(problem, key="--version")


def image_name(family: str, version: str) -> str:
    """``<family>-<version>``, checked to read back as the same family and version."""
    check_family(family)
    check_version(version)
    name = f"{family}-{version}"
    m = re.match(DEFAULT_NAME_PATTERN, name)
    if not m or (m.group("family"), m.group("version")) != (family, version):
        raise InputError(
            f"{name!r} would not read back as family {family!r} version {version!r}",
            key="--family",
        )
    return name


def next_version(existing: Sequence[str], bump: str) -> str:
    """The next semantic version after the highest of ``existing`` (major.minor.patch).

    Versions that are not numeric (``1``, ``1.2``, ``1.2.3``, optional ``v``) are
    ignored; with none, the first version is 1.0.0 (major), 0.1.0 (minor) or 0.0.1 (patch).
    """
    if bump not in BUMPS:
        raise InputError(f"expected one of {', '.join(BUMPS)}, got {bump!r}", key="--bump")
    numeric = [v for v in existing if SEMVER_RE.match(v or "")]
    if not numeric:
        return {"major": "1.0.0", "minor": "0.1.0", "patch": "0.0.1"}[bump]
    top = max(numeric, key=version_key)
    m = SEMVER_RE.match(top)
    assert m is not None
    major, minor, patch = (int(g or 0) for g in m.groups())
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


# ------------------------------------------------------------------ AWS helpers


def single_target(conn: Connector) -> Target:
    """create works in exactly one account and region."""
    targets = conn.targets()
    if len(targets) != 1:
        where = ", ".join(f"{t.account}/{t.region}" for t in targets)
        raise InputError(
            f"create makes one image in one account and region; got {len(targets)} ({where})",
            key="--region",
            hint="give one --region (and at most one --role-arn)",
        )
    return targets[0]


def _call(target: Target, operation: str, fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error(exc, operation, target.region) from None
    except botocore.exceptions.ClientError as exc:
        raise aws_error(exc, operation, target.region) from None


def family_images(ec2: Any, target: Target, family: str) -> list[dict[str, Any]]:
    """Every owned image tagged with the family (disabled and deprecated included)."""
    images: list[dict[str, Any]] = []
    pages = ec2.get_paginator("describe_images").paginate(
        Owners=["self"],
        IncludeDisabled=True,
        IncludeDeprecated=True,
        Filters=[{"Name": f"tag:{FAMILY_TAG}", "Values": [family]}],
    )
    try:
        for page in pages:
            images.extend(page.get("Images", []))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise aws_error(exc, "DescribeImages", target.region) from None
    return images


def _tags(image: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in image.get("Tags") or []}


def family_versions(ec2: Any, target: Target, family: str) -> list[str]:
    return [v for v in (_tags(i).get(VERSION_TAG) for i in family_images(ec2, target, family)) if v]


def refuse_duplicate(ec2: Any, target: Target, family: str, version: str, name: str) -> None:
    """InputError (exit 2) when the family already has the version, or the name is taken."""
    for image in family_images(ec2, target, family):
        if _tags(image).get(VERSION_TAG) == version:
            raise InputError(
                f"{family} {version} already exists in {target.account}/{target.region}: "
                f"{image['ImageId']} ({image.get('Name')})",
                key="--version",
                hint="choose another version, or --bump major|minor|patch",
            )
    resp = _call(
        target,
        "DescribeImages",
        ec2.describe_images,
        Owners=["self"],
        IncludeDisabled=True,
        IncludeDeprecated=True,
        Filters=[{"Name": "name", "Values": [name]}],
    )
    for image in resp.get("Images", []):
        raise InputError(
            f"an image named {name!r} already exists in {target.account}/{target.region}: "
            f"{image['ImageId']}",
            key="--version",
            hint="choose another version, or --bump major|minor|patch",
        )


def resolve_version(
    ec2: Any, target: Target, family: str, version: str | None, bump: str | None
) -> str:
    if (version is None) == (bump is None):
        raise InputError("give exactly one of --version and --bump", key="--version")
    if bump is not None:
        return next_version(family_versions(ec2, target, family), bump)
    assert version is not None
    return version


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _describe_image(ec2: Any, target: Target, image_id: str) -> dict[str, Any]:
    resp = _call(
        target, "DescribeImages", ec2.describe_images, ImageIds=[image_id], IncludeDisabled=True
    )
    images = resp.get("Images", [])
    return images[0] if images else {"ImageId": image_id, "State": "pending"}


def _snapshot_ids(image: dict[str, Any]) -> list[str]:
    return [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings") or []
        if m.get("Ebs", {}).get("SnapshotId")
    ]


def _created(
    ec2: Any,
    target: Target,
    image_id: str,
    name: str,
    family: str,
    version: str,
    tags: dict[str, str],
    **source: Any,
) -> Created:
    """The result of either way of making an image, as DescribeImages sees it now (a
    registered image's snapshots are the ones given until the image lists them)."""
    image = _describe_image(ec2, target, image_id)
    return Created(
        image_id=image_id,
        name=name,
        family=family,
        version=version,
        account=target.account,
        region=target.region,
        state=image.get("State", "pending"),
        snapshot_ids=_snapshot_ids(image) or list(source.get("source_snapshots", [])),
        tags=tags,
        **source,
    )


# ------------------------------------------------------------------ from an instance


def from_instance(
    conn: Connector,
    target: Target,
    instance_id: str,
    family: str,
    *,
    version: str | None = None,
    bump: str | None = None,
    no_reboot: bool = False,
    description: str | None = None,
    name: str | None = None,
    extra_tags: dict[str, str] | None = None,
    watermark: str | None = WATERMARK_TEMPLATE,
) -> Created:
    """CreateImage of the instance, tagged (image and snapshots) as the family's new version.

    ``name`` overrides ``<family>-<version>``; ``extra_tags`` are added (``bake``'s lineage).
    ``watermark`` (a template of the watermark name, ``{family}``; None for none) is
    attached to the image: a failure to attach it is a warning, not an error.
    """
    check_family(family)
    if not re.match(r"^i-[0-9a-f]{8,17}$", instance_id or ""):
        raise InputError(f"{instance_id!r} is not an instance id (i-...)", key="INSTANCE")
    ec2 = conn.client("ec2", target.region, target.role_arn)
    try:
        resp = ec2.describe_instances(InstanceIds=[instance_id])
    except botocore.exceptions.ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")).startswith("InvalidInstanceID"):
            raise InputError(
                f"no instance {instance_id} in {target.account}/{target.region}",
                key="INSTANCE",
            ) from None
        raise aws_error(exc, "DescribeInstances", target.region) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error(exc, "DescribeInstances", target.region) from None
    instances = [i for r in resp.get("Reservations", []) for i in r.get("Instances", [])]
    if not instances:
        raise InputError(
            f"no instance {instance_id} in {target.account}/{target.region}", key="INSTANCE"
        )
    instance = instances[0]
    state = instance.get("State", {}).get("Name")
    if state in ("terminated", "shutting-down"):
        raise InputError(f"instance {instance_id} is {state}", key="INSTANCE")
    source_image = instance.get("ImageId")
    version = resolve_version(ec2, target, family, version, bump)
    name = name or image_name(family, version)
    refuse_duplicate(ec2, target, family, version, name)
    tags = {
        **(extra_tags or {}),
        FAMILY_TAG: family,
        VERSION_TAG: version,
        CREATED_BY_TAG: conn.identity(target.role_arn)["arn"],
        SOURCE_INSTANCE_TAG: instance_id,
    }
    if source_image:
        tags[SOURCE_IMAGE_TAG] = source_image
    kwargs: dict[str, Any] = {
        "InstanceId": instance_id,
        "Name": name,
        "NoReboot": no_reboot,
        "Description": description or f"{family} {version} from {instance_id}",
        "TagSpecifications": [
            {"ResourceType": "image", "Tags": _tag_list(tags)},
            {"ResourceType": "snapshot", "Tags": _tag_list(tags)},
        ],
    }
    image_id = _call(target, "CreateImage", ec2.create_image, **kwargs)["ImageId"]
    created = _created(
        ec2,
        target,
        image_id,
        name,
        family,
        version,
        tags,
        source_instance=instance_id,
        source_image=source_image,
    )
    return _watermark(ec2, created, watermark)


def _watermark(ec2: Any, created: Created, template: str | None) -> Created:
    key, problem = try_attach(ec2, created.image_id, created.family, template)
    created.watermark = key
    if problem:
        created.warnings.append(f"no provenance watermark on {created.image_id}: {problem}")
    return created


# ------------------------------------------------------------------ from snapshots


def from_snapshots(
    conn: Connector,
    target: Target,
    snapshot_ids: Sequence[str],
    family: str,
    version: str,
    *,
    architecture: str = "x86_64",
    root_device: str = "/dev/xvda",
    boot_mode: str | None = None,
    ena: bool = True,
    imds: str | None = None,
    tpm: str | None = None,
    description: str | None = None,
    volumes: Sequence[str] = (),
    extra_tags: dict[str, str] | None = None,
    watermark: str | None = WATERMARK_TEMPLATE,
) -> Created:
    """RegisterImage over the snapshots (the first is the root volume, the others
    /dev/sdf, /dev/sdg, ...), tagged with CreateTags on the snapshots too.

    ``volumes``: ``--volume N:type=..,size=..,iops=..,throughput=..,encrypted=..,kms-key=..``
    (``creation.volumes``); an encrypted volume is registered over an encrypted copy of its
    snapshot. ``extra_tags``: the user's ``--tag`` (``creation.volumes.parse_tags``)."""
    snaps = list(snapshot_ids)
    if not snaps:
        raise InputError("give at least one snapshot (the first is the root volume)", key="SNAP")
    if len(set(snaps)) != len(snaps):
        raise InputError("a snapshot is given twice", key="SNAP")
    if len(snaps) > 1 + len(EXTRA_DEVICES):
        raise InputError(
            f"at most {1 + len(EXTRA_DEVICES)} snapshots (root + /dev/sdf../dev/sdp)", key="SNAP"
        )
    for s in snaps:
        if not re.match(r"^snap-[0-9a-f]{8,17}$", s):
            raise InputError(f"{s!r} is not a snapshot id (snap-...)", key="SNAP")
    if architecture not in ARCHITECTURES:
        raise InputError(f"expected one of {', '.join(ARCHITECTURES)}", key="--arch")
    if boot_mode is not None and boot_mode not in BOOT_MODES:
        raise InputError(f"expected one of {', '.join(BOOT_MODES)}", key="--boot-mode")
    if architecture == "arm64" and boot_mode not in (None, "uefi"):
        raise InputError("arm64 images boot with UEFI only", key="--boot-mode")
    if tpm is not None and (boot_mode or ("uefi" if architecture == "arm64" else None)) != "uefi":
        raise InputError("NitroTPM (--tpm v2.0) needs --boot-mode uefi", key="--tpm")
    if not re.match(r"^/dev/(sd[a-z]|xvd[a-z])1?$", root_device or ""):
        raise InputError(
            f"{root_device!r} is not a root device name like /dev/xvda", key="--root-device"
        )
    if root_device in EXTRA_DEVICES:
        raise InputError(f"{root_device} is used for the other snapshots", key="--root-device")
    name = image_name(family, version)
    ec2 = conn.client("ec2", target.region, target.role_arn)
    try:
        found = ec2.describe_snapshots(SnapshotIds=snaps).get("Snapshots", [])
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidSnapshot.NotFound":
            raise InputError(
                f"{exc.response['Error'].get('Message', 'snapshot not found')} "
                f"({target.account}/{target.region})",
                key="SNAP",
            ) from None
        raise aws_error(exc, "DescribeSnapshots", target.region) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error(exc, "DescribeSnapshots", target.region) from None
    by_id = {s["SnapshotId"]: s for s in found}
    missing = [s for s in snaps if s not in by_id]
    if missing:
        raise InputError(
            f"no snapshot {', '.join(missing)} in {target.account}/{target.region}", key="SNAP"
        )
    not_ready = [s for s in snaps if by_id[s].get("State") not in (None, "completed")]
    if not_ready:
        raise InputError(
            f"snapshot {', '.join(not_ready)} is not completed yet",
            key="SNAP",
            hint="wait for it (aws ec2 wait snapshot-completed) and run again",
        )
    devices = [root_device, *EXTRA_DEVICES]
    options = volumes_mod.resolve(volumes, snaps, devices)
    refuse_duplicate(ec2, target, family, version, name)
    mappings = [
        {
            "DeviceName": devices[i],
            "Ebs": {
                "SnapshotId": s,
                "VolumeSize": int(by_id[s]["VolumeSize"]),
                "VolumeType": "gp3",
                "DeleteOnTermination": True,
            },
        }
        for i, s in enumerate(snaps)
    ]
    registered = volumes_mod.apply(ec2, target, mappings, options, by_id) if options else snaps
    tags = {
        **(extra_tags or {}),
        FAMILY_TAG: family,
        VERSION_TAG: version,
        CREATED_BY_TAG: conn.identity(target.role_arn)["arn"],
        SOURCE_SNAPSHOTS_TAG: ",".join(snaps),
    }
    kwargs: dict[str, Any] = {
        "Name": name,
        "Description": description or f"{family} {version} from {', '.join(snaps)}",
        "Architecture": architecture,
        "RootDeviceName": root_device,
        "VirtualizationType": "hvm",
        "BlockDeviceMappings": mappings,
        "EnaSupport": ena,
        "TagSpecifications": [{"ResourceType": "image", "Tags": _tag_list(tags)}],
    }
    if boot_mode:
        kwargs["BootMode"] = boot_mode
    if imds:
        kwargs["ImdsSupport"] = imds
    if tpm:
        kwargs["TpmSupport"] = tpm
    image_id = _call(target, "RegisterImage", ec2.register_image, **kwargs)["ImageId"]
    _call(target, "CreateTags", ec2.create_tags, Resources=registered, Tags=_tag_list(tags))
    created = _created(ec2, target, image_id, name, family, version, tags, source_snapshots=snaps)
    return _watermark(ec2, created, watermark)


# ------------------------------------------------------------------ waiting


def wait_available(
    conn: Connector,
    target: Target,
    image_id: str,
    *,
    delay: int = 15,
    max_attempts: int = 240,
) -> dict[str, Any]:
    """Wait (botocore's ``image_available`` waiter) until the image is available.

    A failed image, or one still pending after ``delay * max_attempts`` seconds, is an
    AmictlError naming the image and, for a failed one, AWS's reason.
    """
    ec2 = conn.client("ec2", target.region, target.role_arn)
    return wait_image(ec2, target, image_id, delay=delay, max_attempts=max_attempts)


def wait_image(
    ec2: Any, target: Target, image_id: str, *, delay: int = 15, max_attempts: int = 240
) -> dict[str, Any]:
    waiter = ec2.get_waiter("image_available")
    try:
        stopping.wait(
            waiter, ImageIds=[image_id], WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except botocore.exceptions.WaiterError as exc:
        last = exc.last_response or {}
        images = last.get("Images") or []
        if images and images[0].get("State") == "failed":
            reason = (images[0].get("StateReason") or {}).get("Message") or "no reason given"
            raise AmictlError(
                f"image {image_id} failed in {target.account}/{target.region}: {reason}",
                hint="its snapshots may remain: look at them with `amictl show` and deregister "
                "the failed image; then create again",
            ) from None
        if "Error" in last:
            code = last["Error"].get("Code", "")
            raise AmictlError(
                f"waiting for {image_id} in {target.region}: {code}: "
                f"{last['Error'].get('Message', '')}"
            ) from None
        state = images[0].get("State") if images else "unknown"
        raise AmictlError(
            f"image {image_id} is still {state} after {delay * max_attempts} s",
            hint=f"it may still become available: `aws ec2 wait image-available --image-ids {image_id}`",
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error(exc, "DescribeImages", target.region) from None
    return _describe_image(ec2, target, image_id)
