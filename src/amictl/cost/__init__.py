"""Snapshot storage cost: per snapshot, image and group, over time (``amictl cost``).

A library: it never prints and never exits. Prices come from :mod:`amictl.pricing`.
"""

from __future__ import annotations

from .history import history
from .model import (
    DEFAULT_CHANGE_RATE,
    GROUP_BY,
    ORPHANED,
    SnapshotCost,
    image_costs,
    in_use,
    report,
    snapshot_costs,
)

# IAM actions `amictl cost` needs beyond the inventory's collectors (none: it reads the
# inventory; `--since` reads only the state store).
PERMISSIONS: frozenset[str] = frozenset()

__all__ = [
    "DEFAULT_CHANGE_RATE",
    "GROUP_BY",
    "ORPHANED",
    "PERMISSIONS",
    "SnapshotCost",
    "history",
    "image_costs",
    "in_use",
    "report",
    "snapshot_costs",
]
