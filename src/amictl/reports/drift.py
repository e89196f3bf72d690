"""The report's drift section (issue 21): what runs behind its family's channel, as a
chart (things per family, stacked by versions behind) and a table. Data from
``amictl.rollout.drift``; a section of its own so the rest of the report is untouched."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..rollout import drift as drift_mod
from . import charts


def chart(groups: list[dict[str, Any]]) -> str:
    """Stacked bars: per family, how many instances / groups / template versions run
    1, 2, 3+ versions behind its channel; ``""`` when nothing is behind."""
    hist = drift_mod.chart_data(groups)
    fams = sorted(f for f, h in hist.items() if h)
    if not fams:
        return ""
    buckets = ["1", "2", "3+"]
    counts = {b: [0] * len(fams) for b in buckets}
    for i, fam in enumerate(fams):
        for n, c in hist[fam].items():
            counts[n if int(n) < 3 else "3+"][i] += c
    fig = go.Figure()
    for i, b in enumerate(buckets):
        fig.add_bar(
            x=fams,
            y=counts[b],
            name=f"{b} version{'s' if b != '1' else ''} behind",
            marker_color=charts.PALETTE[i],
        )
    fig.update_layout(barmode="stack", yaxis_title="instances, groups, template versions")
    return charts._html(fig, "chart-drift")


def rows(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per thing behind (the HTML report's table)."""
    return list(drift_mod.rows(groups))
