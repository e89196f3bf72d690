"""Cost over time, from the inventories saved in the state store (``cost --since 90d``).

Every ``amictl inventory`` (and every command that scans) saves its inventory in the
store's ``inventory_runs`` table. Each saved run is costed with today's price table, so a
change over time is a change in what was stored, never in prices.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..pricing import Overrides
from ..state.store import Store
from .model import DEFAULT_CHANGE_RATE, report


def history(
    store: Store,
    since: dt.datetime,
    overrides: Overrides | None = None,
    change_rate: float = DEFAULT_CHANGE_RATE,
) -> list[dict[str, Any]]:
    """One point per saved inventory: totals, the full-size figure per family, and the
    accounts and regions it covered (its scope)."""
    points = []
    for run_id, inv in store.inventories_since(since):
        rep = report(inv, "family", overrides, change_rate)
        t = rep["totals"]
        points.append(
            {
                "run_id": run_id,
                "scanned_at": rep["inventory"]["scanned_at"],
                "complete": inv.complete,
                "images": t["images"],
                "snapshots": t["snapshots"],
                "standard_gib": t["standard_gib"],
                "archive_gib": t["archive_gib"],
                "full_size_usd": t["full_size_usd"],
                "estimate_usd": t["estimate_usd"],
                "orphaned_usd": rep["orphaned"]["full_size_usd"],
                "by_family": {g["key"]: g["full_size_usd"] for g in rep["groups"]},
                # what the inventory covered: a total over fewer regions is not a drop
                "accounts": sorted(inv.accounts),
                "regions": sorted(inv.regions),
            }
        )
    return points
