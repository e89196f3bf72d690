"""Which images a revocation covers: the roots and everything derived from them, to a
fixed point, in every account and region the inventory read.

An image is derived from a revoked one when the inventory's lineage says so (its
``SourceImageId`` / ``amictl:source-image``, i.e. ``Inventory.children``), when CopyImage's
description names it (``[Copied ami-… from …]``), when the image carries a watermark
attached to it (``ImageWatermarks``: CreateImage and CopyImage pass them on, so every image
built or copied from a watermarked one carries its mark and ``SourceImageId``), or when AWS's
GetImageAncestry lists it among the image's sources. Each newly found image may have children of its own: the search
repeats until nothing is added.
"""

from __future__ import annotations

import re
from typing import Any

from ..aws.session import Connector, Target
from ..governance.lineage import ancestry_ids
from ..model import Image, Inventory, version_key

COPIED_RE = re.compile(r"\[Copied (ami-[0-9a-f]+) from ([a-z0-9-]+)\]")


def roots_of(inv: Inventory, ref: str) -> list[Image]:
    """The images ``ref`` names: an AMI id, or every owned image of FAMILY@VERSION (each
    account and region: its copies are roots too)."""
    ref = ref.strip()
    if ref.startswith("ami-"):
        return [i for i in inv.images if i.image_id == ref]
    family, _, version = ref.partition("@")
    return [
        i
        for i in inv.images
        if i.owned
        and i.family == family
        and i.version is not None
        and (i.version == version or version_key(i.version) == version_key(version))
    ]


def derived(
    conn: Connector | None,
    inv: Inventory,
    roots: set[str],
    targets: dict[tuple[str, str], Target] | None = None,
) -> dict[str, tuple[str | None, str]]:
    """image id -> (the revoked image it derives from, how it was found) for the roots and
    everything derived from them (roots: ``(None, "named")``)."""
    out: dict[str, tuple[str | None, str]] = {r: (None, "named") for r in roots}
    by_id = inv.by_id
    ancestry: dict[str, list[str] | None] = {}
    while True:
        added = False
        for d in sorted(inv.descendants(set(out))):
            if d not in out:
                out[d] = (by_id[d].source_image_id, "lineage")
                added = True
        for img in inv.images:
            if img.image_id in out:
                continue
            m = COPIED_RE.search(img.description or "")
            if m and m.group(1) in out:
                out[img.image_id] = (m.group(1), "copy description")
                added = True
                continue
            mark = next((w for w in img.watermark_sources if w in out), None)
            if mark:
                out[img.image_id] = (mark, "watermark")
                added = True
                continue
            if conn is None or not img.owned or img.source_image_id:
                continue  # lineage already answered for it
            if img.image_id not in ancestry:
                t = (targets or {}).get((img.account, img.region)) or Target(
                    img.account, img.region
                )
                ancestry[img.image_id] = ancestry_ids(conn, t, img.image_id)
            hit = next((a for a in ancestry[img.image_id] or [] if a in out), None)
            if hit:
                out[img.image_id] = (hit, "GetImageAncestry")
                added = True
        if not added:
            return out


def tree_rows(inv: Inventory, found: dict[str, tuple[str | None, str]]) -> list[dict[str, Any]]:
    """The revoked images as a tree, depth first from each root: one row each."""
    by_id = inv.by_id
    kids: dict[str | None, list[str]] = {}
    for iid, (parent, _) in found.items():
        kids.setdefault(parent if parent in found else None, []).append(iid)
    rows: list[dict[str, Any]] = []

    def walk(iid: str, depth: int) -> None:
        img = by_id.get(iid)
        parent, how = found[iid]
        rows.append(
            {
                "depth": depth,
                "tree": "  " * depth + ("└─ " if depth else "") + iid,
                "image_id": iid,
                "account": img.account if img else None,
                "region": img.region if img else None,
                "name": img.name if img else None,
                "family": img.family if img else None,
                "version": img.version if img else None,
                "state": img.state if img else "gone",
                "parent": parent,
                "how": how,
            }
        )
        for k in sorted(
            kids.get(iid, []), key=lambda x: (by_id[x].region if x in by_id else "", x)
        ):
            walk(k, depth + 1)

    for r in sorted(kids.get(None, [])):
        walk(r, 0)
    return rows
