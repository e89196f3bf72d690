"""Retention AWS enforces, read with the snapshots and images of a slice (issue 29):
EBS snapshot locks (DescribeLockedSnapshots) and stored-image tasks
(DescribeStoreImageTasks). The keep decision (:mod:`amictl.keep.retention`) turns them into
reasons to keep; apply's live view reads them again with the same collectors."""

from __future__ import annotations

from typing import Any

from botocore.paginate import Paginator

from ..model import Image, Snapshot, iso, parse_time

LOCK_PERMISSIONS = ["ec2:DescribeLockedSnapshots"]
STORE_PERMISSIONS = ["ec2:DescribeStoreImageTasks"]
LOCK_PAGE = 1000
# botocore has no paginator for DescribeLockedSnapshots: one built from its token names
_LOCKED_PAGING = {
    "input_token": "NextToken",
    "output_token": "NextToken",
    "limit_key": "MaxResults",
    "result_key": "Snapshots",
}


def _locked_pages(ec2: Any) -> Any:
    model = ec2.meta.service_model.operation_model("DescribeLockedSnapshots")
    paginator = Paginator(ec2.describe_locked_snapshots, _LOCKED_PAGING, model)
    return paginator.paginate(PaginationConfig={"PageSize": LOCK_PAGE})


def read_snapshot_locks(ec2: Any, snapshots: list[Snapshot]) -> None:
    """Each locked snapshot's lock state, expiry and cooling-off end, set in place."""
    if not snapshots:
        return
    by_id = {s.snapshot_id: s for s in snapshots}
    for page in _locked_pages(ec2):
        for row in page.get("Snapshots", []):
            snap = by_id.get(row.get("SnapshotId", ""))
            if snap is None:
                continue
            snap.lock_state = row.get("LockState")
            snap.lock_until = iso(parse_time(row.get("LockExpiresOn")))
            snap.lock_cooloff_until = iso(parse_time(row.get("CoolOffPeriodExpiresOn")))


def read_store_tasks(ec2: Any, images: list[Image]) -> None:
    """Each image's newest store task (state and S3 object), set in place."""
    if not images:
        return
    by_id = {i.image_id: i for i in images}
    newest: dict[str, Any] = {}
    for page in ec2.get_paginator("describe_store_image_tasks").paginate(
        PaginationConfig={"PageSize": 200}
    ):
        for row in page.get("StoreImageTaskResults", []):
            ami = row.get("AmiId", "")
            start = parse_time(row.get("TaskStartTime"))
            cur = newest.get(ami)
            if cur is None or (start and cur[0] and start > cur[0]):
                newest[ami] = (start, row)
    for ami, (_start, row) in newest.items():
        img = by_id.get(ami)
        if img is not None:
            img.store_task = row.get("StoreTaskState")
            img.stored_to = f"s3://{row.get('Bucket')}/{row.get('S3objectKey')}"
