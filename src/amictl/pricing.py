"""Snapshot storage prices (USD per GiB-month), overridable.

Standard snapshots are incremental, so an image's true cost is at most the sum of
its snapshots' sizes; amictl reports that upper bound and says so. Archived
snapshots are full-size at the archive rate (anchors.md).
"""

from __future__ import annotations

import json
import os
from typing import Any

DEFAULT = {"standard": 0.05, "archive": 0.0125}
REGIONAL: dict[str, dict[str, float]] = {
    "us-east-1": DEFAULT,
    "us-east-2": DEFAULT,
    "us-west-2": DEFAULT,
    "us-west-1": {"standard": 0.06, "archive": 0.015},
    "eu-west-1": {"standard": 0.05, "archive": 0.0125},
    "eu-central-1": {"standard": 0.054, "archive": 0.0135},
    "ap-southeast-2": {"standard": 0.055, "archive": 0.01375},
    "ap-northeast-1": {"standard": 0.05, "archive": 0.0125},
    "sa-east-1": {"standard": 0.068, "archive": 0.017},
}


def _overrides() -> dict[str, Any]:
    raw = os.environ.get("AMICTL_PRICES")
    if not raw:
        return {}
    try:
        return dict(json.loads(raw))
    except ValueError:
        return {}


def price(region: str, tier: str = "standard", overrides: dict[str, Any] | None = None) -> float:
    """USD per GiB-month for a snapshot tier in a region."""
    over = {**_overrides(), **(overrides or {})}
    if region in over and tier in over[region]:
        return float(over[region][tier])
    if "*" in over and tier in over["*"]:
        return float(over["*"][tier])
    return float(REGIONAL.get(region, DEFAULT).get(tier, DEFAULT["standard"]))


def monthly_cost(
    size_gib: float, region: str, tier: str = "standard", overrides: dict[str, Any] | None = None
) -> float:
    return round(size_gib * price(region, tier, overrides), 4)
