"""Durations as the policy language writes them: ``Nd``, ``Nh``, ``Nw``."""

from __future__ import annotations

import datetime as dt
import re

DURATION_RE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$", re.ASCII)
UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}
MAX_DAYS = 36525
"""The longest duration accepted: 100 years (36525d); longer ones overflow date arithmetic."""
MAX_DURATION = dt.timedelta(days=MAX_DAYS)


def parse_duration(text: str) -> dt.timedelta:
    """``30d`` -> timedelta(days=30); anything else, or more than 100 years, -> ValueError."""
    m = DURATION_RE.match(str(text))
    shown = repr(text) if len(str(text)) <= 40 else repr(str(text)[:37] + "...")
    if not m:
        raise ValueError(f"{shown} is not a duration (expected Nd, Nh or Nw, e.g. 30d)")
    digits, unit = m.group(1).lstrip("0") or "0", m.group(2)
    # compare in whole hours before building a timedelta, which overflows past ~2.7M years
    limit_hours = MAX_DAYS * 24
    unit_hours = int(UNITS[unit].total_seconds()) // 3600
    if len(digits) > len(str(limit_hours)) or int(digits) * unit_hours > limit_hours:
        raise ValueError(
            f"{shown} is longer than the limit of 100 years ({MAX_DAYS}d); write a shorter duration"
        )
    return int(digits) * UNITS[unit]


def format_duration(td: dt.timedelta) -> str:
    days = td.total_seconds() / 86400
    if days >= 1:
        return f"{int(days)}d"
    return f"{int(td.total_seconds() // 3600)}h"
