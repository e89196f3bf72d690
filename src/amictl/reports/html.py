"""One self-contained HTML file: inline CSS, Plotly's JS inlined once, no external URL.

Every text that comes from AWS or a file is HTML-escaped. URLs inside the inlined Plotly
bundle (map tile servers, attribution links it never uses here) are written with escaped
slashes (``https:\\/\\/``), the same string to JavaScript, so that the file holds no
``http://`` or ``https://`` at all and nothing in it can be fetched.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from . import charts
from . import drift as drift_chart
from .data import ReportData, audit_groups

MAX_ROWS = 200
MAX_VERSIONS = 12
MAX_FAMILIES_CHARTED = 30
MAX_FINDINGS_PER_CHECK = 100
MAX_JOURNAL = 20


# plotly.js's basic bundle (scatter and bar), MIT, from its npm release; the same version as
# the plotly.js the plotly package ships (a test compares them)
PLOTLY_BUNDLE = "data/plotly-basic.min.js"


@cache
def plotly_js() -> str:
    js = resources.files("amictl").joinpath(PLOTLY_BUNDLE).read_text(encoding="utf-8")
    return js.replace("https://", "https:\\/\\/").replace("http://", "http:\\/\\/")


def e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def usd(v: float | None) -> str:
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return e(v)  # not a number (a hand-made --plan file): shown as text, escaped
    return f"${v:,.2f}"


def table(
    rows: Sequence[dict[str, Any]],
    cols: Sequence[tuple[str, str]],
    cls: str = "",
    limit: int = MAX_ROWS,
) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{e(label)}</th>" for _k, label in cols)
    body = []
    for r in rows[:limit]:
        cells = []
        for k, _label in cols:
            v = r.get(k)
            if k.endswith("_usd"):
                cells.append(f'<td class="num">{usd(v)}</td>')
            elif isinstance(v, int | float) and not isinstance(v, bool):
                cells.append(f'<td class="num">{e(f"{v:,}")}</td>')
            elif k == "severity":
                cells.append(f'<td><span class="sev sev-{e(v)}">{e(v)}</span></td>')
            elif k == "revoked":
                cells.append(f"<td>{revoked_badge(v)}</td>")
            elif k == "findings":
                cells.append(f"<td>{findings_badge(v, r.get('severity'))}</td>")
            elif isinstance(v, list):
                cells.append(f"<td>{e(', '.join(map(str, v)))}</td>")
            elif isinstance(v, bool):
                cells.append(f"<td>{'yes' if v else ''}</td>")
            else:
                cells.append(f"<td>{e(v)}</td>")
        row_cls = ' class="revoked"' if r.get("revoked") else ""
        body.append(f"<tr{row_cls}>{''.join(cells)}</tr>")
    more = ""
    if len(rows) > limit:
        more = f'<p class="muted">... and {len(rows) - limit:,} more (see `-o json`)</p>'
    return (
        f'<div class="tablewrap"><table class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def revoked_badge(reason: Any) -> str:
    """``amictl revoke``'s mark on a version: a red badge and the reason (empty: not revoked)."""
    if not reason:
        return ""
    return f'<span class="badge-revoked">revoked</span> {e(reason)}'


def findings_badge(text: Any, severity: Any) -> str:
    """Inspector's worst finding on a version: a badge coloured by severity; "not scanned"
    and "no findings" stay plain text (an unscanned image is never shown as clean)."""
    if not severity:
        return f'<span class="muted">{e(text)}</span>' if text else ""
    return f'<span class="sev sev-{e(str(severity).lower())}">{e(text)}</span>'


def card(label: str, value: str, sub: str = "", cls: str = "") -> str:
    sub_html = f'<div class="sub">{e(sub)}</div>' if sub else ""
    return (
        f'<div class="card {cls}"><div class="label">{e(label)}</div>'
        f'<div class="value">{e(value)}</div>{sub_html}</div>'
    )


def section(id_: str, title: str, *parts: str) -> str:
    return f'<section id="{id_}"><h2>{e(title)}</h2>{"".join(parts)}</section>'


def chart(fragment: str, empty: str) -> str:
    if not fragment:
        return f'<p class="muted">{e(empty)}</p>'
    return f'<div class="chart">{fragment}</div>'


def _summary(d: ReportData) -> str:
    s = d.summary
    cards = [
        card("Images", f"{s['images']:,}", f"{s['families']} families, {s['in_use']:,} in use"),
        card(
            "Monthly storage",
            usd(s["full_size_usd"]),
            f"full size (upper bound); estimate {usd(s['estimate_usd'])}",
            "accent",
        ),
        card("Snapshots", f"{s['snapshots']:,}", f"{s['orphaned_snapshots']} orphaned"),
        card(
            "Reclaimable",
            usd(s["orphaned_usd"] + s["unused_usd"]),
            f"orphaned {usd(s['orphaned_usd'])} + {s['unused_images']} unused images",
        ),
        card(
            "Deprecated",
            f"{s['deprecated']:,}",
            f"{s['disabled']} disabled, {s['shared']} shared or public",
        ),
    ]
    f = s["findings"]
    if f is not None:
        worst = next((k for k in ("critical", "high", "medium", "low") if f.get(k)), None)
        text = ", ".join(f"{n} {k}" for k, n in f.items() if n) or "none"
        cards.append(card("Audit findings", str(sum(f.values())), text, f"worst-{worst or 'ok'}"))
    return f'<div class="cards">{"".join(cards)}</div>'


def _cost(d: ReportData) -> str:
    c = d.cost
    labels = c["labels"]
    p = c.get("prices", {})
    groups = c["groups"]
    cols = [
        ("key", "family"),
        ("images", "images"),
        ("snapshots", "snapshots"),
        ("standard_gib", "standard GiB"),
        ("archive_gib", "archive GiB"),
        ("full_size_usd", "full size $/mo (upper bound)"),
        ("estimate_usd", "shared-block estimate $/mo"),
        ("unused_images", "unused images"),
    ]
    rates = ", ".join(
        f"{r}: standard ${v['standard']}, archive ${v['archive']}"
        for r, v in p.get("rates", {}).items()
    )
    note = (
        f'<p class="note"><b>Full size</b>: {e(labels["full_size_usd"])}. '
        f"<b>Archive</b>: {e(labels['archive_usd'])}. "
        f"<b>Estimate</b>: {e(labels['estimate_usd'])}. "
        f"Prices per GiB-month ({e(rates)}) from "
        f"{e(p.get('override_file') or 'the built-in table of ' + str(p.get('table_date')))}.</p>"
    )
    return section(
        "cost",
        "Storage cost by family",
        chart(charts.cost_by_family(groups), "no snapshot storage"),
        note,
        table(groups, cols),
    )


def _history(d: ReportData) -> str:
    n = len(d.history)
    caption = (
        f'<p class="note">{n} {"inventory" if n == 1 else "inventories"} saved in the state '
        "store since "
        f"{e(d.history[0]['scanned_at'] if n else '-')}, each costed with today's prices.</p>"
    )
    changes = [p for p in d.history if p.get("scope_changed")]
    if changes:
        caption += (
            '<p class="note">the inventories covered different scopes, so each scope is its '
            "own line: "
            + "; ".join(f"from {e(p['scanned_at'])}: {e(p['scope'])}" for p in changes)
            + f" (first: {e(d.history[0].get('scope'))})</p>"
        )
    return section(
        "history",
        "Cost over time",
        chart(charts.cost_over_time(d.history), "no saved inventory in the period"),
        caption if n else "",
    )


def _lineage(d: ReportData) -> str:
    shown = sorted(d.families, key=lambda f: -len(f["versions"]))[:MAX_FAMILIES_CHARTED]
    shown.sort(key=lambda f: f["label"])
    parts = [chart(charts.lineage(shown), "no image has a family")]
    parts.append(
        '<p class="note">a version label is drawn where it fits (channel versions and the '
        "newest first); a star is a version a channel points at, a red cross a revoked version "
        "(<code>amictl revoke</code>), a ring its worst Amazon Inspector finding (colour by "
        "severity); hover a point for its image, version, channels, revocation and findings</p>"
    )
    if len(shown) < len(d.families):
        parts.append(
            f'<p class="note">the chart shows the {len(shown)} families with the most versions '
            f"of {len(d.families)}; the tables below list every family</p>"
        )
    cols = [
        ("version", "version"),
        ("image_id", "image"),
        ("created_at", "created"),
        ("age_days", "age (days)"),
        ("built_from", "built from"),
        ("channels", "channels"),
        ("state", "state"),
        ("revoked", "revoked"),
        ("findings", "worst finding"),
        ("in_use", "in use"),
        ("monthly_cost_usd", "full size $/mo"),
    ]
    for fam in d.families:
        vs = fam["versions"]
        parts.append(
            f'<details class="family"><summary><b>{e(fam["label"])}</b> '
            f'<span class="muted">{len(vs)} version{"s" if len(vs) != 1 else ""}</span>'
            f"{_family_marks(vs)}</summary>{table(vs, cols, limit=MAX_VERSIONS)}</details>"
        )
    return section("lineage", "Lineage per family", *parts)


def _family_marks(versions: list[dict[str, Any]]) -> str:
    """A family's line in the version view: how many versions are revoked, the worst
    finding of any version (so a folded family still shows both)."""
    out = ""
    revoked = sum(1 for v in versions if v.get("revoked"))
    if revoked:
        out += f' <span class="badge-revoked">{revoked} revoked</span>'
    sevs = [str(v["severity"]).lower() for v in versions if v.get("severity")]
    if sevs:
        worst = max(sevs, key=charts.severity_rank)
        out += f' <span class="sev sev-{e(worst)}">worst finding: {e(worst)}</span>'
    return out


def _audit(d: ReportData) -> str:
    if d.audit is None:
        return section("audit", "Audit findings", '<p class="muted">the audit was not run</p>')
    inc = d.audit.get("incomplete") or []
    note = f'<p class="warn">not checked: {e("; ".join(inc))}</p>' if inc else ""
    groups = audit_groups(d.audit["findings"])
    if not groups:
        return section("audit", "Audit findings", note, '<p class="muted">none</p>')
    total = sum(g["count"] for g in groups)
    head = (
        f'<p class="note">{total:,} findings of {len(groups)} checks, worst first; open a '
        "check for its findings.</p>"
    )
    parts = [note, head]
    for g in groups:
        cols = [("resource", "resource"), ("region", "region"), ("name", "name")]
        cols += [("detail", "detail")] + ([] if g["fix"] else [("fix", "fix")])
        fix = f'<div class="fix">fix: {e(g["fix"])}</div>' if g["fix"] else ""
        parts.append(
            f'<details class="check"><summary><span class="sev sev-{e(g["severity"])}">'
            f"{e(g['severity'])}</span> <b>{e(g['check'])}</b> "
            f'<span class="count">{g["count"]:,}</span>{fix}</summary>'
            f"{table(g['findings'], cols, 'findings', limit=MAX_FINDINGS_PER_CHECK)}</details>"
        )
    return section("audit", "Audit findings", *parts)


def _plan(d: ReportData) -> str:
    if d.plan is None:
        return section(
            "plan",
            "Latest plan",
            '<p class="muted">no plan: none was applied with this state store, and no --plan '
            "file was given</p>",
        )
    p = d.plan
    # a --plan file is anyone's JSON: every part of it is checked for its type here
    raw_summary, raw_policy = p.get("summary"), p.get("policy")
    summary: dict[str, Any] = raw_summary if isinstance(raw_summary, dict) else {}
    policy: dict[str, Any] = raw_policy if isinstance(raw_policy, dict) else {}
    facts = [
        f"source: {d.plan_source}",
        f"created {p.get('created_at', '?')}",
        f"policy {policy.get('path', '?')}",
        f"{len(p.get('actions', []))} actions",
        f"savings {usd(summary.get('monthly_savings_usd'))}/month (full size)",
    ]
    counts = ", ".join(
        f"{k} {v}"
        for k, v in summary.items()
        if isinstance(v, int) and v and k != "images_selected"
    )
    rows = [
        {
            **a,
            "resource": a.get("snapshot_id") or a.get("image_id"),
            "why": "; ".join(map(str, _as_list(a.get("reasons")))),
        }
        for a in p.get("actions", [])
        if isinstance(a, dict)
    ]
    cols = [
        ("id", "id"),
        ("type", "action"),
        ("resource", "resource"),
        ("region", "region"),
        ("rule", "rule"),
        ("why", "reasons"),
    ]
    return section(
        "plan",
        "Latest plan",
        f'<p class="note">{e(" · ".join(facts))}</p>',
        f'<p class="note">{e(counts)}</p>' if counts else "",
        table(rows, cols, limit=100),
    )


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [] if v is None else [v]


def _journal(d: ReportData) -> str:
    cols = [
        ("at", "at"),
        ("action_id", "action"),
        ("type", "type"),
        ("resource", "resource"),
        ("region", "region"),
        ("status", "outcome"),
        ("message", "message"),
        ("caller", "by"),
    ]
    rows = list(reversed(d.journal))[:MAX_JOURNAL]
    note = (
        '<p class="note">one row per action: its outcome (done, skipped, failed, not-found; '
        "intended: started and not finished; stopped: ended by Ctrl-C/SIGTERM before AWS did it; "
        "`apply --resume` finishes both). `amictl journal` "
        "lists every step.</p>"
    )
    return section("journal", "Journal: last actions", note if rows else "", table(rows, cols))


def _nav(items: Iterable[tuple[str, str]]) -> str:
    return "<nav>" + "".join(f'<a href="#{i}">{e(t)}</a>' for i, t in items) + "</nav>"


CSS = """
:root{--ink:#1f2933;--muted:#6b7785;--line:#e3e8ee;--bg:#f6f8fa;--accent:#2f6fad}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#1d3b5c,#2f6fad);color:#fff;padding:22px 32px 16px}
header h1{margin:0 0 4px;font-size:24px}header .meta{opacity:.85;font-size:13px}
nav{display:flex;flex-wrap:wrap;gap:6px;padding:10px 32px;background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:5}
nav a{color:var(--accent);text-decoration:none;padding:3px 10px;border-radius:14px;background:#eef4fa;font-size:13px}
main{max-width:1240px;margin:0 auto;padding:18px 32px 40px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(165px,1fr));gap:12px;margin:6px 0 18px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 14px;border-top:4px solid #c7d3e0}
.card.accent{border-top-color:var(--accent)}.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:650;margin:2px 0}.card .sub{color:var(--muted);font-size:12px}
.card.worst-critical,.card.worst-high{border-top-color:#c0392b}.card.worst-medium{border-top-color:#e0a030}.card.worst-low,.card.worst-ok{border-top-color:#3a9a5b}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 18px;margin:0 0 16px}
section h2{margin:0 0 8px;font-size:18px}.chart{min-height:260px}
.note{color:var(--muted);font-size:12.5px;margin:6px 0}.muted{color:var(--muted)}.warn{color:#a05a00}
.tablewrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:12.5px;margin:6px 0}
th{text-align:left;background:#f0f3f7;border-bottom:1px solid var(--line);padding:5px 8px;white-space:nowrap}
td{border-bottom:1px solid #eef1f4;padding:4px 8px;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
.sev{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11.5px;font-weight:600;color:#fff;background:#6b7785}
.sev-critical{background:#8e1b10}.sev-high{background:#c0392b}.sev-medium{background:#d68910}.sev-low{background:#2f6fad}.sev-info,.sev-informational{background:#6b7785}
details.check{margin:4px 0;border:1px solid var(--line);border-radius:8px;padding:5px 10px}details.check summary{cursor:pointer}
details.check .count{display:inline-block;min-width:26px;text-align:center;padding:0 7px;border-radius:10px;background:#eef1f4;font-weight:600;font-size:12px}
details.check .fix{color:var(--muted);font-size:12px;margin:2px 0 0 4px}
.badge-revoked{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11.5px;font-weight:600;color:#fff;background:#8e1b10}
tr.revoked td:first-child{text-decoration:line-through;color:#8e1b10}
details.family{margin:6px 0;border:1px solid var(--line);border-radius:8px;padding:6px 10px}details.family summary{cursor:pointer}
footer{color:var(--muted);font-size:12px;text-align:center;padding:10px}
"""


def render(d: ReportData) -> str:
    inv = d.inventory
    meta = (
        f"generated {d.generated_at} · inventory of {inv['scanned_at']} "
        f"({'complete' if inv['complete'] else 'INCOMPLETE: ' + ', '.join(inv['incomplete'])}) · "
        f"accounts {', '.join(inv['accounts'])} · regions {', '.join(inv['regions'])}"
    )
    ages = section(
        "ages",
        "Age distribution",
        chart(charts.age_distribution(d.images), "no images"),
    )
    nav = _nav(
        [
            ("summary", "Summary"),
            ("cost", "Cost"),
            ("history", "Over time"),
            ("ages", "Ages"),
            ("lineage", "Lineage"),
            ("drift", "Drift"),
            ("audit", "Audit"),
            ("plan", "Plan"),
            ("journal", "Journal"),
        ]
    )
    body = "".join(
        [
            f'<div id="summary">{_summary(d)}</div>',
            _cost(d),
            _history(d),
            ages,
            _lineage(d),
            _drift_section(d.drift),
            _audit(d),
            _plan(d),
            _journal(d),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(d.title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{plotly_js()}</script></head><body>'
        f'<header><h1>{e(d.title)}</h1><div class="meta">{e(meta)}</div></header>{nav}'
        f"<main>{body}</main>"
        "<footer>amictl · self-contained report: works offline, fetches nothing</footer>"
        "</body></html>\n"
    )


def _drift_section(groups: list[dict[str, Any]]) -> str:
    """What runs behind its channel (``amictl drift``): the chart and the table."""
    cols = [
        ("family", "family"),
        ("channel", "channel"),
        ("region", "region"),
        ("kind", "kind"),
        ("id", "id"),
        ("version", "runs"),
        ("channel_version", "channel"),
        ("versions_behind", "versions behind"),
        ("days_behind", "days behind"),
    ]
    return section(
        "drift",
        "Drift: running behind the channel",
        chart(drift_chart.chart(groups), "nothing runs behind its channel"),
        table(drift_chart.rows(groups), cols),
    )
