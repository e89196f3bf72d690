"""The demo's Recycle Bin steps: make deletions recoverable, then bring an image back.

``ctx`` is the demo context: ``.con`` (rich Console), ``.conn`` (Connector), ``.store``,
``.aliases``. Both steps go through ``amictl.recyclebin``, as `amictl recycle-bin` does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import recyclebin
from ..aws.session import Target
from ..durations import human_duration, plural
from ..errors import AmictlError

DEMO_RETENTION_DAYS = 7


def ensure_rule(ctx: Any, title: str | None = None) -> list[dict[str, Any]]:
    """Explain Recycle Bin, then create a 7-day region-wide rule for AMIs and snapshots in
    every demo region (reusing any that exist). Returns the rows of ``recyclebin.ensure``."""
    con = ctx.con
    if title:
        con.rule(title)
    con.print(
        "Deregistering an AMI or deleting a snapshot is final, unless a Recycle Bin retention "
        "rule keeps it: then it waits in the bin, restorable, until its retention ends. "
        f"`amictl recycle-bin ensure --retention {DEMO_RETENTION_DAYS}d` creates a region-wide "
        "rule for AMIs and one for snapshots (snapshots must be kept at least as long as the "
        "AMIs, or a restored AMI has nothing to launch from)."
    )
    rows: list[dict[str, Any]] = []
    for t in ctx.conn.targets():
        rows += recyclebin.ensure(ctx.conn, t, DEMO_RETENTION_DAYS)
        cov = recyclebin.coverage(ctx.conn, t)
        con.print(f"  {t.region:<10} {cov.describe()}")
    created = sum(r["status"] == "created" for r in rows)
    con.print(f"{plural(created, 'rule')} created, {len(rows) - created} already in place.")
    return rows


def _left(days: float | None) -> str:
    return "?" if days is None else human_duration(dt.timedelta(days=days))


def _find(ctx: Any, resource_id: str) -> tuple[Target | None, list[dict[str, Any]]]:
    found: Target | None = None
    rows: list[dict[str, Any]] = []
    for t in ctx.conn.targets():
        bin_rows = recyclebin.list_bin(ctx.conn, t)
        rows += bin_rows
        if any(r["id"] == resource_id for r in bin_rows):
            found = t
    return found, rows


def show_restore(ctx: Any, image_id: str, title: str | None = None) -> dict[str, Any] | None:
    """List the bin, restore ``image_id`` (with its snapshots in the bin), show it registered
    again. Returns the result of ``recyclebin.restore``, or None if it is not in the bin."""
    con = ctx.con
    if title:
        con.rule(title)
    target, rows = _find(ctx, image_id)
    images = [r for r in rows if r["type"] == "image"]
    snaps = [r for r in rows if r["type"] == "snapshot"]
    con.print(
        f"`amictl recycle-bin ls`: {plural(len(images), 'image')} and "
        f"{plural(len(snaps), 'snapshot')} in the bin."
    )
    for r in images[:8]:
        con.print(
            f"  {r['region']:<10} {r['id']:<22} {r['name'] or '':<24} "
            f"kept until {r['retention_end_time'] or '?'} ({_left(r['days_left'])} left)"
        )
    if len(images) > 8:
        con.print(f"  ... and {len(images) - 8} more")
    if target is None:
        con.print(f"[yellow]{image_id} is not in the Recycle Bin:[/] nothing to restore.")
        return None
    con.print(f"\nSomeone needed {image_id} after all. `amictl recycle-bin restore {image_id}`:")
    try:
        res = recyclebin.restore(ctx.conn, target, image_id)
    except AmictlError as exc:
        con.print(f"[red]restore failed:[/] {exc.message}")
        return None
    for rid in res["restored"]:
        con.print(f"  restored {rid}")
    for w in res["warnings"]:
        con.print(f"  [yellow]warning:[/] {w}")
    ec2 = ctx.conn.client("ec2", target.region, target.role_arn)
    image = (ec2.describe_images(ImageIds=[image_id]).get("Images") or [{}])[0]
    snap_ids = [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if (m.get("Ebs") or {}).get("SnapshotId")
    ]
    present = [s for s in snap_ids if s not in res["missing_snapshots"]]
    con.print(
        f"{image_id} ({image.get('Name', '?')}) is registered again: state {image.get('State')}, "
        f"{len(present)} of {plural(len(snap_ids), 'snapshot')} present; it can launch instances "
        "again."
        if present == snap_ids
        else f"{image_id} is registered again but "
        f"{plural(len(snap_ids) - len(present), 'snapshot is', 'snapshots are')} gone."
    )
    return res
