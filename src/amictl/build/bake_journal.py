"""The bake journal: one row per bake and per instance it launched (tables in state.store)."""

from __future__ import annotations

import json
import os
from typing import Any

import sqlalchemy as sa

from ..model import now_iso
from ..procs import hostname, pid_alive
from ..state.store import Store, bake_instances, bakes


def start(store: Store, record: dict[str, Any]) -> None:
    with store.engine.begin() as c:
        c.execute(
            bakes.insert().values(
                bake_id=record["bake_id"],
                started_at=record["started_at"],
                status="running",
                account=record["account"],
                region=record["region"],
                family=record["family"],
                version=record.get("version"),
                pid=os.getpid(),
                host=hostname(),
                record=json.dumps(record, default=str),
            )
        )


def update(store: Store, record: dict[str, Any], status: str | None = None) -> None:
    values: dict[str, Any] = {
        "record": json.dumps(record, default=str),
        "version": record.get("version"),
        "image_id": record.get("image_id"),
    }
    if status:
        values["status"] = status
        if status != "running":
            values["ended_at"] = now_iso()
    with store.engine.begin() as c:
        c.execute(bakes.update().where(bakes.c.bake_id == record["bake_id"]).values(**values))


def set_status(store: Store, bake_id: str, status: str) -> None:
    with store.engine.begin() as c:
        c.execute(
            bakes.update()
            .where(bakes.c.bake_id == bake_id)
            .values(status=status, ended_at=now_iso())
        )


def add_instance(
    store: Store, bake_id: str, instance_id: str, role: str, account: str, region: str
) -> None:
    with store.engine.begin() as c:
        c.execute(
            bake_instances.insert().values(
                bake_id=bake_id,
                instance_id=instance_id,
                role=role,
                account=account,
                region=region,
                launched_at=now_iso(),
            )
        )


def instance_terminated(store: Store, instance_id: str) -> None:
    with store.engine.begin() as c:
        c.execute(
            bake_instances.update()
            .where(bake_instances.c.instance_id == instance_id)
            .values(terminated_at=now_iso())
        )


def get(store: Store, bake_id: str) -> dict[str, Any] | None:
    with store.engine.connect() as c:
        row = c.execute(sa.select(bakes).where(bakes.c.bake_id == bake_id)).first()
    return dict(row._mapping) if row else None


def instance_ids(store: Store, bake_id: str) -> set[str]:
    """The instances journaled as launched by a bake."""
    with store.engine.connect() as c:
        return {
            r.instance_id
            for r in c.execute(
                sa.select(bake_instances.c.instance_id).where(bake_instances.c.bake_id == bake_id)
            )
        }


def is_live(row: dict[str, Any]) -> bool:
    """A bake still running in a process that is alive (on this host; another host's
    bake counts as alive: its process cannot be checked from here)."""
    if row["status"] != "running":
        return False
    if row["host"] != hostname():
        return True
    return bool(pid_alive(int(row["pid"])))


def unfinished(store: Store) -> list[dict[str, Any]]:
    """Bakes journaled ``running`` whose process is gone (killed), with their instances."""
    with store.engine.connect() as c:
        rows = [
            dict(r._mapping) for r in c.execute(sa.select(bakes).where(bakes.c.status == "running"))
        ]
        out = []
        for r in rows:
            if is_live(r):
                continue
            r["instances"] = [
                dict(i._mapping)
                for i in c.execute(
                    sa.select(bake_instances).where(bake_instances.c.bake_id == r["bake_id"])
                )
            ]
            out.append(r)
    return out


def history(store: Store, family: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    q = sa.select(bakes).order_by(bakes.c.started_at.desc()).limit(limit)
    if family:
        q = q.where(bakes.c.family == family)
    with store.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q)]
