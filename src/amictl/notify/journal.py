"""Every notice journaled (who, what, when, channel, result), and the images retired
without one (apply's journal: a deregister done; no delivered notice before it)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from ..model import iso
from ..state.store import Store
from .tables import meta, notices


def _ready(store: Store) -> None:
    meta.create_all(store.engine)


def journal_notice(store: Store, checksum: str, digest: Any, now: dt.datetime) -> None:
    _ready(store)
    rows = [
        {
            "at": iso(now),
            "plan_checksum": checksum,
            "image_id": i.image.image_id,
            "account": i.image.account,
            "region": i.image.region,
            "owner": digest.owner,
            "channel": digest.channel or None,
            "target": digest.target or None,
            "what": "; ".join(f"{s} {w}" for s, w in i.stages),
            "result": digest.result,
            "error": digest.error or None,
        }
        for i in digest.items
    ]
    with store.engine.begin() as c:
        c.execute(notices.insert(), rows)


def notice_rows(store: Store, image_id: str | None = None) -> list[dict[str, Any]]:
    _ready(store)
    q = sa.select(notices).order_by(notices.c.seq)
    if image_id:
        q = q.where(notices.c.image_id == image_id)
    with store.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q)]


def retired_without_notice(store: Store) -> list[dict[str, Any]]:
    """Images apply deregistered with no delivered notice journaled before."""
    delivered: dict[str, str] = {}
    for r in notice_rows(store):
        if r["result"] == "delivered":
            delivered.setdefault(r["image_id"], r["at"])
    out = []
    for r in store.journal_rows(limit=100000):
        if r["type"] == "deregister" and r["status"] == "done":
            told = delivered.get(r["resource"])
            if told is None or told > r["at"]:
                out.append(r)
    return out
