"""One image looked up by id, the way every live check wants it: gone is None."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

GONE_IMAGE = {"InvalidAMIID.Unavailable", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed"}


def describe_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    """One image by id, deprecated and disabled too; None when it is gone (unknown,
    malformed or deregistered). Any other error propagates."""
    try:
        imgs = ec2.describe_images(
            ImageIds=[image_id], IncludeDisabled=True, IncludeDeprecated=True
        )["Images"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in GONE_IMAGE:
            return None
        raise
    img = next((i for i in imgs if i.get("ImageId") == image_id), None)
    if img is not None and img.get("State") == "deregistered":
        return None
    return img
