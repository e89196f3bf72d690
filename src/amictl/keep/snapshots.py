"""Every reason to keep a snapshot, and whose snapshot it is, decided in one place.

Provenance comes only from evidence AWS writes: an image's block device mappings (now,
or as recorded when amictl deregistered it) and the descriptions CreateImage and
CopyImage give the snapshots they make. Never from a tag: backup tools copy a volume's
tags onto its snapshots, and anyone can set one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from ..durations import human_duration
from ..model import Inventory, Snapshot
from ..policy.model import Hold, Policy
from .decide import snapshot_holds
from .retention import snapshot_lock_reasons


def snapshot_origin(snap: Snapshot, recorded: Mapping[str, str] | None = None) -> str | None:
    """The image the snapshot was made for or belonged to: recorded block device mappings
    (``recorded``: snapshot id -> image id) first, then the AWS-written description."""
    if recorded and snap.snapshot_id in recorded:
        return recorded[snap.snapshot_id]
    return snap.made_for_image


def orphan_candidates(view: Inventory, snaps: Iterable[Snapshot]) -> list[Snapshot]:
    """``snaps`` less those of which :func:`snapshot_keep_reasons` as an orphan surely has a
    reason that is not a hold: a registered image of the view uses it ("used by registered
    image(s)"), and it has no tags (so no hold, nor a hold's warning). The planner skips
    those without building their reasons: most snapshots of an account belong to a
    registered image."""
    used = view.images_by_snapshot  # (each value lists at least one image)
    return [s for s in snaps if s.tags or s.snapshot_id not in used]


def snapshot_keep_reasons(
    view: Inventory,
    policy: Policy,
    holds: tuple[Hold, ...],
    snap: Snapshot,
    now: dt.datetime,
    *,
    of_image: str | None,
    leaving: frozenset[str] = frozenset(),
    recorded: Mapping[str, str] | None = None,
    shared_with: list[str] | None = None,
    warnings: list[str] | None = None,
) -> list[str]:
    """Why the snapshot must stay (empty: it may go).

    ``of_image``: the deregistered image the snapshot is retired with (None: retired as an
    orphan, by ``snapshots.orphaned``). ``leaving``: images the same plan deregisters
    before it (a plan's view still lists them; apply's live view does not). ``shared_with``:
    its createVolumePermission targets, when read (apply always reads them).
    """
    out: list[str] = []
    if snap.owner_id and snap.owner_id != snap.account:
        out.append(f"not owned by {snap.account} (owner {snap.owner_id})")
    # (an untagged snapshot has no hold, an unlocked one no lock: skipped, the same result,
    # for the 200,000 snapshots of a 100,000-image plan)
    if snap.tags:
        out.extend(snapshot_holds(holds, snap, now, warnings))
    if snap.lock_state:
        out.extend(snapshot_lock_reasons(snap, now))
    using = view.images_by_snapshot.get(snap.snapshot_id)
    users = sorted(i.image_id for i in using if i.image_id not in leaving) if using else []
    if users:
        out.append(
            ("also used by " if of_image else "used by registered image(s) ") + ", ".join(users[:5])
        )
    if shared_with:
        out.append("shared with " + ", ".join(shared_with[:5]))
    origin = snapshot_origin(snap, recorded)
    if of_image is not None:
        img = view.by_id.get(of_image)
        if img is not None and snap.snapshot_id in img.snapshot_ids:
            origin = of_image  # its block device mappings, read now
        if of_image not in leaving and of_image in view.by_id:
            out.append(f"its image {of_image} is still registered")
        if origin != of_image:
            out.append(
                f"cannot verify that it was a snapshot of {of_image}"
                + (f" (AWS records it as made for {origin})" if origin else "")
            )
        return out
    o = policy.orphaned
    if o is None:
        out.append("the policy has no snapshots.orphaned rule")
        return out
    if snap.start_time is None or now - snap.start_time < o.older_than:
        out.append(f"younger than {human_duration(o.older_than)}")
    if o.only_from_images:
        if origin is None:
            out.append("not made for an image (a volume backup)")
        elif origin in view.by_id and origin not in leaving:
            out.append(f"the image it was made for, {origin}, is registered")
    if view.incomplete_index.get((snap.account, snap.region)):
        out.append(f"the inventory of {snap.account}/{snap.region} is incomplete")
    return out
