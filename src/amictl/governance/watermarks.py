"""Provenance watermarks (AttachImageWatermark): an owner-only mark that every image made
from a watermarked one (CreateImage, CopyImage) inherits, so a family's images stay
recognisable after copies and can be allow-listed (Allowed AMIs ``ImageWatermarks``)."""

from __future__ import annotations

import re
from typing import Any

from ..aws.session import aws_error
from ..errors import AmictlError, InputError

# The watermark `create` and `bake` attach: the family, prefixed so that it reads as amictl's.
DEFAULT_TEMPLATE = "amictl/{family}"
NAME_RE = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$")
PERMISSIONS = frozenset({"ec2:AttachImageWatermark"})


def watermark_name(family: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The watermark name for a family (3-128 letters, digits, spaces and ()[]./-'@_)."""
    try:
        name = template.format(family=family)
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"{template!r} is not a watermark template: {exc}",
            key="--watermark",
            hint="use {family} for the family, e.g. amictl/{family}",
        ) from None
    if not NAME_RE.match(name):
        raise InputError(
            f"watermark {name!r} is not valid: 3-128 letters, digits, spaces and ()[]./-'@_",
            key="--watermark",
        )
    return name


def family_watermark_key(account: str, family: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The WatermarkKey AWS gives the family's watermark attached by ``account``."""
    return f"{account}:{watermark_name(family, template)}"


def attach_family_watermark(
    ec2: Any, image_id: str, family: str, template: str = DEFAULT_TEMPLATE
) -> str:
    """Attach the family's watermark to a (non-public, owned) image; returns its WatermarkKey.

    An AWS failure (no permission, API missing, public image) is an AwsError naming it:
    the caller decides whether that stops it (``create`` and ``bake`` only warn).
    """
    name = watermark_name(family, template)
    try:
        resp = ec2.attach_image_watermark(ImageId=image_id, WatermarkName=name)
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "AttachImageWatermark", ec2.meta.region_name) from None
    return str(resp["WatermarkKey"])


def try_attach(
    ec2: Any, image_id: str, family: str, template: str | None
) -> tuple[str | None, str | None]:
    """(watermark key, None), or (None, why not) when it could not be attached;
    ``template`` None: no watermark wanted."""
    if template is None:
        return None, None
    try:
        return attach_family_watermark(ec2, image_id, family, template), None
    except InputError:
        raise
    except AmictlError as exc:
        return None, exc.message
