"""Executors for every action type, registered with the IAM permissions they need.

Each is idempotent: an action already in effect counts as done (an image already
deprecated or disabled, a deregister or delete whose retry finds the resource gone).
Restoring actions (unmark, undeprecate, enable) and marks touch only images marked by
the plan's own policy (``amictl:retired-by``): one policy never undoes another's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..inventory.lookup import describe_image
from ..model import iso
from ..policy.plan_model import Action
from ..tagnames import BY_TAG, MARK_TAG
from .recheck import code_of, tags_of

GONE_IMAGE = {"InvalidAMIID.Unavailable", "InvalidAMIID.NotFound"}
GONE_SNAPSHOT = {"InvalidSnapshot.NotFound"}
# The EC2 API whose request bucket an action spends (the executor's mutating call; the
# pipeline starts an action when that bucket has a token, ``amictl.aws.pacing``).
API_OF = {
    "mark": "CreateTags",
    "unmark": "DeleteTags",
    "deprecate": "EnableImageDeprecation",
    "undeprecate": "DisableImageDeprecation",
    "disable": "DisableImage",
    "enable": "EnableImage",
    "deregister": "DeregisterImage",
    "delete-snapshot": "DeleteSnapshot",
    "archive-snapshot": "ModifySnapshotTier",
}


@dataclass(frozen=True)
class Outcome:
    status: str  # done | skipped | not-found
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
    """Register an executor; ``fn(ec2, action, policy_name)``."""

    def deco(fn: Callable[[Any, Action, str], Outcome]) -> Callable[[Any, Action, str], Outcome]:
        EXECUTORS[type_] = ExecutorSpec(type_, tuple(permissions), destructive, fn)
        return fn

    return deco


def _ours(ec2: Any, a: Action, policy: str) -> tuple[dict[str, Any] | None, Outcome | None]:
    """The image if it is owned and marked by ``policy`` (or by no recorded policy)."""
    img = describe_image(ec2, a.image_id or "")
    if img is None:
        return None, Outcome("not-found", "image not found")
    if img.get("OwnerId") != a.account:
        return None, Outcome("skipped", f"not owned by {a.account}")
    tags = tags_of(img)
    who = tags.get(BY_TAG)
    if who is not None and who != policy:
        return None, Outcome("skipped", f"marked by policy {who!r}: left to it")
    if who is None and MARK_TAG not in tags:
        return None, Outcome("skipped", f"not marked by policy {policy!r}")
    return img, None


@executor("mark", ["ec2:CreateTags", "ec2:DescribeImages"], destructive=False)
def do_mark(ec2: Any, a: Action, policy: str) -> Outcome:
    img = describe_image(ec2, a.image_id or "")
    if img is None:
        return Outcome("not-found", "image not found")
    if img.get("OwnerId") != a.account:
        return Outcome("skipped", f"not owned by {a.account}")
    tags = tags_of(img)
    who = tags.get(BY_TAG)
    if MARK_TAG in tags:
        if who == policy:
            return Outcome("done", f"already marked since {tags[MARK_TAG]}")
        if who is not None:
            return Outcome("skipped", f"marked by policy {who!r}: left to it")
        ec2.create_tags(Resources=[a.image_id], Tags=[{"Key": BY_TAG, "Value": policy}])
        return Outcome("done", f"adopted the mark of {tags[MARK_TAG]}: {BY_TAG}={policy}")
    # The real time, never the plan's: a plan cannot date a mark to make stages come due.
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ec2.create_tags(
        Resources=[a.image_id],
        Tags=[{"Key": MARK_TAG, "Value": since}, {"Key": BY_TAG, "Value": policy}],
    )
    return Outcome("done", f"tagged {MARK_TAG}={since}, {BY_TAG}={policy}")


@executor("unmark", ["ec2:DeleteTags", "ec2:DescribeImages"], destructive=False)
def do_unmark(ec2: Any, a: Action, policy: str) -> Outcome:
    img, out = _ours(ec2, a, policy)
    if out is not None:
        return out
    ec2.delete_tags(Resources=[a.image_id], Tags=[{"Key": MARK_TAG}, {"Key": BY_TAG}])
    return Outcome("done", f"removed {MARK_TAG} and {BY_TAG}")


@executor("deprecate", ["ec2:EnableImageDeprecation"], destructive=True)
def do_deprecate(ec2: Any, a: Action, policy: str) -> Outcome:
    # AWS refuses a time in the past and rounds to the minute: the next whole minute.
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    ec2.enable_image_deprecation(ImageId=a.image_id, DeprecateAt=at)
    return Outcome("done", f"deprecated at {iso(at)}")


@executor("undeprecate", ["ec2:DisableImageDeprecation"], destructive=False)
def do_undeprecate(ec2: Any, a: Action, policy: str) -> Outcome:
    img, out = _ours(ec2, a, policy)
    if out is not None:
        return out
    ec2.disable_image_deprecation(ImageId=a.image_id)
    return Outcome("done", "deprecation removed")


@executor("disable", ["ec2:DisableImage"], destructive=True)
def do_disable(ec2: Any, a: Action, policy: str) -> Outcome:
    img = describe_image(ec2, a.image_id or "")
    if img is None:
        return Outcome("not-found", "image not found")
    if img.get("State") == "disabled":
        return Outcome("done", "already disabled")
    ec2.disable_image(ImageId=a.image_id)
    return Outcome("done", "disabled")


@executor("enable", ["ec2:EnableImage"], destructive=False)
def do_enable(ec2: Any, a: Action, policy: str) -> Outcome:
    img, out = _ours(ec2, a, policy)
    if out is not None:
        return out
    assert img is not None
    if img.get("State") != "disabled":
        return Outcome("done", "not disabled")
    ec2.enable_image(ImageId=a.image_id)
    return Outcome("done", "enabled")


@executor("deregister", ["ec2:DeregisterImage"], destructive=True)
def do_deregister(ec2: Any, a: Action, policy: str) -> Outcome:
    try:
        ec2.deregister_image(ImageId=a.image_id)
    except ClientError as exc:
        if code_of(exc) in GONE_IMAGE:
            return Outcome("done", "already deregistered")
        raise
    return Outcome("done", "deregistered")


def deregister_with_snapshots(ec2: Any, a: Action) -> tuple[Outcome, dict[str, str] | None]:
    """DeregisterImage with ``DeleteAssociatedSnapshots``: the image and, in the same call,
    its snapshots that AWS finds no other image using. Returns the outcome and AWS's
    per-snapshot ``ReturnCode`` (``success`` or why it skipped one). An image already gone
    at the first attempt: ``{}``, this call deleted nothing; at a retry: ``None``, an earlier
    attempt may have deleted them, its answer lost (a 5xx). Either way the snapshots are
    then decided again, one by one."""
    try:
        resp = ec2.deregister_image(ImageId=a.image_id, DeleteAssociatedSnapshots=True)
    except ClientError as exc:
        if code_of(exc) in GONE_IMAGE:
            retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            return Outcome("done", "already deregistered"), (None if retried else {})
        raise
    results = {
        str(r.get("SnapshotId")): str(r.get("ReturnCode", ""))
        for r in resp.get("DeleteSnapshotResults", []) or []
    }
    said = ", ".join(f"{sid} {code}" for sid, code in sorted(results.items()))
    return Outcome("done", f"deregistered with its snapshots ({said or 'none reported'})"), results


@executor("delete-snapshot", ["ec2:DeleteSnapshot"], destructive=True)
def do_delete_snapshot(ec2: Any, a: Action, policy: str) -> Outcome:
    try:
        ec2.delete_snapshot(SnapshotId=a.snapshot_id)
    except ClientError as exc:
        if code_of(exc) in GONE_SNAPSHOT:
            return Outcome("done", "already deleted")
        if code_of(exc) == "InvalidSnapshot.InUse":
            return Outcome(
                "skipped",
                f"AWS says the snapshot is in use: {exc.response['Error'].get('Message')}",
            )
        raise
    return Outcome("done", "deleted")


@executor("archive-snapshot", ["ec2:ModifySnapshotTier", "ec2:DescribeSnapshots"], destructive=True)
def do_archive_snapshot(ec2: Any, a: Action, policy: str) -> Outcome:
    try:
        snap = ec2.describe_snapshots(SnapshotIds=[a.snapshot_id])["Snapshots"][0]
    except ClientError as exc:
        if code_of(exc) in GONE_SNAPSHOT:
            return Outcome("not-found", "snapshot not found")
        raise
    if snap.get("StorageTier") == "archive":
        return Outcome("done", "already archived")
    try:
        ec2.modify_snapshot_tier(SnapshotId=a.snapshot_id, StorageTier="archive")
    except ClientError as exc:
        if code_of(exc) == "InvalidSnapshot.InUse":
            return Outcome(
                "skipped",
                f"AWS says the snapshot is in use: {exc.response['Error'].get('Message')}",
            )
        raise
    return Outcome("done", "moved to the archive tier")
