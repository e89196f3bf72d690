"""Copy an image into other regions: same name, its tags, lineage tags, tagged snapshots."""

from __future__ import annotations

from typing import Any

from ..aws import stopping
from ..aws.session import Connector, Target, aws_error, check_regions
from ..errors import AmictlError, InputError, Interrupted
from .common import FAMILY_TAG, VERSION_TAG, Found, find_image

SOURCE_IMAGE_TAG = "amictl:source-image"
SOURCE_REGION_TAG = "amictl:source-region"

PERMISSIONS = {
    "sts:GetCallerIdentity",
    "ec2:DescribeImages",
    "ec2:CopyImage",
    "ec2:CreateTags",
}


def _existing(ec2: Any, region: str, filters: list[dict[str, Any]]) -> list[str]:
    try:
        pages = ec2.get_paginator("describe_images").paginate(
            Owners=["self"], Filters=filters, IncludeDeprecated=True, IncludeDisabled=True
        )
        return [i["ImageId"] for p in pages for i in p.get("Images", [])]
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "DescribeImages", region) from None


def preflight(conn: Connector, src: Found, regions: list[str]) -> None:
    """Refuse (exit 2) before any copy when a target region already has this family+version."""
    family, version = src.family_version
    name = src.data.get("Name") or ""
    for region in regions:
        if region == src.region:
            raise InputError(
                f"{src.image_id} is already in {region}",
                key="--to-region",
                hint="copy to other regions",
            )
        ec2 = conn.client("ec2", region, src.target.role_arn)
        if family and version:
            found = _existing(
                ec2,
                region,
                [
                    {"Name": f"tag:{FAMILY_TAG}", "Values": [family]},
                    {"Name": f"tag:{VERSION_TAG}", "Values": [version]},
                ],
            )
            if found:
                raise InputError(
                    f"{family} version {version} already exists in {region} ({', '.join(found)})",
                    key="--to-region",
                    hint=f"leave {region} out, or retire {found[0]} there first",
                )
        if name:
            found = _existing(ec2, region, [{"Name": "name", "Values": [name]}])
            if found:
                raise InputError(
                    f"an image named {name!r} already exists in {region} ({found[0]})",
                    key="--to-region",
                    hint=f"leave {region} out",
                )


def _family_tags(src: Found) -> list[dict[str, str]]:
    tags = {t["Key"]: t["Value"] for t in src.data.get("Tags") or []}
    return [{"Key": k, "Value": tags[k]} for k in (FAMILY_TAG, VERSION_TAG) if k in tags]


def copy_image(
    conn: Connector,
    targets: list[Target],
    image_id: str,
    to_regions: list[str],
    *,
    kms_key: str | None = None,
    wait: bool = False,
    wait_delay: int = 15,
    wait_attempts: int = 240,
) -> list[dict[str, Any]]:
    """CopyImage into each region (called in the target region); one result row per region."""
    regions = list(dict.fromkeys(r.strip() for r in to_regions if r.strip()))
    if not regions:
        raise InputError("give at least one region", key="--to-region")
    check_regions(regions, key="--to-region")
    if "all" in regions:
        raise InputError("name the regions to copy to", key="--to-region")
    src = find_image(conn, targets, image_id)
    if src.data.get("State") != "available":
        raise AmictlError(
            f"{src.image_id} is {src.data.get('State')}: only an available image can be copied"
        )
    preflight(conn, src, regions)
    family, version = src.family_version
    name = src.data.get("Name") or src.image_id
    rows = []
    for region in regions:
        ec2 = conn.client("ec2", region, src.target.role_arn)
        kwargs: dict[str, Any] = {
            "Name": name,
            "SourceImageId": src.image_id,
            "SourceRegion": src.region,
            "CopyImageTags": True,
            "TagSpecifications": [
                {
                    "ResourceType": "image",
                    # The family and version go in the request too, not only through
                    # CopyImageTags: a releaser's policy allows CopyImage on a condition
                    # on aws:RequestTag/family, which sees only the request's tags.
                    "Tags": [
                        {"Key": SOURCE_IMAGE_TAG, "Value": src.image_id},
                        {"Key": SOURCE_REGION_TAG, "Value": src.region},
                        *_family_tags(src),
                    ],
                }
            ],
        }
        if src.data.get("Description"):
            kwargs["Description"] = src.data["Description"]
        if kms_key:
            kwargs["Encrypted"] = True
            kwargs["KmsKeyId"] = kms_key
        try:
            new_id = ec2.copy_image(**kwargs)["ImageId"]
        except Exception as exc:  # noqa: BLE001
            raise aws_error(exc, "CopyImage", region) from None
        row: dict[str, Any] = {
            "source_image_id": src.image_id,
            "source_region": src.region,
            "account": src.target.account,
            "region": region,
            "image_id": new_id,
            "name": name,
            "family": family,
            "version": version,
            "encrypted": bool(kms_key),
            "state": "pending",
            "snapshots": [],
            "snapshots_tagged": False,
        }
        if wait:
            try:
                stopping.wait(
                    ec2.get_waiter("image_available"),
                    ImageIds=[new_id],
                    WaiterConfig={"Delay": wait_delay, "MaxAttempts": wait_attempts},
                )
            except Interrupted:
                raise
            except Exception as exc:  # noqa: BLE001
                raise aws_error(exc, "wait image_available", region) from None
        _tag_snapshots(ec2, region, row, family, version)
        rows.append(row)
    return rows


# A role that may not tag the copy's snapshots (the releaser persona: tagging existing
# snapshots would let it make any snapshot shareable) still gets its copy.
DENIED = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})


def _tag_snapshots(
    ec2: Any, region: str, row: dict[str, Any], family: str | None, version: str | None
) -> None:
    """CreateTags on the copy's snapshots once they exist (AWS names them when the copy runs)."""
    try:
        images = ec2.describe_images(ImageIds=[row["image_id"]])["Images"]
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "DescribeImages", region) from None
    if not images:
        return
    img = images[0]
    row["state"] = img.get("State", row["state"])
    snaps = [
        m["Ebs"]["SnapshotId"]
        for m in img.get("BlockDeviceMappings") or []
        if (m.get("Ebs") or {}).get("SnapshotId")
    ]
    row["snapshots"] = snaps
    tags = [{"Key": SOURCE_IMAGE_TAG, "Value": row["source_image_id"]}]
    if family:
        tags.append({"Key": FAMILY_TAG, "Value": family})
    if version:
        tags.append({"Key": VERSION_TAG, "Value": version})
    if not snaps:
        return
    try:
        ec2.create_tags(Resources=snaps, Tags=tags)
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "CreateTags", region)
        if err.code in DENIED:  # the releaser may not tag existing snapshots (docs/cli.md)
            row["snapshots_untagged"] = err.message
            return
        raise err from None
    row["snapshots_tagged"] = True
