"""``report --html FILE``: one self-contained HTML report with charts."""

from __future__ import annotations

import os
from typing import Any

import click

from .. import audit, reports
from ..aws.session import Connector
from ..errors import AmictlError, InputError
from ..model import Inventory
from ..notify import retired_without_notice
from ..state.store import Store
from . import context
from .audit_cmd import audit_options, make_options
from .common import emit, global_options, info, settings
from .cost_cmd import cost_data, cost_options, load_overrides, since_time
from .inventory_cmd import load_inventory


def build_report(
    inv: Inventory,
    *,
    since: str,
    prices_file: str | None,
    change_rate: float,
    audit_opts: audit.AuditOptions | None,
    plan_file: str | None,
    title: str,
    conn: Connector | None = None,
    store: Store | None = None,
) -> reports.ReportData:
    """Everything the report shows (also used by the demo, with its connector and store)."""
    store = store or context.store()
    cost = cost_data(inv, "family", since, prices_file, change_rate, store)
    result = None
    if audit_opts is not None:
        conn = conn or context.connector()
        result = audit.audit(conn, conn.targets(), audit_opts, inv=inv).to_dict()
    plan: dict[str, Any] | None = None
    plan_source = None
    if plan_file:
        plan, plan_source = reports.load_plan_file(plan_file), plan_file
    else:
        stored = reports.latest_stored_plan(store)
        if stored:
            plan, plan_source = stored
    return reports.build(
        inv,
        cost,
        history=cost.get("history", []),
        audit=result,
        plan=plan,
        plan_source=plan_source,
        journal=store.journal_rows(limit=200),  # outcomes of the last actions
        title=title,
    )


def write_report(path: str, data: reports.ReportData) -> int:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"no such directory: {folder}", key="--html")
    try:
        return reports.write(path, data)
    except OSError as exc:
        raise AmictlError(f"could not write {path}: {exc.strerror or exc}") from None


def register(cli: click.Group) -> None:
    @cli.command("report")
    @click.option(
        "--html", "html_file", required=True, metavar="FILE", help="Write the report here."
    )
    @click.option(
        "--since",
        default="90d",
        show_default=True,
        metavar="DURATION",
        help="Cost over time from the inventories saved this recently.",
    )
    @click.option(
        "--plan",
        "plan_file",
        metavar="FILE",
        help="Show this plan (default: the latest plan the state store keeps).",
    )
    @click.option("--no-audit", is_flag=True, help="Leave the audit out (no region reads).")
    @click.option("--title", default="amictl image report", show_default=True)
    @cost_options
    @audit_options
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def report_cmd(
        html_file: str,
        since: str,
        plan_file: str | None,
        no_audit: bool,
        title: str,
        prices_file: str | None,
        change_rate: float,
        trust: tuple[str, ...],
        max_channel_age: str,
        recent: str,
        conventions_file: str | None,
        from_state: bool,
    ) -> None:
        """Write one self-contained HTML report (works offline: no CDN, no network).

        Fleet summary, storage cost by family and over time (charts), age distribution,
        lineage per family (which version came from which base, channels on it), audit
        findings, the latest plan and the journal's last actions. Charts are Plotly, its
        JavaScript inlined.
        """
        since_time(since)  # bad input fails before any scan
        load_overrides(prices_file)
        opts = None if no_audit else make_options(trust, max_channel_age, recent, conventions_file)
        if opts is not None:  # issue 29: images retired without a notice, from the journals
            opts.unnoticed = retired_without_notice(context.store())
        if plan_file:
            reports.load_plan_file(plan_file)
        inv = load_inventory(from_state)
        data = build_report(
            inv,
            since=since,
            prices_file=prices_file,
            change_rate=change_rate,
            audit_opts=opts,
            plan_file=plan_file,
            title=title,
        )
        size = write_report(html_file, data)
        out = {
            "path": os.path.abspath(html_file),
            "bytes": size,
            "images": data.summary["images"],
            "monthly_full_size_usd": data.summary["full_size_usd"],
            "monthly_estimate_usd": data.summary["estimate_usd"],
            "findings": data.summary["findings"],
            "plan": data.plan_source,
            "history_points": len(data.history),
        }
        if settings().output == "table":
            info(
                f"wrote {out['path']} ({size / 1e6:.1f} MB, self-contained): "
                f"{out['images']} images, ${out['monthly_full_size_usd']:,.2f}/month full size"
            )
        else:
            emit(out)
