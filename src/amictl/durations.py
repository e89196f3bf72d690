"""Durations as the policy language writes them: ``Nd``, ``Nh``, ``Nw``."""

from __future__ import annotations

import datetime as dt
import re

DURATION_RE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")
UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}


def parse_duration(text: str) -> dt.timedelta:
    m = DURATION_RE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration (expected Nd, Nh or Nw, e.g. 30d)")
    return int(m.group(1)) * UNITS[m.group(2)]


def format_duration(td: dt.timedelta) -> str:
    days = td.total_seconds() / 86400
    if days >= 1:
        return f"{int(days)}d"
    return f"{int(td.total_seconds() // 3600)}h"
