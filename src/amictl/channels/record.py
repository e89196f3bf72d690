"""Promotions and rollbacks, recorded in the state store (a table of this package)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from ..inventory.collectors import CHANNEL_PREFIX
from ..inventory.releases import describe_rollback, history_references
from ..model import Inventory, Reference, iso
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


def recorded_history_refs(
    store: Store, account: str | None = None, region: str | None = None
) -> list[Reference]:
    """The rollback targets of each channel as amictl's own record of its promotions and
    rollbacks says (``channel-history`` references, as the SSM history gives them): SSM
    keeps only a parameter's last 100 versions, so a channel rewritten often would lose
    its previous release there; the record keeps it."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in history(store):
        if (account and r["account"] != account) or (region and r["region"] != region):
            continue
        key = (r["account"], r["region"], r["family"], r["channel"])
        desc = (
            describe_rollback(r["family"], r["channel"], r.get("version") or "")
            if r["action"] == "rollback"
            else ""
        )
        groups.setdefault(key, []).append({"value": r["image_id"], "description": desc})
    out: list[Reference] = []
    for (acct, reg, family, channel), entries in sorted(groups.items()):
        name = f"{CHANNEL_PREFIX}{family}/{channel}"
        out.extend(history_references(name, family, channel, entries, acct, reg, "amictl's record"))
    return out


def add_recorded_history(inv: Inventory, store: Store) -> int:
    """Add the recorded rollback targets the inventory's own (SSM) history lacks."""
    scope = {(a, r) for a in inv.accounts for r in inv.regions}
    recorded = [ref for ref in recorded_history_refs(store) if (ref.account, ref.region) in scope]
    if not recorded:  # (most stores: the set below walks every reference of the inventory)
        return 0
    have = {(r.kind, r.id, r.image_id) for r in inv.references}
    new = [ref for ref in recorded if (ref.kind, ref.id, ref.image_id) not in have]
    if new:
        inv.references.extend(new)
        inv.facts_changed()
    return len(new)
