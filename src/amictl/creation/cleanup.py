"""``amictl bake --cleanup``: what killed bakes left behind.

Instances of bakes journaled ``running`` whose process is gone, instances tagged
``amictl:bake-id`` of a bake that is not alive here (or, unknown to this journal, past
its ``amictl:bake-deadline``), and the untested image such a bake made (tagged
``abandoned``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import botocore.exceptions

from ..aws.session import Connector, Target, aws_error
from ..distribute.common import Found, describe_image
from ..state.store import Store
from ..tagnames import ABANDONED, BAKE_STATUS_TAG, BUILDING
from . import bake_journal
from .bake import BAKE_DEADLINE_TAG, BAKE_ID_TAG, image_tags


def cleanup(
    conn: Connector, targets: list[Target], store: Store, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Terminate what killed bakes left: instances of bakes journaled ``running`` whose
    process is gone, and instances tagged ``amictl:bake-id`` of a bake that is not
    alive here (journaled as ended or killed, or unknown here and past its deadline)."""
    now = now or dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    dead = {b["bake_id"]: b for b in bake_journal.unfinished(store)}
    wanted: dict[tuple[str, str, str | None], dict[str, str]] = {}
    for b in dead.values():
        for i in b["instances"]:
            if not i["terminated_at"]:
                wanted.setdefault((i["account"], i["region"], None), {})[i["instance_id"]] = b[
                    "bake_id"
                ]
    for t in targets:
        ec2 = conn.client("ec2", t.region, t.role_arn)
        try:
            pages = ec2.get_paginator("describe_instances").paginate(
                Filters=[
                    {"Name": "tag-key", "Values": [BAKE_ID_TAG]},
                    {
                        "Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"],
                    },
                ]
            )
            found = [
                i for p in pages for r in p.get("Reservations", []) for i in r.get("Instances", [])
            ]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise aws_error(exc, "DescribeInstances", t.region) from None
        live_ids = {i["InstanceId"] for i in found}
        victims: dict[str, tuple[str, str]] = {}
        for iid, bid in wanted.get((t.account, t.region, None), {}).items():
            if iid in live_ids:
                victims[iid] = (bid, "journaled by a bake whose process is gone")
        for inst in found:
            tags = image_tags(inst)
            bid = tags.get(BAKE_ID_TAG, "")
            if inst["InstanceId"] in victims:
                continue
            row = bake_journal.get(store, bid)
            if row is not None and bake_journal.is_live(row):
                continue
            if row is not None:
                # The bake id is no secret (its images carry it): an instance is this bake's
                # only if the journal recorded it, or it was launched while the bake ran
                # (killed between RunInstances and the journal write).
                if inst["InstanceId"] not in bake_journal.instance_ids(
                    store, bid
                ) and not _launched_during(inst, row, now):
                    continue
                victims[inst["InstanceId"]] = (
                    bid,
                    f"tagged by bake {bid}, which is {row['status']} and not running",
                )
                continue
            deadline = tags.get(BAKE_DEADLINE_TAG)
            try:
                past = (
                    deadline is not None
                    and dt.datetime.fromisoformat(deadline.replace("Z", "+00:00")) < now
                )
            except ValueError:
                past = True
            if past:
                victims[inst["InstanceId"]] = (
                    bid,
                    f"tagged by bake {bid} (not in this journal), past its deadline {deadline}",
                )
        if victims:
            try:
                ec2.terminate_instances(InstanceIds=sorted(victims))
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                raise aws_error(exc, "TerminateInstances", t.region) from None
        for iid, (bid, why) in sorted(victims.items()):
            bake_journal.instance_terminated(store, iid)
            rows.append(
                {
                    "bake_id": bid,
                    "instance_id": iid,
                    "image_id": None,
                    "account": t.account,
                    "region": t.region,
                    "action": "terminated",
                    "reason": why,
                }
            )
    by_account = {t.account: t for t in targets}
    for bid, b in dead.items():
        rows.extend(_abandon_image(conn, by_account, b))
        bake_journal.set_status(store, bid, "cleaned")
    return rows


def _parse(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _launched_during(inst: dict[str, Any], row: dict[str, Any], now: dt.datetime) -> bool:
    """Whether the instance was launched between the bake's start and its end (to the
    second: the journal's times are whole seconds)."""
    launched = _parse(inst.get("LaunchTime"))
    started = _parse(row.get("started_at"))
    ended = _parse(row.get("ended_at")) if row.get("ended_at") else now
    if launched is None or started is None or ended is None:
        return False
    slack = dt.timedelta(seconds=1)
    return started - slack <= launched <= ended + slack


def _abandon_image(
    conn: Connector, by_account: dict[str, Target], bake_row: dict[str, Any]
) -> list[dict[str, Any]]:
    """The image a killed bake made and never finished testing: tagged ``abandoned``."""
    image_id = bake_row.get("image_id")
    home = by_account.get(bake_row["account"])
    if not image_id or home is None:
        return []
    t = Target(bake_row["account"], bake_row["region"], home.role_arn)
    ec2 = conn.client("ec2", t.region, t.role_arn)
    data = describe_image(ec2, image_id, t.region)
    if data is None or image_tags(data).get(BAKE_STATUS_TAG) != BUILDING:
        return []
    snaps = Found(t, data).snapshot_ids
    try:
        ec2.create_tags(
            Resources=[image_id, *snaps], Tags=[{"Key": BAKE_STATUS_TAG, "Value": ABANDONED}]
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise aws_error(exc, "CreateTags", t.region) from None
    return [
        {
            "bake_id": bake_row["bake_id"],
            "instance_id": None,
            "image_id": image_id,
            "account": t.account,
            "region": t.region,
            "action": "tagged abandoned",
            "reason": "made by a bake whose process is gone, before its tests ended",
        }
    ]
