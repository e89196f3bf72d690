"""Instance-store-backed images (issue 21): their root device is a bundle in S3 (a
manifest and its parts, ``ImageLocation`` = ``BUCKET/PATH.manifest.xml``), not EBS
snapshots. Deregistering one leaves the bundle where it is: amictl never deletes S3
objects, it says what is left so that its owner can.

``describe_bundle`` (from the fields DescribeImages returns) and ``bundle_left`` (read live,
for apply's re-check just before DeregisterImage) are what retirement reports.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error
from .lookup import describe_image

INSTANCE_STORE = "instance-store"


def storage_fields(d: dict[str, Any]) -> dict[str, Any]:
    """``root_device_type`` and ``image_location`` (instance-store images only) of a
    DescribeImages item: what the inventory keeps of an image's storage."""
    kind = d.get("RootDeviceType") or "ebs"
    return {
        "root_device_type": kind,
        "image_location": d.get("ImageLocation") if kind == INSTANCE_STORE else None,
    }


def describe_bundle(
    image_id: str, root_device_type: str | None, image_location: str | None
) -> dict[str, Any] | None:
    """What deregistering the image leaves in S3; None for an EBS-backed image."""
    if root_device_type != INSTANCE_STORE or not image_location:
        return None
    bucket, _, key = image_location.partition("/")
    prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    return {
        "image_id": image_id,
        "bucket": bucket,
        "manifest": key,
        "manifest_uri": f"s3://{bucket}/{key}",
        "prefix_uri": f"s3://{bucket}/{prefix}",
        "message": (
            f"{image_id} was instance-store-backed: its bundle s3://{bucket}/{key} (and the "
            "parts it lists) stays in S3; amictl never deletes S3 objects. Delete them when "
            "nothing needs them: aws s3 rm s3://"
            f"{bucket}/{prefix} --recursive (check what else that prefix holds first)"
        ),
    }


def bundle_left(conn: Connector, target: Target, image_id: str) -> dict[str, Any] | None:
    """Read the image live: the bundle its deregistration would leave, or None (an EBS
    image, or the image is gone)."""
    ec2 = conn.client("ec2", target.region, target.role_arn)
    try:
        d = describe_image(ec2, image_id)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "DescribeImages", target.region) from None
    if d is None:
        return None
    f = storage_fields(d)
    return describe_bundle(image_id, f["root_device_type"], f["image_location"])
