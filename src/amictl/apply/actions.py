"""Executors for every action type, registered with the IAM permissions they need.

Each is idempotent: an action already in effect counts as done
(InvalidAMIID.Unavailable / NotFound after a deregister, InvalidSnapshot.NotFound
after a delete, an image already deprecated or disabled).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..policy.plan_model import Action
from ..policy.planner import MARK_TAG

GONE_IMAGE = {"InvalidAMIID.Unavailable", "InvalidAMIID.NotFound"}
GONE_SNAPSHOT = {"InvalidSnapshot.NotFound"}


@dataclass(frozen=True)
class Outcome:
    status: str  # done | skipped
    message: str


@dataclass(frozen=True)
class ExecutorSpec:
    type: str
    permissions: tuple[str, ...]
    destructive: bool
    fn: Callable[[Any, Action, str], Outcome]


EXECUTORS: dict[str, ExecutorSpec] = {}


def executor(
    type_: str, permissions: list[str], destructive: bool
) -> Callable[[Callable[[Any, Action, str], Outcome]], Callable[[Any, Action, str], Outcome]]:
    def deco(fn: Callable[[Any, Action, str], Outcome]) -> Callable[[Any, Action, str], Outcome]:
        EXECUTORS[type_] = ExecutorSpec(type_, tuple(permissions), destructive, fn)
        return fn

    return deco


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    try:
        imgs = ec2.describe_images(
            ImageIds=[image_id], IncludeDisabled=True, IncludeDeprecated=True
        )["Images"]
    except ClientError as exc:
        if _code(exc) in GONE_IMAGE:
            return None
        raise
    return imgs[0] if imgs else None


@executor("mark", ["ec2:CreateTags"], destructive=False)
def do_mark(ec2: Any, a: Action, plan_now: str) -> Outcome:
    img = _image(ec2, a.image_id or "")
    if img is None:
        return Outcome("skipped", "image no longer exists")
    tags = {t["Key"]: t["Value"] for t in img.get("Tags", [])}
    if MARK_TAG in tags:
        return Outcome("done", f"already marked since {tags[MARK_TAG]}")
    ec2.create_tags(Resources=[a.image_id], Tags=[{"Key": MARK_TAG, "Value": plan_now}])
    return Outcome("done", f"tagged {MARK_TAG}={plan_now}")


@executor("unmark", ["ec2:DeleteTags"], destructive=False)
def do_unmark(ec2: Any, a: Action, plan_now: str) -> Outcome:
    ec2.delete_tags(Resources=[a.image_id], Tags=[{"Key": MARK_TAG}])
    return Outcome("done", f"removed {MARK_TAG}")


@executor("deprecate", ["ec2:EnableImageDeprecation"], destructive=True)
def do_deprecate(ec2: Any, a: Action, plan_now: str) -> Outcome:
    # AWS refuses a time in the past and rounds to the minute: the next whole minute.
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    ec2.enable_image_deprecation(ImageId=a.image_id, DeprecateAt=at)
    return Outcome("done", f"deprecated at {at.isoformat()}")


@executor("undeprecate", ["ec2:DisableImageDeprecation"], destructive=False)
def do_undeprecate(ec2: Any, a: Action, plan_now: str) -> Outcome:
    ec2.disable_image_deprecation(ImageId=a.image_id)
    return Outcome("done", "deprecation removed")


@executor("disable", ["ec2:DisableImage"], destructive=True)
def do_disable(ec2: Any, a: Action, plan_now: str) -> Outcome:
    img = _image(ec2, a.image_id or "")
    if img is None:
        return Outcome("skipped", "image no longer exists")
    if img.get("State") == "disabled":
        return Outcome("done", "already disabled")
    ec2.disable_image(ImageId=a.image_id)
    return Outcome("done", "disabled")


@executor("enable", ["ec2:EnableImage"], destructive=False)
def do_enable(ec2: Any, a: Action, plan_now: str) -> Outcome:
    img = _image(ec2, a.image_id or "")
    if img is None or img.get("State") != "disabled":
        return Outcome("done", "not disabled")
    ec2.enable_image(ImageId=a.image_id)
    return Outcome("done", "enabled")


@executor("deregister", ["ec2:DeregisterImage"], destructive=True)
def do_deregister(ec2: Any, a: Action, plan_now: str) -> Outcome:
    try:
        ec2.deregister_image(ImageId=a.image_id)
    except ClientError as exc:
        if _code(exc) in GONE_IMAGE:
            return Outcome("done", "already deregistered")
        raise
    return Outcome("done", "deregistered")


@executor("delete-snapshot", ["ec2:DeleteSnapshot"], destructive=True)
def do_delete_snapshot(ec2: Any, a: Action, plan_now: str) -> Outcome:
    try:
        ec2.delete_snapshot(SnapshotId=a.snapshot_id)
    except ClientError as exc:
        if _code(exc) in GONE_SNAPSHOT:
            return Outcome("done", "already deleted")
        if _code(exc) == "InvalidSnapshot.InUse":
            return Outcome(
                "skipped",
                f"AWS says the snapshot is in use: {exc.response['Error'].get('Message')}",
            )
        raise
    return Outcome("done", "deleted")


@executor("archive-snapshot", ["ec2:ModifySnapshotTier", "ec2:DescribeSnapshots"], destructive=True)
def do_archive_snapshot(ec2: Any, a: Action, plan_now: str) -> Outcome:
    try:
        snap = ec2.describe_snapshots(SnapshotIds=[a.snapshot_id])["Snapshots"][0]
    except ClientError as exc:
        if _code(exc) in GONE_SNAPSHOT:
            return Outcome("skipped", "snapshot no longer exists")
        raise
    if snap.get("StorageTier") == "archive":
        return Outcome("done", "already archived")
    try:
        ec2.modify_snapshot_tier(SnapshotId=a.snapshot_id, StorageTier="archive")
    except ClientError as exc:
        if _code(exc) == "InvalidSnapshot.InUse":
            return Outcome(
                "skipped",
                f"AWS says the snapshot is in use: {exc.response['Error'].get('Message')}",
            )
        raise
    return Outcome("done", "moved to the archive tier")
