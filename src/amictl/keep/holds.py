"""Holds: the one place that decides whether an image is held (planner and apply re-check)."""

from __future__ import annotations

import datetime as dt

from ..model import parse_time
from ..policy.model import Hold


def hold_reasons(
    tags: dict[str, str],
    protected: bool,
    protection: str,
    holds: tuple[Hold, ...],
    now: dt.datetime,
    warnings: list[str] | None = None,
    image_id: str = "",
) -> list[str]:
    """Every hold that keeps an image with these tags and deregistration protection.

    ``protected`` is the caller's reading of ``protection`` (the DeregistrationProtection
    value). A ``retain-until``-style date that does not parse keeps the image, and is
    reported in ``warnings`` when given.
    """
    out = []
    for h in holds:
        if h.deregistration_protection:
            if protected:
                out.append(f"held: deregistration protection is {protection}")
            continue
        if h.tag is None or h.tag not in tags:
            continue
        value = tags[h.tag]
        if h.until_value:
            try:
                until = parse_time(value)
                if until is None:
                    raise ValueError(value)
            except (ValueError, OverflowError):
                if warnings is not None:
                    warnings.append(f"{image_id}: tag {h.tag}={value!r} is not a date: kept")
                out.append(f"held: tag {h.tag}={value!r} is not a date (kept to be safe)")
                continue
            if until is not None and now < until:
                out.append(f"held: tag {h.tag} until {value}")
        elif value.lower() != "false":
            out.append(f"held: tag {h.tag}={value}")
    return out
