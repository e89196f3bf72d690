"""Monthly snapshot storage cost of an inventory, per snapshot, image and group.

Pure: (inventory, prices, change rate) -> figures. Each owned snapshot is counted once,
attributed to the oldest image that uses it (or to ``orphaned`` when no registered image
does), so that group figures add up to the totals.

Two figures per snapshot, both labelled (docs/cost.md):

- ``full_size_usd`` -- the snapshot's full size at its tier's rate. For the archive tier
  this is what AWS bills (an archived snapshot is a full copy); for the standard tier it
  is an **upper bound**, since AWS bills standard snapshots incrementally.
- ``estimate_usd`` -- a **shared-block estimate** for standard snapshots: the snapshots
  of one lineage (the versions of a family, per device, in one account and region) share
  blocks, so the largest is counted in full and every other at ``change_rate`` of its
  size. Archived, orphaned and unattributed snapshots have no known lineage: their
  estimate is their full size.

Rates come from :mod:`amictl.pricing` (the same function the plan's savings use).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..model import IN_USE_KINDS, Image, Inventory, Snapshot, iso
from ..pricing import Overrides, price

GROUP_BY = ("family", "region", "account", "image", "tier")
DEFAULT_CHANGE_RATE = 0.10
ORPHANED = "(orphaned snapshots)"
NO_FAMILY = "(no family)"
FULL_SIZE = "full size (upper bound: standard snapshots are billed incrementally)"
ARCHIVE_FULL = "full size (archive tier: billed in full)"
ESTIMATE = "shared-block estimate"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SnapshotCost:
    snapshot_id: str
    account: str
    region: str
    tier: str
    size_gib: int
    estimate_gib: float
    rate_usd: float
    full_size_usd: float
    estimate_usd: float
    image_id: str | None  # the image it is attributed to; None: orphaned
    family: str | None
    device: str | None
    lineage: str | None
    basis: str  # how estimate_usd was made

    @property
    def orphaned(self) -> bool:
        return self.image_id is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "orphaned": self.orphaned}


@dataclass
class Group:
    key: str
    images: set[str]
    snapshots: int = 0
    standard_gib: int = 0
    archive_gib: int = 0
    standard_usd: float = 0.0
    archive_usd: float = 0.0
    estimate_usd: float = 0.0
    unused_images: int = 0
    orphaned_snapshots: int = 0

    def add(self, c: SnapshotCost) -> None:
        if c.image_id:
            self.images.add(c.image_id)
        else:
            self.orphaned_snapshots += 1
        self.snapshots += 1
        if c.tier == "archive":
            self.archive_gib += c.size_gib
            self.archive_usd += c.full_size_usd
        else:
            self.standard_gib += c.size_gib
            self.standard_usd += c.full_size_usd
        self.estimate_usd += c.estimate_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "images": len(self.images),
            "snapshots": self.snapshots,
            "standard_gib": self.standard_gib,
            "archive_gib": self.archive_gib,
            "standard_usd": round(self.standard_usd, 4),
            "archive_usd": round(self.archive_usd, 4),
            "full_size_usd": round(self.standard_usd + self.archive_usd, 4),
            "estimate_usd": round(self.estimate_usd, 4),
            "unused_images": self.unused_images,
            "orphaned_snapshots": self.orphaned_snapshots,
        }


def in_use(inv: Inventory, img: Image) -> bool:
    """What ``ls --unused`` means: no reference that can still launch the image."""
    return any(r.kind in IN_USE_KINDS for r in inv.refs(img.image_id))


def _owner(users: list[Image]) -> Image:
    return min(users, key=lambda i: (i.created_at or EPOCH, i.image_id))


def _device(img: Image, snapshot_id: str) -> str | None:
    for b in img.block_devices:
        if b.get("snapshot_id") == snapshot_id:
            return str(b.get("device") or "")
    return None


def snapshot_costs(
    inv: Inventory,
    overrides: Overrides | None = None,
    change_rate: float = DEFAULT_CHANGE_RATE,
) -> list[SnapshotCost]:
    """One row per owned snapshot, with both figures (see the module docstring)."""
    if not 0 <= change_rate <= 1:
        raise ValueError(f"change rate must be from 0 to 1, got {change_rate}")
    rates: dict[tuple[str, str], float] = {}

    def rate(region: str, tier: str) -> float:
        if (region, tier) not in rates:
            rates[(region, tier)] = price(region, tier, overrides)
        return rates[(region, tier)]

    # attribution and lineage of each snapshot
    owner: dict[str, Image | None] = {}
    lineages: dict[str, list[Snapshot]] = defaultdict(list)
    lineage_of: dict[str, str] = {}
    for s in inv.snapshots:
        users = [i for i in inv.images_by_snapshot.get(s.snapshot_id, []) if i.owned]
        img = _owner(users) if users else None
        owner[s.snapshot_id] = img
        if img is not None and s.storage_tier != "archive":
            fam = img.family or f"image {img.image_id}"
            key = f"{s.account}/{s.region}/{fam}/{_device(img, s.snapshot_id)}"
            lineages[key].append(s)
            lineage_of[s.snapshot_id] = key
    # the largest (then oldest) snapshot of a lineage holds its blocks in full
    base: set[str] = set()
    for snaps in lineages.values():
        first = min(snaps, key=lambda s: (-s.size_gib, s.start_time or EPOCH, s.snapshot_id))
        base.add(first.snapshot_id)

    out: list[SnapshotCost] = []
    for s in inv.snapshots:
        img = owner[s.snapshot_id]
        tier = "archive" if s.storage_tier == "archive" else "standard"
        r = rate(s.region, tier)
        lineage = lineage_of.get(s.snapshot_id)
        if tier == "archive":
            est, basis = float(s.size_gib), ARCHIVE_FULL
        elif lineage is None:
            est, basis = float(s.size_gib), "full size (no known lineage)"
        elif s.snapshot_id in base:
            est, basis = float(s.size_gib), f"{ESTIMATE}: base of its lineage"
        else:
            est, basis = s.size_gib * change_rate, f"{ESTIMATE}: {change_rate:.0%} changed blocks"
        out.append(
            SnapshotCost(
                snapshot_id=s.snapshot_id,
                account=s.account,
                region=s.region,
                tier=tier,
                size_gib=s.size_gib,
                estimate_gib=round(est, 4),
                rate_usd=r,
                full_size_usd=s.size_gib * r,
                estimate_usd=est * r,
                image_id=img.image_id if img else None,
                family=img.family if img else None,
                device=_device(img, s.snapshot_id) if img else None,
                lineage=lineage,
                basis=basis,
            )
        )
    return out


def _image_key(img: Image, by: str) -> str:
    if by == "region":
        return img.region
    if by == "account":
        return img.account
    if by == "image":
        return f"{img.image_id} {img.name}".strip()
    return img.family or NO_FAMILY


def _key_fn(inv: Inventory, by: str) -> Callable[[SnapshotCost], str]:
    def key(c: SnapshotCost) -> str:
        if by == "tier":
            return c.tier
        if c.image_id is None:
            return {"region": c.region, "account": c.account}.get(by, ORPHANED)
        return _image_key(inv.by_id[c.image_id], by)

    return key


def report(
    inv: Inventory,
    by: str = "family",
    overrides: Overrides | None = None,
    change_rate: float = DEFAULT_CHANGE_RATE,
) -> dict[str, Any]:
    """Groups, totals, orphaned snapshots and images nothing uses (JSON-ready)."""
    if by not in GROUP_BY:
        raise ValueError(f"--by must be one of {', '.join(GROUP_BY)}")
    costs = snapshot_costs(inv, overrides, change_rate)
    key = _key_fn(inv, by)
    groups: dict[str, Group] = {}
    total = Group("total", set())
    orphaned = Group(ORPHANED, set())
    unused = Group("images nothing uses", set())
    unused_ids = {i.image_id for i in inv.images if i.owned and not in_use(inv, i)}
    for c in costs:
        g = groups.setdefault(key(c), Group(key(c), set()))
        g.add(c)
        total.add(c)
        if c.orphaned:
            orphaned.add(c)
        elif c.image_id in unused_ids:
            unused.add(c)
    owned = [i for i in inv.images if i.owned]
    for img in owned:  # images with no snapshot of their own still count in their group
        total.images.add(img.image_id)
        if by != "tier":
            k = _image_key(img, by)
            groups.setdefault(k, Group(k, set())).images.add(img.image_id)
    for g in (*groups.values(), total):
        g.unused_images = len(g.images & unused_ids)
    unused.images |= unused_ids
    unused.unused_images = len(unused_ids)
    rows = sorted(
        (g.to_dict() for g in groups.values()), key=lambda d: (-d["full_size_usd"], d["key"])
    )
    return {
        "by": by,
        "change_rate": change_rate,
        "labels": {
            "full_size_usd": FULL_SIZE,
            "archive_usd": ARCHIVE_FULL,
            "estimate_usd": f"{ESTIMATE} (lineage base in full, other versions at "
            f"{change_rate:.0%} of their size; archived snapshots in full)",
        },
        "groups": rows,
        "orphaned": orphaned.to_dict(),
        "unused_images": {**unused.to_dict(), "image_ids": sorted(unused.images)},
        "totals": total.to_dict(),
        "inventory": {
            "scanned_at": iso(inv.scanned_at),
            "complete": inv.complete,
            "regions": inv.regions,
            "accounts": inv.accounts,
        },
    }


def image_costs(
    inv: Inventory, overrides: Overrides | None = None, change_rate: float = DEFAULT_CHANGE_RATE
) -> dict[str, dict[str, float]]:
    """image id -> {full_size_usd, estimate_usd} of the snapshots attributed to it."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"full_size_usd": 0, "estimate_usd": 0})
    for c in snapshot_costs(inv, overrides, change_rate):
        if c.image_id:
            out[c.image_id]["full_size_usd"] += c.full_size_usd
            out[c.image_id]["estimate_usd"] += c.estimate_usd
    return dict(out)
