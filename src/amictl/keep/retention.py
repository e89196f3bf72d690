"""Retention AWS enforces, as reasons to keep (issue 29): an EBS snapshot lock that has not
expired (governance, compliance or compliance in its cooling-off period) keeps the snapshot
and the image whose block devices use it; an image being stored to S3
(CreateStoreImageTask in progress) is kept until the task ends.

A compliance-mode lock cannot be removed by anyone until it expires: a destructive action
on it is never attempted (plan and apply's live view both decide here)."""

from __future__ import annotations

import datetime as dt
import fnmatch

from ..durations import human_duration
from ..inventory.collectors import channel_of_parameter
from ..model import Image, Inventory, Snapshot, iso, parse_time
from ..policy.model import Retain

CHANNEL_HISTORY_KIND = "channel-history"

ACTIVE_LOCKS = ("governance", "compliance", "compliance-cooloff")


def lock_active(snap: Snapshot, now: dt.datetime) -> bool:
    """The snapshot's lock still holds at ``now`` (unknown expiry: it holds)."""
    if snap.lock_state not in ACTIVE_LOCKS:
        return False
    until = parse_time(snap.lock_until)
    return until is None or until > now


def lock_text(snap: Snapshot) -> str:
    until = snap.lock_until or "an unknown time"
    if snap.lock_state == "compliance":
        return (
            f"locked in compliance mode until {until} (AWS refuses to delete it; never attempted)"
        )
    if snap.lock_state == "compliance-cooloff":
        return (
            f"locked in compliance mode until {until}, cooling-off until "
            f"{snap.lock_cooloff_until or '?'}"
        )
    return f"locked in governance mode until {until}"


def snapshot_lock_reasons(snap: Snapshot, now: dt.datetime) -> list[str]:
    """Why the snapshot's own lock keeps it (empty: no lock, or it expired)."""
    return [lock_text(snap)] if lock_active(snap, now) else []


def image_retention_reasons(
    img: Image, snapshots: dict[str, Snapshot], now: dt.datetime
) -> list[str]:
    """Why retention AWS enforces keeps the image: a locked snapshot of it, a store task
    still running."""
    out = []
    for b in img.block_devices if snapshots else ():  # img.snapshot_ids, without a list
        sid = b.get("snapshot_id")
        snap = snapshots.get(sid) if sid else None
        if snap is not None and snap.lock_state and lock_active(snap, now):
            out.append(f"its snapshot {sid} is {lock_text(snap)}")
    if img.store_task == "InProgress":
        out.append(f"being stored to S3 ({img.stored_to}): CreateStoreImageTask in progress")
    return out


def ever_in_channels(inv: Inventory, img: Image) -> set[str]:
    """The channels the image was ever in, as far as the inventory knows: a channel's current
    value, and every value of its history (SSM's and amictl's record of promotions)."""
    out: set[str] = set()
    for r in inv.refs_by_image.get(img.image_id, ()):
        if r.kind in ("channel", CHANNEL_HISTORY_KIND):
            found = channel_of_parameter(r.id.split("#", 1)[0])
            if found:
                out.add(found[1])
    return out


def retain_selects(rule: Retain, inv: Inventory, img: Image) -> bool:
    if rule.images is not None and img.image_id not in rule.images:
        return False
    if rule.families is not None and not (
        img.family and any(fnmatch.fnmatchcase(img.family, g) for g in rule.families)
    ):
        return False
    if rule.tags and any(img.tags.get(k) != v for k, v in rule.tags):
        return False
    if rule.channels is not None:
        chans = ever_in_channels(inv, img)
        if not any(fnmatch.fnmatchcase(c, g) for c in chans for g in rule.channels):
            return False
    return True


def retention_gap(rule: Retain, inv: Inventory, img: Image, now: dt.datetime) -> str | None:
    """What retention the rule asks for and the image lacks (None: in place)."""
    if rule.store_bucket is not None:
        if img.store_task == "Completed":
            return None
        return f"not stored to s3://{rule.store_bucket} yet" + (
            f" (its store task: {img.store_task})" if img.store_task else ""
        )
    want = ("compliance", "compliance-cooloff") if rule.lock_mode == "compliance" else ACTIVE_LOCKS
    bad = []
    for sid in img.snapshot_ids:
        snap = inv.snapshot_by_id.get(sid)
        if snap is None or not lock_active(snap, now) or snap.lock_state not in want:
            bad.append(sid)
    if not bad:
        return None
    return f"snapshot(s) {', '.join(bad)} not locked in {rule.lock_mode} mode"


def retain_reasons(
    rules: tuple[Retain, ...], inv: Inventory, img: Image, now: dt.datetime
) -> list[str]:
    """A version a retain rule names is kept while its retention is not in place."""
    out = []
    for rule in rules:
        if retain_selects(rule, inv, img):
            gap = retention_gap(rule, inv, img, now)
            if gap:
                out.append(f"retain rule {rule.name}: {gap} (run `amictl retain`)")
    return out


NOTIFIED_TAG = "amictl:notified"


def notice_wait(img: Image, before: dt.timedelta, now: dt.datetime) -> str | None:
    """Why the deregister stage waits for the owner's notice (None: it was delivered at
    least ``before`` ago). ``amictl notify`` tags the image when the notice is delivered;
    a failed delivery leaves no tag, so the stage keeps waiting and is reported."""
    raw = img.tags.get(NOTIFIED_TAG)
    try:
        told = parse_time(raw) if raw else None
    except ValueError:
        told = None
    if told is None:
        return (
            "deregister stage waits: no notice delivered to its owner yet "
            f"(`amictl notify`; then notify.before {human_duration(before)})"
        )
    if told + before > now:
        return (
            f"deregister stage waits for its notice period: notified {iso(told)}, due "
            f"{iso(told + before)} (notify.before {human_duration(before)})"
        )
    return None
