"""``amictl retain``: the steps that put each retain rule's retention in place (a lock on
every snapshot of a named version, or the image stored to S3), and ``amictl restore``."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error, error_code
from ..keep.retention import lock_active, retain_selects, retention_gap
from ..model import Inventory
from ..policy.model import Policy, Retain

RETAIN_PERMISSIONS = frozenset(
    {
        "ec2:LockSnapshot",
        "ec2:CreateStoreImageTask",
        "ec2:DescribeStoreImageTasks",
        "ebs:GetSnapshotBlock",
        "ebs:ListSnapshotBlocks",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:AbortMultipartUpload",
    }
)
RESTORE_PERMISSIONS = frozenset(
    {
        "ec2:CreateRestoreImageTask",
        "ec2:RegisterImage",
        "ec2:CreateTags",
        "s3:GetObject",
        "ebs:StartSnapshot",
        "ebs:PutSnapshotBlock",
        "ebs:CompleteSnapshot",
    }
)


@dataclass
class RetainStep:
    """One call that puts a retain rule's retention in place."""

    action: str  # lock | store
    rule: str
    account: str
    region: str
    image_id: str
    resource: str  # the snapshot locked, or the bucket stored to
    detail: str
    status: str = "planned"  # planned | done | failed
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _days(td: dt.timedelta) -> int:
    return max(1, int(td.total_seconds() // 86400))


def _hours(td: dt.timedelta) -> int:
    return max(1, int(td.total_seconds() // 3600))


def _steps_for(rule: Retain, inv: Inventory, img: Any, now: dt.datetime) -> list[RetainStep]:
    base = {"rule": rule.name, "account": img.account, "region": img.region}
    if rule.store_bucket is not None:
        if img.store_task == "InProgress":
            return []
        return [
            RetainStep(
                "store",
                image_id=img.image_id,
                resource=rule.store_bucket,
                detail=f"store {img.image_id} to s3://{rule.store_bucket}",
                **base,
            )
        ]
    out = []
    assert rule.lock_for is not None
    for sid in img.snapshot_ids:
        snap = inv.snapshot_by_id.get(sid)
        if snap is not None and lock_active(snap, now) and snap.lock_state != "governance":
            continue  # a compliance lock (or one cooling off) is never weakened or touched
        if snap is not None and lock_active(snap, now) and rule.lock_mode == "governance":
            continue
        cool = f", cooling-off {_hours(rule.cool_off)}h" if rule.cool_off else ""
        out.append(
            RetainStep(
                "lock",
                image_id=img.image_id,
                resource=sid,
                detail=f"lock {sid} in {rule.lock_mode} mode for {_days(rule.lock_for)} days{cool}",
                **base,
            )
        )
    return out


def retain_steps(inv: Inventory, policy: Policy, now: dt.datetime) -> list[RetainStep]:
    """Every step still needed, for every owned image a retain rule selects."""
    inv.resolve_families(policy.families)
    out: list[RetainStep] = []
    for img in inv.images:
        if not img.owned or img.state not in ("available", "disabled"):
            continue
        for rule in policy.retain:
            if retain_selects(rule, inv, img) and retention_gap(rule, inv, img, now):
                out.extend(_steps_for(rule, inv, img, now))
    return out


def _call(ec2: Any, step: RetainStep, rule: Retain) -> None:
    if step.action == "store":
        ec2.create_store_image_task(ImageId=step.image_id, Bucket=step.resource)
        return
    assert rule.lock_for is not None and rule.lock_mode is not None
    kw: dict[str, Any] = {
        "SnapshotId": step.resource,
        "LockMode": rule.lock_mode,
        "LockDuration": _days(rule.lock_for),
    }
    if rule.cool_off is not None:
        kw["CoolOffPeriod"] = _hours(rule.cool_off)
    ec2.lock_snapshot(**kw)


def apply_steps(
    conn: Connector, steps: list[RetainStep], policy: Policy, roles: dict[str, str | None]
) -> list[RetainStep]:
    """Run each step (``roles``: account -> the role to reach it); a failure is recorded on
    its step, the others go on."""
    rules = {r.name: r for r in policy.retain}
    for step in steps:
        ec2 = conn.client("ec2", step.region, roles.get(step.account))
        try:
            _call(ec2, step, rules[step.rule])
            step.status = "done"
        except (ClientError, BotoCoreError) as exc:
            step.status = "failed"
            step.error = f"{error_code(exc)}: {exc}"
    return steps


def restore_image(
    conn: Connector, target: Target, bucket: str, key: str, name: str | None = None
) -> str:
    """CreateRestoreImageTask: the new image's id."""
    ec2 = conn.client("ec2", target.region, target.role_arn)
    kw: dict[str, Any] = {"Bucket": bucket, "ObjectKey": key}
    if name:
        kw["Name"] = name
    try:
        return str(ec2.create_restore_image_task(**kw)["ImageId"])
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "CreateRestoreImageTask", target.region) from None
