"""What every area module of the sandbox's patches shares: the registry of patches
(``@patch``), the moto helpers (errors, times, snapshots, pagination) and the state the
control API sets (Run Command outcomes, the seeding flag, the fast-XML switch)."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from moto.core.utils import utcnow
from moto.ec2.exceptions import (
    EC2ClientError,
)
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.utils import random_snapshot_id

PATCHES: list[tuple[str, str, Callable[[], None]]] = []

_applied_lock = threading.Lock()  # apply_all runs the patches once


def patch(aws_behaviour: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def deco(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES.append((fn.__name__, aws_behaviour, fn))
        return fn

    return deco


FAST_XML = {"on": True}

# Outcomes of SSM Run Command, settable through the control API (for bake/test gates).
RUN_COMMAND_OUTCOMES: dict[str, dict[str, Any]] = {}

SEEDING = threading.local()

# ---------------------------------------------------------------- helpers


def iso_ms(t: dt.datetime) -> str:
    """AWS's string timestamps on images: 2021-10-15T19:55:00.000Z."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    s = str(value).replace("Z", "+00:00")
    t = dt.datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def now() -> dt.datetime:
    return utcnow().replace(tzinfo=dt.UTC)


def as_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    return str(v).lower() == "true"


def err(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


class SeedVolume:
    """Stands for the (long gone) volume a seeded or copied snapshot was taken from."""

    def __init__(self, size: int, volume_id: str = "vol-ffffffff", encrypted: bool = False):
        self.id = volume_id
        self.size = size
        self.encrypted = encrypted


def new_snapshot(
    backend: Any,
    size: int,
    description: str,
    *,
    encrypted: bool = False,
    kms_key_id: str | None = None,
    volume_id: str = "vol-ffffffff",
    start_time: dt.datetime | None = None,
    owner_id: str | None = None,
) -> Snapshot:
    snap = Snapshot(
        backend,
        random_snapshot_id(),
        SeedVolume(size, volume_id, encrypted),
        description,
        encrypted=encrypted,
        kms_key_id=kms_key_id,
        owner_id=owner_id,
    )
    if start_time is not None:
        snap.start_time = start_time.replace(tzinfo=None)
    backend.snapshots[snap.id] = snap
    return snap


def image_snapshot_ids(ami: Any) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in ami.bdm if m.get("Ebs", {}).get("SnapshotId")]


def snapshot_users(backend: Any, snapshot_id: str, exclude: str | None = None) -> list[str]:
    """Registered images (any state) whose block device mappings use the snapshot."""
    return [
        a.id
        for a in backend.amis.values()
        if a.id != exclude and snapshot_id in image_snapshot_ids(a)
    ]


def _paginate(
    items: list[Any],
    max_results: Any,
    token: Any,
    key: Callable[[Any], str],
    lo: int = 5,
    hi: int = 1000,
) -> tuple[list[Any], str | None]:
    """MaxResults + NextToken as AWS does: stable order, opaque token."""
    if max_results in (None, ""):
        if token:
            raise err("InvalidParameterValue", "NextToken given without MaxResults")
        return items, None
    n = int(max_results)
    if n < lo or n > hi:
        raise err(
            "InvalidParameterValue",
            f"Value ( {n} ) for parameter maxResults is invalid. Expecting a value between {lo} and {hi}.",
        )
    items = sorted(items, key=key)
    start = 0
    if token:
        try:
            after = base64.urlsafe_b64decode(str(token).encode()).decode()
        except Exception as exc:  # noqa: BLE001
            raise err("InvalidNextToken", "The specified token is invalid") from exc
        keys = [key(i) for i in items]
        import bisect

        start = bisect.bisect_right(keys, after)
    page = items[start : start + n]
    nxt = None
    if start + n < len(items):
        nxt = base64.urlsafe_b64encode(key(page[-1]).encode()).decode()
    return page, nxt


# ------------------------------------------------------ the image model
