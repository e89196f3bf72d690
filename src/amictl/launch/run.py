"""RunInstances from a resolved image, tagged with where it came from."""

from __future__ import annotations

from typing import Any

from ..aws.session import Connector, aws_error
from ..distribute.common import FAMILY_TAG, VERSION_TAG
from ..errors import InputError
from .resolve import Resolved

IMAGE_TAG = "amictl:image"
USER_DATA_MAX = 16 * 1024  # bytes before base64 (EC2 limit)

PERMISSIONS = {
    "sts:GetCallerIdentity",
    "ec2:DescribeImages",
    "ssm:GetParameter",
    "ec2:RunInstances",
    "ec2:CreateTags",
    "ec2:GetAllowedImagesSettings",  # why an image is not found (Allowed AMIs hides it)
}


def parse_tags(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected KEY=VALUE, got {v!r}", key="--tag")
        if key.strip().lower().startswith("aws:"):
            raise InputError(f"{key!r}: tag keys starting with aws: are reserved", key="--tag")
        out[key.strip()] = value
    return out


def launch(
    conn: Connector,
    resolved: Resolved,
    *,
    instance_type: str,
    count: int = 1,
    subnet: str | None = None,
    security_groups: list[str] | None = None,
    key_name: str | None = None,
    user_data: bytes | None = None,
    tags: dict[str, str] | None = None,
    dry_run: bool = False,
    instance_profile: str | None = None,
    block_device_mappings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run ``count`` instances; with ``dry_run`` AWS only checks (DryRunOperation = success)."""
    if count < 1:
        raise InputError("must be at least 1", key="--count")
    if user_data is not None and len(user_data) > USER_DATA_MAX:
        raise InputError(
            f"user data is {len(user_data)} bytes; EC2 takes at most {USER_DATA_MAX}",
            key="--user-data",
        )
    found = resolved.found
    family, version = found.family_version
    all_tags = dict(tags or {})
    if family:
        all_tags[FAMILY_TAG] = family
    if version:
        all_tags[VERSION_TAG] = version
    # The volumes get the user's tags and the family/version, never the image id: a backup
    # of a volume copies its tags, and a snapshot must not look "made for" the image.
    volume_tags = [{"Key": k, "Value": v} for k, v in all_tags.items()]
    all_tags[IMAGE_TAG] = found.image_id
    tag_list = [{"Key": k, "Value": v} for k, v in all_tags.items()]
    kwargs: dict[str, Any] = {
        "ImageId": found.image_id,
        "InstanceType": instance_type,
        "MinCount": count,
        "MaxCount": count,
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": volume_tags},
        ],
        "DryRun": dry_run,
    }
    if subnet:
        kwargs["SubnetId"] = subnet
    if security_groups:
        kwargs["SecurityGroupIds"] = list(security_groups)
    if key_name:
        kwargs["KeyName"] = key_name
    if instance_profile:
        key = "Arn" if instance_profile.startswith("arn:") else "Name"
        kwargs["IamInstanceProfile"] = {key: instance_profile}
    if block_device_mappings:
        kwargs["BlockDeviceMappings"] = block_device_mappings
    if user_data is not None:
        kwargs["UserData"] = user_data.decode("utf-8", errors="surrogateescape")
    t = found.target
    ec2 = conn.client("ec2", t.region, t.role_arn)
    result: dict[str, Any] = {
        "image_id": found.image_id,
        "account": t.account,
        "region": t.region,
        "family": family,
        "version": version,
        "reason": resolved.reason,
        "instance_type": instance_type,
        "count": count,
        "dry_run": dry_run,
        "tags": all_tags,
        "instance_ids": [],
    }
    try:
        resp = ec2.run_instances(**kwargs)
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "RunInstances", t.region)
        if dry_run and err.code == "DryRunOperation":
            result["dry_run_result"] = "would succeed (DryRunOperation)"
            return result
        raise err from None
    result["instance_ids"] = [i["InstanceId"] for i in resp.get("Instances", [])]
    return result
