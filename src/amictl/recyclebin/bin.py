"""What is in the Recycle Bin, and getting it back.

Restoring an AMI restores the AMI only: its snapshots are separate resources, kept (or
not) by the snapshot retention rules, and an AMI whose snapshots are gone cannot launch
(AWS: "make the retention period for the snapshots the same or longer than the retention
period for the AMIs [...] as this would make the AMI unrecoverable"). So ``restore`` of
an AMI also restores its snapshots that are in the bin — first those whose description
names the AMI ("Created by CreateImage(...) for ami-..."), then any other snapshot its
block device mappings name — and reports the ones that are gone for good.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error, error_code
from ..errors import AmictlError, InputError
from ..model import iso
from ..tagnames import BY_TAG, MARK_TAG

AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
SNAP_RE = re.compile(r"^snap-[0-9a-f]{8,17}$")
FOR_AMI_RE = re.compile(r"\bfor (ami-[0-9a-f]{8,17})\b")
NOT_FOUND = {
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Unavailable",
    "InvalidSnapshot.NotFound",
    "InvalidSnapshotID.NotFound",
}


class NotInRecycleBin(AmictlError):
    """The resource is not in the Recycle Bin of this account/region."""


def kind_of(resource_id: str) -> str:
    """``image`` for ami-…, ``snapshot`` for snap-…; InputError (exit 2) otherwise."""
    rid = str(resource_id).strip()
    if AMI_RE.match(rid):
        return "image"
    if SNAP_RE.match(rid):
        return "snapshot"
    raise InputError(
        f"{resource_id!r} is neither an AMI id (ami-0123456789abcdef0) nor a snapshot id "
        "(snap-0123456789abcdef0)",
        key="ID",
    )


def _iso(t: Any) -> str | None:
    if isinstance(t, dt.datetime):
        return iso(t if t.tzinfo else t.replace(tzinfo=dt.UTC))
    return None if t is None else str(t)


def _days_left(t: Any, now: dt.datetime) -> float | None:
    if not isinstance(t, dt.datetime):
        return None
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return round(max((t - now).total_seconds(), 0.0) / 86400, 1)


def _ec2(connector: Connector, target: Target) -> Any:
    return connector.client("ec2", target.region, target.role_arn)


def _images_in_bin(ec2: Any, ids: list[str] | None = None) -> list[dict[str, Any]]:
    kw: dict[str, Any] = {"ImageIds": ids} if ids else {}
    try:
        return [
            i
            for page in ec2.get_paginator("list_images_in_recycle_bin").paginate(**kw)
            for i in page.get("Images", [])
        ]
    except ClientError as exc:
        if ids and error_code(exc) in NOT_FOUND:
            return []
        raise


def _snapshots_in_bin(ec2: Any, ids: list[str] | None = None) -> list[dict[str, Any]]:
    kw: dict[str, Any] = {"SnapshotIds": ids} if ids else {}
    try:
        return [
            s
            for page in ec2.get_paginator("list_snapshots_in_recycle_bin").paginate(**kw)
            for s in page.get("Snapshots", [])
        ]
    except ClientError as exc:
        if ids and error_code(exc) in NOT_FOUND:
            return []
        raise


def list_bin(
    connector: Connector, target: Target, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Images and snapshots in ``target``'s Recycle Bin (every page), images first.

    Each row: account, region, type (image|snapshot), id, name, description, image_id
    (a snapshot's AMI, from its description), volume_id, recycle_bin_enter_time,
    retention_end_time (ISO 8601 UTC), days_left. Raises AwsError.
    """
    now = now or dt.datetime.now(dt.UTC)
    ec2 = _ec2(connector, target)
    rows: list[dict[str, Any]] = []
    try:
        images = _images_in_bin(ec2)
        snapshots = _snapshots_in_bin(ec2)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(
            exc, "ListImagesInRecycleBin/ListSnapshotsInRecycleBin", target.region
        ) from None
    base = {"account": target.account, "region": target.region}
    for i in sorted(images, key=lambda i: str(i.get("RecycleBinEnterTime", ""))):
        rows.append(
            {
                **base,
                "type": "image",
                "id": i["ImageId"],
                "name": i.get("Name"),
                "description": i.get("Description"),
                "image_id": i["ImageId"],
                "volume_id": None,
                "recycle_bin_enter_time": _iso(i.get("RecycleBinEnterTime")),
                "retention_end_time": _iso(i.get("RecycleBinExitTime")),
                "days_left": _days_left(i.get("RecycleBinExitTime"), now),
            }
        )
    for s in sorted(snapshots, key=lambda s: str(s.get("RecycleBinEnterTime", ""))):
        m = FOR_AMI_RE.search(s.get("Description") or "")
        rows.append(
            {
                **base,
                "type": "snapshot",
                "id": s["SnapshotId"],
                "name": None,
                "description": s.get("Description"),
                "image_id": m.group(1) if m else None,
                "volume_id": s.get("VolumeId"),
                "recycle_bin_enter_time": _iso(s.get("RecycleBinEnterTime")),
                "retention_end_time": _iso(s.get("RecycleBinExitTime")),
                "days_left": _days_left(s.get("RecycleBinExitTime"), now),
            }
        )
    return rows


def _registered(ec2: Any, image_id: str) -> dict[str, Any] | None:
    try:
        imgs = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise
    return imgs[0] if imgs else None


def _snapshot_exists(ec2: Any, snapshot_id: str) -> bool:
    try:
        return bool(ec2.describe_snapshots(SnapshotIds=[snapshot_id]).get("Snapshots"))
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return False
        raise


def _not_in_bin(resource_id: str, target: Target, registered: bool) -> NotInRecycleBin:
    where = f"{target.account}/{target.region}"
    if registered:
        return NotInRecycleBin(
            f"{resource_id} is not deleted in {where}: nothing to restore",
            hint="it is registered/present already (restored before?)",
        )
    return NotInRecycleBin(
        f"{resource_id} is not in the Recycle Bin of {where}",
        hint="it was deleted without a matching retention rule, its retention ended, or it is "
        "in another region/account (see `amictl recycle-bin ls --region all`)",
    )


def restore(connector: Connector, target: Target, resource_id: str) -> dict[str, Any]:
    """Restore an AMI (with its snapshots that are in the bin) or a snapshot.

    Returns account, region, id, type, restored (every id restored, in order),
    snapshots_restored, missing_snapshots (an AMI's snapshots that are gone for good: it
    cannot launch), state, warnings. Raises InputError for an id of the wrong shape,
    NotInRecycleBin when it is not in this bin, AwsError when AWS refuses.
    """
    rid = str(resource_id).strip()
    kind = kind_of(rid)
    ec2 = _ec2(connector, target)
    out: dict[str, Any] = {
        "account": target.account,
        "region": target.region,
        "id": rid,
        "type": kind,
        "restored": [],
        "snapshots_restored": [],
        "missing_snapshots": [],
        "state": None,
        "warnings": [],
    }
    op = "ListSnapshotsInRecycleBin"
    try:
        if kind == "snapshot":
            if not _snapshots_in_bin(ec2, [rid]):
                op = "DescribeSnapshots"
                raise _not_in_bin(rid, target, _snapshot_exists(ec2, rid))
            op = "RestoreSnapshotFromRecycleBin"
            resp = ec2.restore_snapshot_from_recycle_bin(SnapshotId=rid)
            out["restored"].append(rid)
            out["state"] = resp.get("State")
            return out

        op = "ListImagesInRecycleBin"
        if not _images_in_bin(ec2, [rid]):
            op = "DescribeImages"
            raise _not_in_bin(rid, target, _registered(ec2, rid) is not None)
        op = "ListSnapshotsInRecycleBin"
        binned = {s["SnapshotId"]: s for s in _snapshots_in_bin(ec2)}

        def restore_snapshot(sid: str) -> None:
            nonlocal op
            op = "RestoreSnapshotFromRecycleBin"
            ec2.restore_snapshot_from_recycle_bin(SnapshotId=sid)
            binned.pop(sid, None)
            out["restored"].append(sid)
            out["snapshots_restored"].append(sid)

        # Its snapshots first, so that the AMI is usable as soon as it is back.
        for sid, s in list(binned.items()):
            m = FOR_AMI_RE.search(s.get("Description") or "")
            if m and m.group(1) == rid:
                restore_snapshot(sid)
        op = "RestoreImageFromRecycleBin"
        ec2.restore_image_from_recycle_bin(ImageId=rid)
        out["restored"].append(rid)
        op = "DescribeImages"
        image = _registered(ec2, rid) or {}
        out["state"] = image.get("State")
        for bdm in image.get("BlockDeviceMappings", []):
            sid = (bdm.get("Ebs") or {}).get("SnapshotId")
            if not sid or sid in out["snapshots_restored"]:
                continue
            if sid in binned:
                restore_snapshot(sid)
                continue
            op = "DescribeSnapshots"
            if not _snapshot_exists(ec2, sid):
                out["missing_snapshots"].append(sid)
        # Restored means wanted again: the retirement marks amictl left on it would make
        # the next plan retire it again. They are removed, and the output says so.
        tags = {t["Key"]: t.get("Value", "") for t in image.get("Tags", []) or []}
        marks = [k for k in (MARK_TAG, BY_TAG) if k in tags]
        out["marks_removed"] = []
        if marks:
            op = "DeleteTags"
            ec2.delete_tags(Resources=[rid], Tags=[{"Key": k} for k in marks])
            out["marks_removed"] = [f"{k}={tags[k]}" for k in marks]
            out["warnings"].append(
                f"removed the retirement marks {', '.join(out['marks_removed'])}: the next "
                "plan decides about it afresh"
            )
        for sid in out["missing_snapshots"]:
            out["warnings"].append(
                f"{rid} is registered again but its snapshot {sid} is gone for good "
                "(deleted without a snapshot retention rule, or its retention ended): "
                "the image cannot launch"
            )
        return out
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, op, target.region) from None
