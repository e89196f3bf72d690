"""The demo's last step: what the fleet costs, what the audit finds, and the HTML report.

The same library calls as `amictl cost`, `amictl audit` and `amictl report --html`.
"""

from __future__ import annotations

import os
from typing import Any

from rich.markup import escape

from .. import audit
from ..inventory import scan
from ..personas import policies as persona_policies
from .report_cmd import build_report, write_report


def run_report(ctx: Any) -> str:
    """Scan again (the lifecycle changed the fleet), cost it, audit it, write the report."""
    con = ctx.con
    con.rule("Cost, audit and the HTML report")
    inv = scan(ctx.conn)
    ctx.store.save_inventory(inv)
    data = build_report(
        inv,
        since="90d",
        prices_file=None,
        change_rate=0.1,
        audit_opts=audit.AuditOptions(persona_policy=persona_policies.policy),
        plan_file=None,
        title="amictl demo: image report",
        conn=ctx.conn,
        store=ctx.store,
    )
    c = data.cost
    t = c["totals"]
    con.print(
        "`amictl cost`: monthly snapshot storage, each snapshot counted once. "
        f"Full size ${t['full_size_usd']:,.2f}/month (an upper bound: AWS bills standard "
        f"snapshots incrementally); shared-block estimate ${t['estimate_usd']:,.2f}/month "
        "(versions of a family share blocks)."
    )
    for g in c["groups"][:6]:
        con.print(
            f"    {escape(g['key']):<22} {g['images']:>3} images  {g['standard_gib']:>5} GiB std "
            f"{g['archive_gib']:>4} GiB archive  ${g['full_size_usd']:>7,.2f} full  "
            f"${g['estimate_usd']:>7,.2f} est."
        )
    o, u = c["orphaned"], c["unused_images"]
    con.print(
        f"Orphaned snapshots: {o['snapshots']} (${o['full_size_usd']:,.2f}/month); images "
        f"nothing uses: {u['unused_images']} (${u['full_size_usd']:,.2f}/month). "
        f"{len(data.history)} saved inventories in the last 90 days."
    )
    findings = (data.audit or {}).get("findings", [])
    summary = (data.audit or {}).get("summary", {})
    con.print(
        "`amictl audit`: "
        + (", ".join(f"{n} {s}" for s, n in summary.items() if n) or "no findings")
        + " (`--fail-on high` makes CI fail on them):"
    )
    seen: set[str] = set()
    for f in findings:
        if f["check"] in seen:
            continue
        seen.add(f["check"])
        n = sum(1 for x in findings if x["check"] == f["check"])
        con.print(f"    {f['severity']:<8} {f['check']:<30} x{n:<3} fix: {escape(f['fix'])}")
    workdir = os.path.dirname(ctx.store.engine.url.database or ".")
    kept = getattr(ctx, "report_path", None)
    path = kept or os.path.join(workdir, "amictl-report.html")
    size = write_report(path, data)
    con.print(
        f"`amictl report --html`: [bold]{escape(path)}[/] ({size / 1e6:.1f} MB, one self-contained "
        "file: charts of cost by family and over time, ages, lineage; the audit, the plan, the "
        "journal). "
        + (
            "Open it in a browser; it works offline."
            if kept
            else "It is removed with the demo's other files: `amictl demo --report FILE` keeps it."
        )
    )
    return path
