"""What else launches images, for ``allowed-images set`` (issue 27, R7): every reference
kind that can launch (``model.IN_USE_KINDS``, so a kind another finder adds is covered
without a change here) in every region the settings are set, read with the inventory's
own finders, and the images those launchers name evaluated against the NEW criteria.

Running instances are checked on DescribeInstanceImageMetadata (``allowed.noncompliant``);
another account's launches (``consumer-account``) obey that account's own settings."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..inventory.scan import scan
from ..model import IN_USE_KINDS, Inventory, Reference

# In-use kinds checked elsewhere or not by this account's setting.
NOT_HERE = {
    "instance": "running instances are checked on DescribeInstanceImageMetadata",
    "consumer-account": "another account's launches obey its own Allowed AMIs",
}
LAUNCHER_KINDS = tuple(k for k in IN_USE_KINDS if k not in NOT_HERE)


def read(conn: Connector, targets: list[Target]) -> Inventory:
    """Every reference of every kind, in every target (launch permissions not needed)."""
    return scan(conn, targets, launch_permissions=False)


def not_read(inv: Inventory, t: Target) -> list[str]:
    """The slices of ``t`` the inventory could not read: what launches there is unknown."""
    return [
        f"{s.account}/{s.region}: {s.kind} not read ({s.error_code or 'error'})"
        for s in inv.incomplete_slices(t.account, t.region)
    ]


def launchers(inv: Inventory, t: Target) -> list[Reference]:
    return [
        r
        for r in inv.references
        if r.kind in LAUNCHER_KINDS and r.account == t.account and r.region == t.region
    ]


def describe(conn: Connector, t: Target, image_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The images by id that the account can see (owned, shared, public); an id that is
    gone or not visible is left out (nothing can launch it, whatever the setting)."""
    ec2 = conn.client("ec2", t.region, t.role_arn)
    out: dict[str, dict[str, Any]] = {}
    ids = sorted({i for i in image_ids if i.startswith("ami-")})
    try:
        for i in range(0, len(ids), 200):
            for page in ec2.get_paginator("describe_images").paginate(
                Filters=[{"Name": "image-id", "Values": ids[i : i + 200]}],
                IncludeDeprecated=True,
                IncludeDisabled=True,
            ):
                for img in page.get("Images") or []:
                    out[img["ImageId"]] = img
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "DescribeImages", t.region) from None
    return out


def would_break(
    t: Target,
    refs: list[Reference],
    images: dict[str, dict[str, Any]],
    allows: Any,
    criteria: list[dict[str, Any]],
    at: dt.datetime,
) -> list[dict[str, Any]]:
    """One row per launcher whose image the criteria would not allow (``allows``:
    ``allowed.allows``, the one evaluation of the criteria)."""
    rows = []
    seen: dict[tuple[str, str, str], bool] = defaultdict(bool)
    for r in sorted(refs, key=lambda r: (r.kind, r.id, r.image_id)):
        img = images.get(r.image_id)
        if img is None or seen[(r.kind, r.id, r.image_id)]:
            continue
        seen[(r.kind, r.id, r.image_id)] = True
        if allows(img, criteria, t.account, at):
            continue
        rows.append(
            {
                "account": t.account,
                "region": t.region,
                "kind": r.kind,
                "id": r.id,
                "detail": r.detail,
                "image_id": r.image_id,
                "image_name": img.get("Name"),
                "image_owner": img.get("ImageOwnerAlias") or img.get("OwnerId"),
                "reason": "its image matches none of the new criteria",
            }
        )
    return rows
