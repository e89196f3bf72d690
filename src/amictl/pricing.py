"""Snapshot storage prices (USD per GiB-month), overridable. One code path for every figure.

The table is package data (``amictl/data/prices.json``) with its source and date. It can be
overridden by a file (``--prices FILE`` on ``cost`` and ``report``) or by ``AMICTL_PRICES``
(JSON text, or the path of such a file); a policy's ``options.prices`` overrides every
region for the plan's savings. ``cost``, ``ls``, ``snapshots`` and the plan's savings all
go through :func:`price` / :func:`monthly_cost`.

Standard snapshots are incremental, so an image's true cost is at most the sum of its
snapshots' sizes (an upper bound; ``amictl.cost`` also gives a shared-block estimate);
archived snapshots are full-size at the archive rate.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from typing import Any

from .errors import InputError
from .yamlpos import Positions, load_file, loads

TIERS = ("standard", "archive")
Overrides = dict[str, dict[str, float]]


@cache
def table() -> dict[str, Any]:
    """The built-in price table (package data): rates plus its source and date."""
    text = resources.files("amictl").joinpath("data/prices.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


DEFAULT: dict[str, float] = dict(table()["default"])
REGIONAL: dict[str, dict[str, float]] = {r: dict(v) for r, v in table()["regions"].items()}


def parse_prices(data: Any, pos: Positions) -> Overrides:
    """A price file: ``{region|"*": {standard: X, archive: Y}}``, or the package table's
    own shape (``regions`` and ``default``). Errors name file:line and key."""
    if not isinstance(data, dict):
        raise pos.error((), "a price file is a mapping of region -> {standard, archive}")
    path: tuple[Any, ...] = ()
    if "regions" in data or "default" in data:
        rates = dict(data.get("regions") or {})
        if data.get("default") is not None:
            rates["*"] = data["default"]
        path = ("regions",)
    else:
        rates = data
    out: Overrides = {}
    for region, tiers in rates.items():
        p = ("default",) if region == "*" and path else (*path, region)
        if not isinstance(tiers, dict) or not tiers:
            raise pos.error(p, "expected a mapping such as {standard: 0.05, archive: 0.0125}")
        out[str(region)] = {}
        for tier, rate in tiers.items():
            if tier not in TIERS:
                raise pos.error((*p, tier), f"unknown tier {tier!r}: expected standard or archive")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 100:
                raise pos.error((*p, tier), f"expected a price in USD per GiB-month, got {rate!r}")
            out[str(region)][tier] = float(rate)
    return out


def load_prices(path: str) -> Overrides:
    """Read a price file (JSON or YAML) given with ``--prices``."""
    data, pos = load_file(path)
    return parse_prices(data, pos)


def env_overrides() -> Overrides:
    """``AMICTL_PRICES`` (JSON text or a file path), parsed once per value; InputError if bad."""
    return dict(_parse_env(os.environ.get("AMICTL_PRICES", "").strip()))


@cache
def _parse_env(raw: str) -> Overrides:
    if not raw:
        return {}
    if not raw.startswith("{"):
        return load_prices(raw)
    data, pos = loads(raw, "AMICTL_PRICES")
    return parse_prices(data, pos)


def _overrides() -> dict[str, Any]:
    try:
        return env_overrides()
    except InputError:
        return {}  # the commands that print costs check it first (cli.cost_cmd.load_overrides)


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


def describe(
    regions: list[str], overrides: Overrides | None = None, file: str | None = None
) -> dict[str, Any]:
    """Where the rates used for ``regions`` come from, for labelling figures."""
    t = table()
    env = os.environ.get("AMICTL_PRICES", "").strip()
    over = {**_overrides(), **(overrides or {})}
    rates = {r: {tier: price(r, tier, overrides) for tier in TIERS} for r in sorted(set(regions))}
    per_region = {}
    for r in rates:
        if r in over or "*" in over:
            per_region[r] = "override"
        elif r in t.get("verified", []):
            per_region[r] = "built-in (checked against AWS documentation)"
        elif r in REGIONAL:
            per_region[r] = "built-in (not re-checked)"
        else:
            per_region[r] = "built-in default (region not in the table)"
    return {
        "unit": t["unit"],
        "table_date": t["date"],
        "table_source": t["source"],
        "override_file": file,
        "override_env": bool(env),
        "rates": rates,
        "rate_source": per_region,
    }
