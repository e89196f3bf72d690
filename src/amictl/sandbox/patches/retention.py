"""Retention AWS enforces, which moto 5.2.5 lacks (issue 29):

* EBS snapshot locks: LockSnapshot (governance or compliance mode; a compliance lock may
  start with a cooling-off period of 1-72 hours), UnlockSnapshot, DescribeLockedSnapshots
  (filter ``lock-state``). A lock's state is computed when read: ``compliance-cooloff``
  while the cooling-off period runs, ``expired`` once its expiry passed. A snapshot whose
  lock has not expired cannot be deleted (DeleteSnapshot, and DeregisterImage's
  DeleteAssociatedSnapshots, refuse it); a compliance lock past its cooling-off cannot be
  unlocked, shortened or turned into governance mode.
* Stored images: CreateStoreImageTask writes the image's description (name, architecture,
  block devices with their sizes) as ``<ami-id>.bin`` to a bucket of the sandbox's S3,
  DescribeStoreImageTasks reports the task (``InProgress`` for ``STORE_SECONDS``, then
  ``Completed``), CreateRestoreImageTask registers a new image from such an object, with
  new snapshots of the same sizes (a launchable image).

Pages: EC2 API reference LockSnapshot / DescribeLockedSnapshots / CreateStoreImageTask /
CreateRestoreImageTask; the EBS user guide "Lock Amazon EBS snapshots" and the AMI guide
"Store and restore an AMI using S3". Asserted in tests/test_retention.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidAMIIdError, InvalidSnapshotIdError
from moto.ec2.models.amis import Ami
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.utils import random_ami_id

from .helpers import err, new_snapshot, now, parse_time, patch

# snapshot id -> its lock (snapshot ids are unique across accounts and regions)
LOCKS: dict[str, dict[str, Any]] = {}
# (account, region) -> image id -> its newest store task
STORE_TASKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
STORE_SECONDS = {"value": 0.0}  # how long a store task stays InProgress
_lock = threading.Lock()


def control(data: dict[str, Any]) -> dict[str, Any]:
    """The control API's ``/_amictl/retention``: ``store_seconds``."""
    if "store_seconds" in data:
        STORE_SECONDS["value"] = float(data["store_seconds"])
    return {"store_seconds": STORE_SECONDS["value"]}


def lock_state(lock: dict[str, Any], at: dt.datetime) -> str:
    if lock["LockExpiresOn"] <= at:
        return "expired"
    if (
        lock["LockMode"] == "compliance"
        and lock.get("CoolOffPeriodExpiresOn")
        and (lock["CoolOffPeriodExpiresOn"] > at)
    ):
        return "compliance-cooloff"
    return str(lock["LockMode"])


def is_locked(snapshot_id: str) -> bool:
    """A lock that has not expired: the snapshot cannot be deleted."""
    lock = LOCKS.get(snapshot_id)
    return lock is not None and lock_state(lock, now()) != "expired"


def _locked_error(snapshot_id: str) -> Exception:
    lock = LOCKS[snapshot_id]
    return err(
        "SnapshotLocked",
        f"The snapshot {snapshot_id} is locked in {lock['LockMode']} mode until "
        f"{lock['LockExpiresOn'].isoformat()} and cannot be deleted.",
    )


def _info(sid: str, lock: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    out = {k: v for k, v in lock.items() if k not in ("LockMode", "account", "region")}
    out["SnapshotId"] = sid
    out["LockState"] = lock_state(lock, at)
    return {k: v for k, v in out.items() if v is not None}


def _new_lock(self: Any, sid: str, old: dict[str, Any] | None) -> dict[str, Any]:
    at = now()
    mode = self._get_param("LockMode")
    if mode not in ("governance", "compliance"):
        raise err("InvalidParameterValue", f"Value ({mode}) for parameter LockMode is invalid.")
    days = self._get_param("LockDuration")
    until = self._get_param("ExpirationDate")
    if (days is None) == (until is None):
        raise err(
            "InvalidParameterCombination", "Specify exactly one of LockDuration or ExpirationDate."
        )
    if days is not None:
        if not 1 <= int(days) <= 36500:
            raise err("InvalidParameterValue", "LockDuration must be between 1 and 36500 days.")
        expires = at + dt.timedelta(days=int(days))
    else:
        expires = parse_time(until)
        if expires <= at + dt.timedelta(days=1) - dt.timedelta(minutes=1):
            raise err("InvalidParameterValue", "ExpirationDate must be at least 1 day away.")
    cool = self._get_param("CoolOffPeriod")
    if cool is not None:
        if mode != "compliance":
            raise err(
                "InvalidParameterCombination", "CoolOffPeriod applies to compliance mode only."
            )
        if not 1 <= int(cool) <= 72:
            raise err("InvalidParameterValue", "CoolOffPeriod must be between 1 and 72 hours.")
    if old is not None:
        state = lock_state(old, at)
        if state == "compliance":
            if mode != "compliance":
                raise err(
                    "SnapshotLocked",
                    f"The snapshot {sid} is locked in compliance mode: its mode cannot change.",
                )
            if expires < old["LockExpiresOn"]:
                raise err(
                    "SnapshotLocked",
                    f"The snapshot {sid} is locked in compliance mode: its lock can only be extended.",
                )
            cool = None
    lock = {
        "OwnerId": self.ec2_backend.account_id,
        "LockMode": mode,
        "LockDuration": int(days) if days is not None else None,
        "CoolOffPeriod": int(cool) if cool is not None else None,
        "CoolOffPeriodExpiresOn": at + dt.timedelta(hours=int(cool)) if cool is not None else None,
        "LockCreatedOn": old["LockCreatedOn"] if old else at,
        "LockDurationStartTime": at,
        "LockExpiresOn": expires,
    }
    return lock


@patch(
    "Snapshot locks: LockSnapshot (governance/compliance, cooling-off 1-72h, duration or "
    "expiry date), UnlockSnapshot, DescribeLockedSnapshots; a locked snapshot cannot be "
    "deleted; a compliance lock past cooling-off cannot be removed, shortened or weakened"
)
def snapshot_locks() -> None:
    def lock_snapshot(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        sid = self._get_param("SnapshotId")
        snap = b.snapshots.get(sid)
        if snap is None:
            raise InvalidSnapshotIdError()
        if snap.owner_id != b.account_id:
            raise err("AuthFailure", f"Only the owner of {sid} can lock it")
        with _lock:
            lock = _new_lock(self, sid, LOCKS.get(sid))
            LOCKS[sid] = lock
            return ActionResult(_info(sid, lock, now()))

    def unlock_snapshot(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        sid = self._get_param("SnapshotId")
        if sid not in b.snapshots:
            raise InvalidSnapshotIdError()
        with _lock:
            lock = LOCKS.get(sid)
            if lock is not None and lock_state(lock, now()) == "compliance":
                raise err(
                    "SnapshotLocked",
                    f"The snapshot {sid} is locked in compliance mode until "
                    f"{lock['LockExpiresOn'].isoformat()}: it cannot be unlocked.",
                )
            LOCKS.pop(sid, None)
        return ActionResult({"SnapshotId": sid})

    def describe_locked_snapshots(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ids = self._get_param("SnapshotIds", []) or []
        states: set[str] = set()
        for f in self._get_param("Filters", []) or []:
            if f.get("Name") == "lock-state":
                states |= set(f.get("Values") or [])
        at = now()
        rows = [
            _info(sid, lock, at)
            for sid, lock in sorted(LOCKS.items())
            if sid in b.snapshots and (not ids or sid in ids)
        ]
        if states:
            rows = [r for r in rows if r["LockState"] in states]
        return ActionResult({"Snapshots": rows})

    orig_del = EBSBackend.delete_snapshot

    def delete_snapshot(self: Any, snapshot_id: str) -> Any:
        if snapshot_id in self.snapshots and is_locked(snapshot_id):
            raise _locked_error(snapshot_id)
        return orig_del(self, snapshot_id)

    ElasticBlockStore.lock_snapshot = lock_snapshot  # type: ignore[attr-defined]
    ElasticBlockStore.unlock_snapshot = unlock_snapshot  # type: ignore[attr-defined]
    ElasticBlockStore.describe_locked_snapshots = describe_locked_snapshots  # type: ignore[attr-defined]
    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]


def _bucket(account: str, name: str) -> Any:
    from moto.s3.models import s3_backends

    bucket = s3_backends[account]["aws"].buckets.get(name)
    if bucket is None:
        raise err("InvalidParameterValue", f"The bucket {name} does not exist or is not yours.")
    return bucket


def _task_row(task: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    done = (at - task["TaskStartTime"]).total_seconds() >= STORE_SECONDS["value"]
    return {
        **task,
        "StoreTaskState": "Completed" if done else "InProgress",
        "ProgressPercentage": 100 if done else 50,
    }


@patch(
    "Stored images: CreateStoreImageTask writes <ami-id>.bin to the sandbox's S3, "
    "DescribeStoreImageTasks (InProgress, then Completed), CreateRestoreImageTask registers "
    "a launchable image with new snapshots of the same sizes"
)
def store_image_tasks() -> None:
    def create_store(self: Any) -> ActionResult:
        self.error_on_dryrun()
        from moto.s3.models import s3_backends

        b = self.ec2_backend
        image_id = self._get_param("ImageId")
        ami = b.amis.get(image_id)
        if ami is None:
            raise InvalidAMIIdError(image_id)
        if ami.owner_id != b.account_id:
            raise err("AuthFailure", f"Only the owner of {image_id} can store it")
        name = self._get_param("Bucket") or ""
        _bucket(b.account_id, name)
        key = f"{image_id}.bin"
        body = {
            "ImageId": image_id,
            "Name": ami.name,
            "Description": ami.description,
            "Architecture": ami.architecture,
            "RootDeviceName": ami.root_device_name,
            "Devices": [
                {"DeviceName": m["DeviceName"], "VolumeSize": m["Ebs"].get("VolumeSize") or 8}
                for m in ami.bdm
                if m.get("Ebs")
            ],
        }
        s3_backends[b.account_id]["aws"].put_object(name, key, json.dumps(body).encode())
        task = {
            "AmiId": image_id,
            "TaskStartTime": now(),
            "Bucket": name,
            "S3objectKey": key,
        }
        with _lock:
            STORE_TASKS.setdefault((b.account_id, b.region_name), {})[image_id] = task
        return ActionResult({"ObjectKey": key})

    def describe_store(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ids = self._get_param("ImageIds", []) or []
        at = now()
        tasks = STORE_TASKS.get((b.account_id, b.region_name), {})
        rows = [_task_row(t, at) for i, t in sorted(tasks.items()) if not ids or i in ids]
        return ActionResult({"StoreImageTaskResults": rows})

    def create_restore(self: Any) -> ActionResult:
        self.error_on_dryrun()
        from moto.s3.models import s3_backends

        b = self.ec2_backend
        bucket = self._get_param("Bucket") or ""
        key = self._get_param("ObjectKey") or ""
        _bucket(b.account_id, bucket)
        try:
            obj = s3_backends[b.account_id]["aws"].get_object(bucket, key)
            body = json.loads(obj.value)  # type: ignore[union-attr]
        except Exception:
            raise err(
                "InvalidParameterValue", f"s3://{bucket}/{key} is not a stored AMI."
            ) from None
        name = self._get_param("Name") or body["Name"]
        if any(a.name == name and a.owner_id == b.account_id for a in b.amis.values()):
            raise err("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI")
        ami_id = random_ami_id()
        bdm = []
        for d in body["Devices"]:
            snap = new_snapshot(
                b, int(d["VolumeSize"]), f"Created by CreateRestoreImageTask for {ami_id}"
            )
            bdm.append(
                {
                    "DeviceName": d["DeviceName"],
                    "Ebs": {
                        "SnapshotId": snap.id,
                        "VolumeSize": int(d["VolumeSize"]),
                        "DeleteOnTermination": True,
                        "VolumeType": "gp3",
                        "Encrypted": False,
                    },
                }
            )
        ami = Ami(  # type: ignore[call-arg]
            b,
            ami_id,
            name=name,
            description=body.get("Description"),
            architecture=body.get("Architecture") or "x86_64",
            virtualization_type="hvm",
            root_device_name=body.get("RootDeviceName") or "/dev/xvda",
            bdm=bdm,
        )
        b.amis[ami_id] = ami
        for spec in self._get_param("TagSpecifications", []) or []:
            if spec.get("ResourceType") == "image":
                ami.add_tags({t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])})
        return ActionResult({"ImageId": ami_id})

    AmisResponse.create_store_image_task = create_store  # type: ignore[attr-defined]
    AmisResponse.describe_store_image_tasks = describe_store  # type: ignore[attr-defined]
    AmisResponse.create_restore_image_task = create_restore  # type: ignore[attr-defined]
