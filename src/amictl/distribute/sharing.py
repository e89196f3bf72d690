"""Who can launch what: the inventory's launch permissions, per image."""

from __future__ import annotations

from typing import Any

from ..aws.session import Connector, Target
from ..errors import AmictlError
from ..inventory.scan import scan
from ..model import Image

PERMISSIONS = {"sts:GetCallerIdentity", "ec2:DescribeImages", "ec2:DescribeImageAttribute"}


def _row(img: Image) -> dict[str, Any]:
    accounts = [s for s in img.shared_with if not s.startswith("arn:")]
    ous = [s for s in img.shared_with if s.startswith("arn:") and ":ou/" in s]
    orgs = [s for s in img.shared_with if s.startswith("arn:") and ":ou/" not in s]
    who = (["public"] if img.public else []) + accounts + orgs + ous
    return {
        "image_id": img.image_id,
        "account": img.account,
        "region": img.region,
        "name": img.name,
        "family": img.family,
        "version": img.version,
        "state": img.state,
        "public": img.public,
        "accounts": accounts,
        "organizations": orgs,
        "organizational_units": ous,
        "who": who,
    }


def sharing(
    conn: Connector, targets: list[Target], image_id: str | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for shared images (or the one image asked for), and warnings for unread slices."""
    inv = scan(conn, targets, kinds=["images"])
    warnings = [
        f"{s.account}/{s.region}: images could not be read ({s.error_code}): sharing there is unknown"
        for s in inv.incomplete_slices()
    ]
    if image_id:
        imgs = [i for i in inv.images if i.image_id == image_id.strip()]
        if not imgs:
            if warnings:
                raise AmictlError(f"{image_id} not found, and " + "; ".join(warnings))
            raise AmictlError(
                f"{image_id} is not an image this account owns in "
                + ", ".join(sorted({f"{t.account}/{t.region}" for t in targets})),
                hint="give its region with --region (and account with --role-arn)",
            )
    else:
        imgs = [i for i in inv.images if i.shared]
    imgs.sort(key=lambda i: (i.account, i.region, i.family or "", i.name, i.image_id))
    return [_row(i) for i in imgs], warnings
