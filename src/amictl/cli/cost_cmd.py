"""``cost``: monthly snapshot storage per group, orphaned snapshots, unused images, over time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
from rich.markup import escape

from .. import cost, pricing
from ..durations import parse_duration
from ..errors import InputError
from ..model import Inventory
from ..pricing import Overrides
from ..state.store import Store
from . import context
from .common import emit, global_options, info, out_console, settings
from .inventory_cmd import load_inventory

COLUMNS = [
    "key",
    "images",
    "snapshots",
    "standard_gib",
    "archive_gib",
    "standard_usd",
    "archive_usd",
    "full_size_usd",
    "estimate_usd",
    "unused_images",
]
HISTORY_COLUMNS = [
    "scanned_at",
    "images",
    "snapshots",
    "standard_gib",
    "archive_gib",
    "full_size_usd",
    "estimate_usd",
    "orphaned_usd",
]


def cost_options(fn: Any) -> Any:
    """--prices and --change-rate (shared by ``cost`` and ``report``)."""
    fn = click.option(
        "--change-rate",
        type=click.FloatRange(0, 1),
        default=cost.DEFAULT_CHANGE_RATE,
        show_default=True,
        help="Shared-block estimate: the share of a version's blocks that differ from its "
        "lineage's base.",
    )(fn)
    return click.option(
        "--prices",
        "prices_file",
        metavar="FILE",
        help="Price file (JSON/YAML: region -> {standard, archive} USD per GiB-month) "
        "overriding the built-in table.",
    )(fn)


def load_overrides(prices_file: str | None) -> Overrides | None:
    """The --prices file's rates (and a check that AMICTL_PRICES, if set, is valid)."""
    pricing.env_overrides()
    return pricing.load_prices(prices_file) if prices_file else None


def duration(text: str, key: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(str(exc), key=key) from None


def since_time(since: str, key: str = "--since") -> dt.datetime:
    return dt.datetime.now(dt.UTC) - duration(since, key)


def cost_data(
    inv: Inventory,
    by: str,
    since: str | None,
    prices_file: str | None,
    change_rate: float,
    store: Store | None = None,
) -> dict[str, Any]:
    """Everything ``cost`` prints (also used by ``report`` and the demo)."""
    overrides = load_overrides(prices_file)
    data = cost.report(inv, by, overrides, change_rate)
    data["prices"] = pricing.describe(inv.regions, overrides, prices_file)
    if since:
        data["since"] = since
        st = store or context.store()
        data["history"] = cost.history(st, since_time(since), overrides, change_rate)
    return data


def _usd(v: float) -> str:
    return f"${v:,.2f}"


def print_summary(data: dict[str, Any]) -> None:
    con = out_console()
    t, o, u = data["totals"], data["orphaned"], data["unused_images"]
    con.print(
        f"[bold]Total[/]: {_usd(t['full_size_usd'])}/month full size "
        f"([dim]upper bound[/]: standard snapshots are billed incrementally), "
        f"{_usd(t['estimate_usd'])}/month shared-block estimate; "
        f"standard {t['standard_gib']:,} GiB = {_usd(t['standard_usd'])}, "
        f"archive {t['archive_gib']:,} GiB = {_usd(t['archive_usd'])} (billed in full).",
        highlight=False,
    )
    con.print(
        f"Orphaned snapshots (no registered image uses them): {o['snapshots']} snapshots, "
        f"{o['standard_gib'] + o['archive_gib']:,} GiB, {_usd(o['full_size_usd'])}/month.",
        highlight=False,
    )
    con.print(
        f"Images nothing uses: {u['images']} images, {_usd(u['full_size_usd'])}/month full size, "
        f"{_usd(u['estimate_usd'])}/month estimated.",
        highlight=False,
    )
    p = data["prices"]
    rates = "; ".join(
        f"{r} standard ${v['standard']}/archive ${v['archive']} ({p['rate_source'][r]})"
        for r, v in p["rates"].items()
    )
    src = f"override file {p['override_file']}" if p["override_file"] else "built-in table"
    con.print(
        f"[dim]Prices ({p['unit']}; {escape(src)}, table of {p['table_date']}): {rates}[/]",
        highlight=False,
    )


def register(cli: click.Group) -> None:
    @cli.command("cost")
    @click.option(
        "--by",
        type=click.Choice(cost.GROUP_BY),
        default="family",
        show_default=True,
        help="Group the figures by this.",
    )
    @click.option(
        "--since",
        metavar="DURATION",
        help="Also cost every inventory saved in the state store this recently (e.g. 90d).",
    )
    @cost_options
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def cost_cmd(
        by: str, since: str | None, prices_file: str | None, change_rate: float, from_state: bool
    ) -> None:
        """Monthly snapshot storage cost per family, region, account, image or tier.

        Each owned snapshot is counted once (attributed to the oldest image using it).
        Two labelled figures: full size (archive: what AWS bills; standard: an upper
        bound, as AWS bills standard snapshots incrementally) and a shared-block estimate
        (the versions of a family share blocks: the largest counted in full, the others at
        --change-rate). Also: orphaned snapshots, images nothing uses, totals, and with
        --since the cost of every inventory saved in that period.
        """
        if since:
            since_time(since)  # a bad --since fails before the scan
        load_overrides(prices_file)  # ... and so does a bad price file
        data = cost_data(load_inventory(from_state), by, since, prices_file, change_rate)
        if settings().output == "csv":
            emit(data["groups"], COLUMNS)
            return
        if settings().output != "table":
            emit(data)
            return
        emit(data["groups"], COLUMNS, title=f"monthly snapshot storage cost by {by} (USD)")
        print_summary(data)
        if since:
            if data["history"]:
                emit(data["history"], HISTORY_COLUMNS, title=f"cost over the last {since} (USD)")
            else:
                info(f"no inventory saved in the last {since}")
