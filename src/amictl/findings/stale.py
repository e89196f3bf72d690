"""``stale --findings SEVERITY``: channel images with Amazon Inspector findings (issue 28)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..channels.names import channel_of_parameter
from ..model import Inventory
from . import summary


def channel_rows(
    inv: Inventory, severity: str, families: list[str] | None, now: dt.datetime
) -> list[dict[str, Any]]:
    """``stale --findings SEVERITY``: one row per channel whose image has a finding of at
    least ``severity`` (kind ``findings``) or was never scanned (kind ``not-scanned``)."""
    out = []
    by_id = inv.by_id
    for ref in inv.references:
        if ref.kind != "channel":
            continue
        chan = channel_of_parameter(ref.id)
        img = by_id.get(ref.image_id)
        if chan is None or (families and chan[0] not in families):
            continue
        s = summary(img.scan_results if img else None, now)
        if s.scanned and not s.at_least(severity):
            continue
        out.append(
            {
                "family": chan[0],
                "kind": "findings" if s.scanned else "not-scanned",
                "image_id": ref.image_id,
                "detail": f"channel {chan[1]} in {ref.region}: {s.text}",
            }
        )
    out.sort(key=lambda r: (r["family"], r["detail"]))
    return out
