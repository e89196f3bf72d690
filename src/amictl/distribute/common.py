"""Shared helpers for distribution: find an image, read its family and version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..errors import AmictlError, InputError
from ..model import FamilyRule
from ..tagnames import FAMILY_TAG, VERSION_TAG  # noqa: F401  (re-exported)


def check_image_id(image_id: str) -> str:
    text = image_id.strip()
    if not text.startswith("ami-") or len(text) < 8 or not text[4:].isalnum():
        raise InputError(f"{image_id!r} is not an image id (ami-…)", key="AMI")
    return text


@dataclass
class Found:
    """An image as DescribeImages returned it, with where it is."""

    target: Target
    data: dict[str, Any]

    @property
    def image_id(self) -> str:
        return str(self.data["ImageId"])

    @property
    def region(self) -> str:
        return self.target.region

    @property
    def tags(self) -> dict[str, str]:
        return {t["Key"]: t.get("Value", "") for t in self.data.get("Tags") or []}

    @property
    def family_version(self) -> tuple[str | None, str | None]:
        from ..inventory.collectors import image_from_api

        img = image_from_api(self.data, self.target.account, self.target.region)
        return FamilyRule().resolve(img)

    @property
    def snapshot_ids(self) -> list[str]:
        return [
            m["Ebs"]["SnapshotId"]
            for m in self.data.get("BlockDeviceMappings") or []
            if (m.get("Ebs") or {}).get("SnapshotId")
        ]


def describe_image(ec2: Any, image_id: str, region: str) -> dict[str, Any] | None:
    """The image (deprecated and disabled ones too), or None when the region has no such id."""
    try:
        resp = ec2.describe_images(
            ImageIds=[image_id], IncludeDeprecated=True, IncludeDisabled=True
        )
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "DescribeImages", region)
        if err.code in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return None
        raise err from None
    images = resp.get("Images") or []
    return images[0] if images else None


def find_image(conn: Connector, targets: list[Target], image_id: str) -> Found:
    """The image in the first account/region of ``targets`` that has it."""
    image_id = check_image_id(image_id)
    for t in targets:
        data = describe_image(conn.client("ec2", t.region, t.role_arn), image_id, t.region)
        if data is not None:
            return Found(t, data)
    where = ", ".join(f"{t.account}/{t.region}" for t in targets) or "no account/region"
    raise AmictlError(
        f"image {image_id} not found in {where}",
        hint="give the image's region with --region (and its account with --role-arn)",
    )
