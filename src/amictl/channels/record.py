"""Promotions and rollbacks, recorded in the state store (a table of this package)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from ..model import iso
from ..state.store import Store

meta = sa.MetaData()

promotions = sa.Table(
    "channel_promotions",
    meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # promote | rollback
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("family", sa.String(128), nullable=False, index=True),
    sa.Column("channel", sa.String(128), nullable=False),
    sa.Column("version", sa.String(128)),
    sa.Column("image_id", sa.String(32), nullable=False),
    sa.Column("previous_image_id", sa.String(32)),
    sa.Column("parameter_version", sa.Integer),
    sa.Column("caller", sa.String(256)),
)


def _ready(store: Store) -> None:
    meta.create_all(store.engine)


def record(store: Store, rows: list[dict[str, Any]], action: str, caller: str | None) -> None:
    """One row per region the channel was changed in."""
    _ready(store)
    at = iso(dt.datetime.now(dt.UTC))
    with store.engine.begin() as c:
        for r in rows:
            if r.get("status") == "unchanged":
                continue
            c.execute(
                promotions.insert().values(
                    at=at,
                    action=action,
                    account=r["account"],
                    region=r["region"],
                    family=r["family"],
                    channel=r["channel"],
                    version=r.get("version"),
                    image_id=r["image_id"],
                    previous_image_id=r.get("previous_image_id"),
                    parameter_version=r.get("parameter_version"),
                    caller=caller,
                )
            )


def history(store: Store, family: str | None = None) -> list[dict[str, Any]]:
    """Recorded promotions and rollbacks, oldest first."""
    _ready(store)
    q = sa.select(promotions).order_by(promotions.c.seq)
    if family:
        q = q.where(promotions.c.family == family)
    with store.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q)]
