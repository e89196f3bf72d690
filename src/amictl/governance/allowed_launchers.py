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
from ..inventory.launchers.batch import launches_amazon_default
from ..inventory.launchers.imagebuilder import amazon_parent
from ..inventory.registry import pages
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


# What Amazon's default ECS-optimized AMI looks like to the criteria (Batch picks the
# newest one when it launches; its exact id is not known before then).
AMAZON_DEFAULT_ECS = {
    "ImageOwnerAlias": "amazon",
    "OwnerId": "591542846629",
    "Name": "al2023-ami-ecs-hvm-2023.0-kernel-6.1-x86_64",
}


def amazon_defaults(conn: Connector, t: Target) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The launchers of ``t`` that launch an Amazon image they do not name by id, as
    (kind, id, detail), and what could not be read: Batch compute environments on Amazon's
    default ECS-optimized AMI, Image Builder recipes whose parent is an Amazon image ARN."""
    out: list[tuple[str, str, str]] = []
    unread: list[str] = []
    try:
        batch = conn.client("batch", t.region, t.role_arn)
        for page in pages(batch, "describe_compute_environments"):
            for ce in page.get("computeEnvironments") or []:
                if launches_amazon_default(ce):
                    rid = ce.get("computeEnvironmentArn") or ce["computeEnvironmentName"]
                    out.append(
                        (
                            "batch-compute-environment",
                            rid,
                            f"Batch compute environment {rid}: no imageId, launches Amazon's "
                            "default ECS-optimized AMI",
                        )
                    )
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "DescribeComputeEnvironments", t.region)
        unread.append(f"{t.account}/{t.region}: Batch default AMIs not read ({err.code})")
    try:
        ib = conn.client("imagebuilder", t.region, t.role_arn)
        for page in pages(ib, "list_image_recipes", owner="Self"):
            for r in page.get("imageRecipeSummaryList") or []:
                if amazon_parent(r.get("parentImage") or ""):
                    out.append(
                        (
                            "imagebuilder-recipe",
                            str(r["arn"]),
                            f"image recipe {r.get('name', '')}: parent {r['parentImage']}",
                        )
                    )
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "ListImageRecipes", t.region)
        unread.append(f"{t.account}/{t.region}: Image Builder parents not read ({err.code})")
    return out, unread


def default_breaks(
    t: Target,
    found: list[tuple[str, str, str]],
    allows: Any,
    criteria: list[dict[str, Any]],
    at: dt.datetime,
) -> list[dict[str, Any]]:
    """One row per launcher of an Amazon image it does not name (``amazon_defaults``) when
    the criteria would not allow an Amazon image (``allows``: ``allowed.allows``)."""
    img = {**AMAZON_DEFAULT_ECS, "CreationDate": at.isoformat()}
    if not found or allows(img, criteria, t.account, at):
        return []
    return [
        {
            "account": t.account,
            "region": t.region,
            "kind": kind,
            "id": rid,
            "detail": detail,
            "image_id": "(an Amazon image)",
            "image_name": img["Name"] if kind == "batch-compute-environment" else None,
            "image_owner": "amazon",
            "reason": "Amazon's images match none of the new criteria (add --also amazon)",
        }
        for kind, rid, detail in found
    ]


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
