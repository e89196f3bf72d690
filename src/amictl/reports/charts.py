"""The report's charts, drawn by Plotly (its JS is inlined once by :mod:`.html`).

Each function takes plain report data and returns an HTML fragment (a ``div`` and the
script that draws it), or ``""`` when there is nothing to draw.

The page inlines plotly.js's *basic* bundle (scatter and bar traces, ~1.2 MB instead of the
full bundle's 4.8 MB), so every chart here is drawn with those two trace types only (the
age histogram is binned here, drawn as bars). Each figure carries only the layout part of
its template and numbers rounded to what a reader sees (cents, days).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from ..model import parse_time

CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
STANDARD = "#2f6fad"
ARCHIVE = "#8fb8de"
ESTIMATE = "#e07b39"
PALETTE = [
    "#2f6fad",
    "#e07b39",
    "#3a9a5b",
    "#c0392b",
    "#8e6cc1",
    "#8c6d31",
    "#d6609f",
    "#6b7b8c",
    "#b5a800",
    "#17a2b8",
]
# plotly_white's layout only: its per-trace defaults (3-D, maps, ...) are ~4 KB per chart
TEMPLATE = go.layout.Template(layout=pio.templates["plotly_white"].layout)
# Inspector's severities, least first (amictl.findings.SEVERITIES), and their colours in
# the lineage chart's rings (the same as the HTML's .sev-* badges)
SEVERITY_COLOURS = {
    "informational": "#6b7785",
    "low": "#2f6fad",
    "medium": "#d68910",
    "high": "#c0392b",
    "critical": "#8e1b10",
}
REVOKED = "#8e1b10"
# how a mark on the last point of a time axis (at the plot's right edge) is anchored: its
# text ends at the point, inside the chart
RIGHT_EDGE_ANCHOR = "right"
LAYOUT = {
    "template": TEMPLATE,
    # the right margin leaves room for half of a tick label centred on the last point
    "margin": {"l": 60, "r": 60, "t": 40, "b": 50},
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
    "legend": {"orientation": "h", "y": -0.18},
    "height": 380,
}


def _html(fig: go.Figure, div_id: str) -> str:
    """The figure's ``div`` and script: the common :data:`LAYOUT` under what the chart set
    (a chart's own height, margins or legend win over the defaults)."""
    own = fig.layout.to_plotly_json()
    own.pop("template", None)  # plotly's default template, set on every new figure
    fig.layout = go.Layout(LAYOUT)
    fig.update_layout(own)
    return str(
        fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG, validate=True
        )
    )


def cost_by_family(groups: list[dict[str, Any]]) -> str:
    """Stacked bars (standard / archive at full size) and the shared-block estimate."""
    rows = [g for g in groups if g["full_size_usd"] > 0 or g["images"]]
    if not rows:
        return ""
    rows = sorted(rows, key=lambda g: g["full_size_usd"])
    keys = [g["key"] for g in rows]
    fig = go.Figure()
    fig.add_bar(
        y=keys,
        x=cents([g["standard_usd"] for g in rows]),
        orientation="h",
        name="standard tier, full size (upper bound)",
        marker_color=STANDARD,
    )
    fig.add_bar(
        y=keys,
        x=cents([g["archive_usd"] for g in rows]),
        orientation="h",
        name="archive tier (billed in full)",
        marker_color=ARCHIVE,
    )
    fig.add_scatter(
        y=keys,
        x=cents([g["estimate_usd"] for g in rows]),
        mode="markers",
        name="shared-block estimate",
        marker={"color": ESTIMATE, "size": 11, "symbol": "diamond"},
    )
    fig.update_layout(
        barmode="stack",
        xaxis_title="USD per month",
        height=max(260, 60 + 34 * len(rows)),
    )
    return _html(fig, "chart-cost-family")


def severity_rank(severity: str) -> int:
    order = list(SEVERITY_COLOURS)
    return order.index(severity) if severity in order else -1


def cents(values: list[Any]) -> list[Any]:
    """USD amounts rounded to the cent (a float's 17 digits are ~15 bytes each in the page)."""
    return [round(v, 2) if isinstance(v, float) else v for v in values]


def cost_over_time(history: list[dict[str, Any]]) -> str:
    """Total full-size and estimated cost per saved inventory, and each family's full size.

    When the saved inventories covered different scopes (regions, accounts), a total over
    fewer regions is no drop in cost: then each scope is its own line (never joined to
    another's), and every point where the scope changed is marked."""
    if not history:
        return ""
    scopes = list(dict.fromkeys(str(p.get("scope", "")) for p in history))
    if len(scopes) > 1:
        return _cost_per_scope(history, scopes)
    x = [p["scanned_at"] for p in history]
    fig = go.Figure()
    families = sorted({f for p in history for f in p["by_family"]})
    few = len(history) < 3  # a stacked area needs points to span: bars until then
    for i, fam in enumerate(families):
        y = cents([p["by_family"].get(fam, 0) for p in history])
        colour = PALETTE[i % len(PALETTE)]
        if few:
            fig.add_bar(x=x, y=y, name=fam, marker_color=colour)
        else:
            fig.add_scatter(
                x=x,
                y=y,
                mode="lines",
                stackgroup="family",
                name=fam,
                line={"width": 0.5, "color": colour},
            )
    fig.add_scatter(
        x=x,
        y=cents([p["estimate_usd"] for p in history]),
        mode="lines+markers",
        name="total, shared-block estimate",
        line={"color": ESTIMATE, "width": 3, "dash": "dot"},
        marker={"size": 10, "symbol": "diamond"},
    )
    fig.update_layout(yaxis_title="USD / month (full size)", barmode="stack")
    if few:
        fig.update_xaxes(type="category")
    return _html(fig, "chart-cost-time")


def _cost_per_scope(history: list[dict[str, Any]], scopes: list[str]) -> str:
    fig = go.Figure()
    for i, scope in enumerate(scopes):
        pts = [p for p in history if p.get("scope") == scope]
        colour = PALETTE[i % len(PALETTE)]
        fig.add_scatter(
            x=[p["scanned_at"] for p in pts],
            y=cents([p["full_size_usd"] for p in pts]),
            mode="lines+markers",
            name=f"full size, {scope}",
            line={"color": colour, "width": 2.5},
            marker={"size": 9},
        )
        fig.add_scatter(
            x=[p["scanned_at"] for p in pts],
            y=cents([p["estimate_usd"] for p in pts]),
            mode="lines+markers",
            name=f"estimate, {scope}",
            line={"color": colour, "width": 1.5, "dash": "dot"},
            marker={"size": 7, "symbol": "diamond"},
        )
    for p in history:
        if p.get("scope_changed"):
            fig.add_vline(x=p["scanned_at"], line={"color": "#9aa5b1", "width": 1, "dash": "dash"})
            fig.add_annotation(
                x=p["scanned_at"],
                y=1,
                yref="paper",
                text="scope changed",
                showarrow=False,
                yanchor="bottom",
                # the last point is at the plot's right edge: the label goes left of it
                xanchor=RIGHT_EDGE_ANCHOR if p is history[-1] else "left",
                font={"size": 11, "color": "#6b7785"},
            )
    fig.update_layout(yaxis_title="USD / month", legend={"orientation": "h", "y": -0.25})
    if len(history) < 3:
        fig.update_xaxes(type="category")
    return _html(fig, "chart-cost-time")


AGE_BIN_DAYS = 30


def age_distribution(images: list[dict[str, Any]]) -> str:
    """Images per 30-day age bin, stacked by family (binned here: the basic bundle has no
    histogram trace)."""
    rows = [i for i in images if i.get("age_days") is not None]
    if not rows:
        return ""
    by_family: dict[str, Counter[int]] = defaultdict(Counter)
    for i in rows:
        by_family[i["family"] or "(no family)"][int(i["age_days"]) // AGE_BIN_DAYS] += 1
    fig = go.Figure()
    for n, (fam, bins) in enumerate(sorted(by_family.items())):
        keys = sorted(bins)
        fig.add_bar(
            x=[k * AGE_BIN_DAYS + AGE_BIN_DAYS / 2 for k in keys],
            y=[bins[k] for k in keys],
            width=AGE_BIN_DAYS,
            name=fam,
            marker_color=PALETTE[n % len(PALETTE)],
            customdata=[[k * AGE_BIN_DAYS, (k + 1) * AGE_BIN_DAYS - 1] for k in keys],
            hovertemplate="%{y} images aged %{customdata[0]}-%{customdata[1]} days",
        )
    fig.update_layout(
        barmode="stack",
        bargap=0,
        xaxis={"title": {"text": "age in days (30-day bins)"}, "rangemode": "tozero"},
        yaxis_title="images",
    )
    return _html(fig, "chart-age")


def lineage(families: list[dict[str, Any]]) -> str:
    """Each family's versions over time; a line from the image each was built from; stars
    on the versions a channel points at."""
    if not families:
        return ""
    fig = go.Figure()
    ids: dict[str, tuple[dt.datetime, str]] = {}
    for fam in families:
        for v in fam["versions"]:
            t = parse_time(v["created_at"])
            if t is not None:
                ids[v["image_id"]] = (t, fam["label"])
    xs: list[Any] = []
    ys: list[Any] = []
    for fam in families:
        for v in fam["versions"]:
            src = v.get("source_image_id")
            if src in ids and v["image_id"] in ids:
                for point in (ids[src], ids[v["image_id"]]):
                    xs.append(point[0])
                    ys.append(point[1])
                xs.append(None)
                ys.append(None)
    if xs:
        fig.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            name="built from",
            line={"color": "#9aa5b1", "width": 1.5},
            hoverinfo="skip",
        )
    times = [t for t, _label in ids.values()]
    span = max((max(times) - min(times)).total_seconds(), 1.0) if times else 1.0
    for n, fam in enumerate(families):
        vs = [v for v in fam["versions"] if v["image_id"] in ids]
        xs_f = [ids[v["image_id"]][0] for v in vs]
        _severity_rings(fig, vs, xs_f, fam["label"])
        fig.add_scatter(
            x=xs_f,
            y=[fam["label"]] * len(vs),
            mode="markers+text",
            text=fitting_labels(
                [v["version"] or "" for v in vs],
                [(t - min(times)).total_seconds() / span * LINEAGE_WIDTH_PX for t in xs_f],
                [bool(v["channels"]) for v in vs],
            ),
            textposition="top center",
            textfont={"size": 10},
            name=fam["label"],
            marker={
                "size": [_marker_size(v) for v in vs],
                "symbol": [_marker_symbol(v) for v in vs],
                "color": [REVOKED if v.get("revoked") else PALETTE[n % len(PALETTE)] for v in vs],
                "line": {"width": 1, "color": "#333"},
            },
            customdata=[
                [
                    v["image_id"],
                    ", ".join(v["channels"]) or "-",
                    v["state"],
                    v["version"] or "-",
                    f"REVOKED: {v['revoked']}" if v.get("revoked") else "not revoked",
                    v.get("findings") or "-",
                ]
                for v in vs
            ],
            hovertemplate="%{customdata[0]}<br>version %{customdata[3]}<br>channels: "
            "%{customdata[1]}<br>state: %{customdata[2]}<br>%{customdata[4]}"
            "<br>worst finding: %{customdata[5]}<extra></extra>",
            showlegend=False,
        )
    _lineage_legend(fig, [v for fam in families for v in fam["versions"]])
    fig.update_layout(
        height=max(260, 90 + 48 * len(families)),
        xaxis_title="created",
        yaxis={"type": "category", "automargin": True},
    )
    return _html(fig, "chart-lineage")


def _marker_symbol(v: dict[str, Any]) -> str:
    if v.get("revoked"):
        return "x"
    return "star" if v["channels"] else "circle"


def _marker_size(v: dict[str, Any]) -> int:
    return 16 if v["channels"] or v.get("revoked") else 10


def _severity_rings(fig: go.Figure, vs: list[dict[str, Any]], xs: list[Any], label: str) -> None:
    """A ring around each version with Inspector findings, coloured by the worst severity
    (drawn under the points; no ring: not scanned or no findings, said in the hover)."""
    ringed = [(x, v) for x, v in zip(xs, vs, strict=True) if v.get("severity")]
    if not ringed:
        return
    fig.add_scatter(
        x=[x for x, _v in ringed],
        y=[label] * len(ringed),
        mode="markers",
        marker={
            "size": 22,
            "symbol": "circle-open",
            "line": {"width": 2.5},
            "color": [
                SEVERITY_COLOURS.get(str(v["severity"]).lower(), "#6b7785") for _x, v in ringed
            ],
        },
        hoverinfo="skip",
        showlegend=False,
    )


def _lineage_legend(fig: go.Figure, versions: list[dict[str, Any]]) -> None:
    """Legend entries (no points) for the marks the chart uses: revoked, each severity."""
    if any(v.get("revoked") for v in versions):
        fig.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            name="revoked",
            marker={"symbol": "x", "size": 12, "color": REVOKED},
        )
    found = {str(v["severity"]).lower() for v in versions if v.get("severity")}
    for sev in sorted(found, key=severity_rank, reverse=True):
        fig.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=f"worst finding: {sev}",
            marker={
                "symbol": "circle-open",
                "size": 14,
                "line": {"width": 2.5},
                "color": SEVERITY_COLOURS.get(sev, "#6b7785"),
            },
        )


# The narrowest plot area the lineage chart is laid out for (the page's main column less
# margins is ~1,050 px; a narrower window squeezes it), and a label's width per character
# at the chart's 10 px font (digits and dots are ~6 px; a margin for the widest).
LINEAGE_WIDTH_PX = 850.0
CHAR_PX = 7.0
GAP_PX = 6.0


def fitting_labels(labels: list[str], xs: list[float], keep: list[bool]) -> list[str]:
    """The labels of one row of points that fit without overlapping, the others ``""``
    (their version stays in the hover). Placed in order: the points ``keep`` marks (channel
    versions), then newest to oldest; a label is shown when its box clears every label
    already shown in the row."""
    order = sorted(range(len(labels)), key=lambda i: (not keep[i], -xs[i]))
    placed: list[tuple[float, float]] = []
    out = [""] * len(labels)
    for i in order:
        if not labels[i]:
            continue
        half = len(labels[i]) * CHAR_PX / 2 + GAP_PX / 2
        lo, hi = xs[i] - half, xs[i] + half
        if all(hi <= a or lo >= b for a, b in placed):
            placed.append((lo, hi))
            out[i] = labels[i]
    return out
