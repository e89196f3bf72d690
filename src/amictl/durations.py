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
        raise ValueError(
            f"{shown} is not a duration amictl reads: write a whole number and a unit, "
            "h (hours), d (days) or w (weeks), e.g. 24h, 30d, 2w"
        )
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
    """The policy language's form, exact for what it reads: ``30d``, ``36h``."""
    seconds = int(td.total_seconds())
    if seconds and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "version")`` -> "1 version"; ``plural(3, "version")`` -> "3 versions"."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def human_duration(td: dt.timedelta) -> str:
    """A duration as a person reads it: "45 s", "5 min", "3 h 20 min", "2 d 4 h", "26 d".

    Two units at most, the larger first; the smaller is left out when it is zero or
    when the larger is 10 or more (days) - the precision a person needs. Negative
    durations read "-5 min".
    """
    total = int(round(td.total_seconds()))
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        parts = [f"{days} d"] + ([f"{hours} h"] if hours and days < 10 else [])
    elif hours:
        parts = [f"{hours} h"] + ([f"{minutes} min"] if minutes else [])
    elif minutes:
        parts = [f"{minutes} min"] + ([f"{seconds} s"] if seconds and minutes < 10 else [])
    else:
        parts = [f"{seconds} s"]
    return sign + " ".join(parts)
