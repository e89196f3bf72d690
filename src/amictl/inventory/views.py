"""Rows for ``ls``, ``show``, ``refs`` and ``snapshots`` (JSON shapes of cli.md)."""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

from ..errors import InputError
from ..model import IN_USE_KINDS, Image, Inventory, Reference, iso
from ..pricing import monthly_cost


def image_cost(inv: Inventory, img: Image) -> float:
    """Upper bound: every snapshot of the image at its full size, at its tier's rate."""
    total = 0.0
    for b in img.block_devices:
        snap = inv.snapshot_by_id.get(b.get("snapshot_id") or "")
        tier = snap.storage_tier if snap else "standard"
        size = snap.size_gib if snap else int(b.get("size_gib") or 0)
        total += monthly_cost(size, img.region, tier)
    return round(total, 4)


def image_row(inv: Inventory, img: Image, now: dt.datetime) -> dict[str, Any]:
    refs = inv.refs(img.image_id)
    age = (now - img.created_at).days if img.created_at else None
    return {
        "image_id": img.image_id,
        "region": img.region,
        "account": img.account,
        "name": img.name,
        "family": img.family,
        "version": img.version,
        "age_days": age,
        "state": img.state,
        "created_at": iso(img.created_at),
        "size_gib": img.size_gib,
        "monthly_cost_usd": image_cost(inv, img),
        "references": len([r for r in refs if r.kind != "child-image"]),
        "in_use": any(r.kind in IN_USE_KINDS for r in refs),
        "channels": sorted(r.id for r in refs if r.kind == "channel"),
        "public": img.public,
        "shared_with": img.shared_with,
        "deprecation_time": iso(img.deprecation_time),
        "deprecated": img.deprecated_at(now),
        "deregistration_protection": img.deregistration_protection,
        "last_launched_time": iso(img.last_launched_time),
        "owned": img.owned,
        "tags": img.tags,
    }


def list_images(
    inv: Inventory,
    now: dt.datetime,
    *,
    family: str | None = None,
    unused: bool = False,
    shared: bool = False,
    deprecated: bool = False,
    older_than: dt.timedelta | None = None,
    owned_only: bool = True,
) -> list[dict[str, Any]]:
    rows = []
    for img in inv.images:
        if owned_only and not img.owned:
            continue
        if family and not fnmatch.fnmatchcase(img.family or "", family):
            continue
        row = image_row(inv, img, now)
        # unused: nothing refers to it, not even a launch permission (shared or public):
        # an image another account can launch may be in use there, where amictl cannot see
        if unused and (row["in_use"] or row["references"]):
            continue
        if shared and not img.shared:
            continue
        if deprecated and not row["deprecated"]:
            continue
        if older_than and (img.created_at is None or now - img.created_at < older_than):
            continue
        rows.append(row)
    rows.sort(key=lambda r: (r["account"], r["region"], r["family"] or "~", r["created_at"] or ""))
    return rows


def find_image(inv: Inventory, image_id: str) -> Image:
    img = inv.by_id.get(image_id)
    if img is None:
        raise InputError(
            f"no image {image_id} in the scanned accounts and regions",
            hint="check the id, or pass --region for the region it lives in",
        )
    return img


def refs_rows(
    inv: Inventory, image_id: str, now: dt.datetime, launched_within: dt.timedelta
) -> list[dict[str, Any]]:
    img = find_image(inv, image_id)
    refs: list[Reference] = list(inv.refs(image_id))
    if img.last_launched_time and now - img.last_launched_time <= launched_within:
        refs.append(
            Reference(
                "recent-launch",
                iso(img.last_launched_time) or "",
                f"last launched {(now - img.last_launched_time).days} days ago",
                image_id,
                img.account,
                img.region,
            )
        )
    return [{"kind": r.kind, "id": r.id, "detail": r.detail} for r in refs]


def show(inv: Inventory, image_id: str, now: dt.datetime) -> dict[str, Any]:
    img = find_image(inv, image_id)
    row = image_row(inv, img, now)
    snaps = []
    for b in img.block_devices:
        s = inv.snapshot_by_id.get(b.get("snapshot_id") or "")
        users = [i.image_id for i in inv.images_by_snapshot.get(b.get("snapshot_id") or "", [])]
        snaps.append(
            {
                "device": b.get("device"),
                "snapshot_id": b.get("snapshot_id"),
                "size_gib": b.get("size_gib"),
                "storage_tier": s.storage_tier if s else None,
                "encrypted": b.get("encrypted"),
                "shared_by_images": [u for u in users if u != img.image_id],
            }
        )
    lineage = []
    cur = img
    seen = {img.image_id}
    while cur.source_image_id and cur.source_image_id not in seen:
        seen.add(cur.source_image_id)
        parent = inv.by_id.get(cur.source_image_id)
        lineage.append(
            {
                "image_id": cur.source_image_id,
                "name": parent.name if parent else None,
                "region": cur.source_image_region or (parent.region if parent else None),
            }
        )
        if parent is None:
            break
        cur = parent
    fam_versions = []
    if img.family:
        fam_versions = [
            {"image_id": i.image_id, "version": i.version, "state": i.state}
            for i in inv.families.get((img.account, img.region, img.family), [])
        ]
    return {
        **row,
        "description": img.description,
        "architecture": img.architecture,
        "platform": img.platform,
        "source_image_id": img.source_image_id,
        "snapshots": snaps,
        "lineage": lineage,
        "children": [c.image_id for c in inv.children_of(img.image_id)],
        "references_detail": [
            {"kind": r.kind, "id": r.id, "detail": r.detail} for r in inv.refs(img.image_id)
        ],
        "family_versions": fam_versions,
    }


def snapshot_rows(inv: Inventory, now: dt.datetime, orphaned: bool = False) -> list[dict[str, Any]]:
    rows = []
    for s in inv.snapshots:
        users = [i.image_id for i in inv.images_by_snapshot.get(s.snapshot_id, [])]
        if orphaned and users:
            continue
        made_for = s.made_for_image
        rows.append(
            {
                "snapshot_id": s.snapshot_id,
                "account": s.account,
                "region": s.region,
                "size_gib": s.size_gib,
                "age_days": (now - s.start_time).days if s.start_time else None,
                "storage_tier": s.storage_tier,
                "images": users,
                "made_for_image": made_for,
                "origin": "image" if made_for else "volume-backup",
                "monthly_cost_usd": monthly_cost(s.size_gib, s.region, s.storage_tier),
                "description": s.description,
            }
        )
    return rows
