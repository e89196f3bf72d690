"""The bake journal: one row per bake and per instance it launched (tables in state.store)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
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


def made_image(store: Store, account: str, region: str, image_id: str) -> dict[str, Any] | None:
    """The journaled bake that made ``image_id`` in account/region (the image itself, or one
    of its ``copy_to`` copies), as ``{"bake_id", "status", "tested", "copy"}``; None when no
    bake in this store made it (an image tagged by hand, or baked with another store).

    ``tested`` is the journal's word that every test step passed on an instance of the new
    image, which a tag alone cannot prove: anyone who may tag an image can write one.
    """
    with store.engine.connect() as c:
        rows = c.execute(
            sa.select(bakes.c.bake_id, bakes.c.status, bakes.c.image_id, bakes.c.record)
            .where(bakes.c.account == account)
            .order_by(bakes.c.started_at.desc())
        ).all()
    for r in rows:
        rec = _record(r.record)
        if r.image_id == image_id and rec.get("region") == region:
            return {"bake_id": r.bake_id, "status": r.status, "tested": _tested(rec), "copy": False}
        for copy in rec.get("copies") or []:
            if copy.get("image_id") == image_id and copy.get("region") == region:
                return {
                    "bake_id": r.bake_id,
                    "status": r.status,
                    "tested": _tested(rec),
                    "copy": True,
                }
    return None


def lookup(store: Store) -> Callable[[str, str, str], dict[str, Any] | None]:
    """:func:`made_image` bound to ``store``: what promotion gates ask (``gates.BakeLookup``)."""

    def made(account: str, region: str, image_id: str) -> dict[str, Any] | None:
        return made_image(store, account, region, image_id)

    return made


def _record(text: str | None) -> dict[str, Any]:
    try:
        rec = json.loads(text or "{}")
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _tested(rec: dict[str, Any]) -> bool:
    """Every test step of the recipe ran and passed (the bake set ``tested`` then)."""
    steps = [s for s in rec.get("steps") or [] if s.get("phase") == "test"]
    return (
        bool(rec.get("tested")) and bool(steps) and all(s.get("status") == "Success" for s in steps)
    )
