"""The demo fleet's HTML report reads (issue 23 item 6), measured in headless Chromium.

The report of the built-in demo fleet, with two saved inventories of different scope (one
region, then two) and journaled actions, is rendered; a script added to the page measures
the layout in the DOM: the page's height, the boxes of the lineage chart's labels. A twin
render with every version label drawn shows that the overlap check can fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from amictl import audit, reports, tagnames
from amictl.inventory import scan
from amictl.reports import charts
from amictl.reports.data import audit_groups, journal_outcomes, with_scopes
from amictl.sandbox import builtin
from amictl.state.store import Store

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
MAX_PAGE_PX = 7000  # the demo report was ~16,000 px tall with every finding in a row

MEASURE = """
<pre id="layout-facts"></pre>
<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    function box(el) {
      var r = el.getBoundingClientRect();
      return {text: el.textContent, l: r.left, r: r.right, t: r.top, b: r.bottom};
    }
    var chart = document.getElementById("chart-lineage");
    var labels = Array.prototype.map.call(
      chart.querySelectorAll("g.textpoint text"), box).filter(function (b) {
        return b.text !== "" && b.r > b.l; });
    var ticks = Array.prototype.map.call(chart.querySelectorAll(".ytick text"), box);
    var cost = document.getElementById("chart-cost-time");
    var costTexts = Array.prototype.map.call(cost.querySelectorAll(
      ".xtick text, .ytick text, .annotation-text, .legendtext, .g-xtitle text, .g-ytitle text"),
      box).filter(function (b) { return b.text !== "" && b.r > b.l; });
    var checks = document.querySelectorAll("#audit details.check");
    var open = document.querySelectorAll("#audit details.check[open]");
    document.getElementById("layout-facts").textContent = JSON.stringify({
      height: document.documentElement.scrollHeight,
      labels: labels,
      ticks: ticks,
      lineage_box: box(chart),
      cost_texts: costTexts,
      cost_box: box(cost),
      checks: checks.length,
      open_checks: open.length,
      audit_px: document.getElementById("audit").getBoundingClientRect().height,
      journal_rows: document.querySelectorAll("#journal tbody tr").length
    });
  }, 300);
});
</script>
"""


def measure(html: str, tmp_path: Path, name: str) -> dict:
    assert CHROMIUM is not None
    page = tmp_path / f"{name}.html"
    page.write_text(html.replace("</body>", MEASURE + "</body>"))
    shot = tmp_path / f"{name}.png"
    res = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            f"--user-data-dir={tmp_path / ('profile-' + name)}",
            "--window-size=1280,2600",
            "--virtual-time-budget=8000",
            f"--screenshot={shot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    m = re.search(r'<pre id="layout-facts">(.*?)</pre>', res.stdout, re.S)
    assert m and m.group(1), res.stderr[-2000:]
    facts = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    facts["screenshot"] = str(shot)
    return facts


def overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            across = a["l"] < b["r"] - 0.5 and b["l"] < a["r"] - 0.5
            if across and a["t"] < b["b"] - 0.5 and b["t"] < a["b"] - 0.5:
                out.append((a["text"], b["text"]))
    return out


@pytest.fixture(scope="module")
def demo_report(sandbox, tmp_path_factory):
    """The demo fleet in an account of its own, scanned twice (us-east-1 only a week ago,
    both regions now), with journaled actions; its report data."""
    from conftest import Env

    env = Env(sandbox, "555000111222")
    data = builtin.demo()
    data["account"] = env.account
    ids = sandbox.load_text(json.dumps(data), "<demo fleet>")["aliases"]
    _revoke_and_scan(sandbox, env, ids)
    tmp = tmp_path_factory.mktemp("demo-report")
    store = Store(f"sqlite:///{tmp}/state.db")
    narrow = scan(env.connector(regions=["us-east-1"]))
    narrow.scanned_at = narrow.scanned_at - dt.timedelta(days=7)  # type: ignore[operator]
    store.save_inventory(narrow)
    conn = env.connector(regions=["us-east-1", "eu-west-1"])
    inv = scan(conn)
    store.save_inventory(inv)
    for n, status in enumerate(["done", "done", "skipped", "failed", "done"]):
        for st in ("intended", status):
            store.journal_write(
                plan_checksum="ab" * 32,
                action_id=f"a{n + 1}",
                type="deregister",
                account=env.account,
                region="us-east-1",
                resource=f"ami-0000000{n}",
                status=st,
                message=None if st == "intended" else f"{st} by the test",
                caller="arn:aws:sts::1:assumed-role/ops/alice",
            )
    from amictl.cli.report_cmd import build_report

    rd = build_report(
        inv,
        since="90d",
        prices_file=None,
        change_rate=0.1,
        audit_opts=audit.AuditOptions(),
        plan_file=None,
        title="amictl demo: image report",
        conn=conn,
        store=store,
    )
    return rd


# issue 28: what the lineage and version views mark. The newest web-server is revoked (the
# tag `amictl revoke` writes), Inspector scanned two images (critical, medium), one with no
# findings; every other image was never scanned.
REVOKED_ALIAS, CRITICAL_ALIAS, MEDIUM_ALIAS = "web-server-v8", "app-db-v5", "batch-worker-v6"
CLEAN_ALIAS = "base-al2023-v3"


def _revoke_and_scan(sandbox, env, ids: dict[str, str]) -> None:
    env.client("ec2").create_tags(
        Resources=[ids[REVOKED_ALIAS]],
        Tags=[
            {"Key": tagnames.REVOKED_TAG, "Value": "CVE-2026-0001 <b>openssl</b>"},
            {"Key": tagnames.REVOKED_AT_TAG, "Value": "2026-12-01T00:00:00Z"},
        ],
    )
    for alias, sev in ((CRITICAL_ALIAS, "critical"), (MEDIUM_ALIAS, "medium")):
        item = {"severity": sev, "title": f"CVE {sev}", "fix_available_days_ago": 9}
        sandbox.set_findings(ids[alias], scanned_days_ago=1, items=[item])
    sandbox.set_findings(ids[CLEAN_ALIAS], scanned_days_ago=1, items=[])


def _version(d, image_id: str) -> dict:
    return next(v for f in d.families for v in f["versions"] if v["image_id"] == image_id)


def test_report_marks_revoked_versions_and_worst_findings(demo_report):
    """The version view shows the revocation (badge, reason escaped, row struck through) and
    the worst finding per version (a badge by severity; "not scanned" stays plain, never
    clean); each family's line sums them; the lineage chart draws the revoked version as a
    red cross and the scanned ones inside a ring of their severity's colour."""
    d = demo_report
    ids = {v["image_id"]: v for f in d.families for v in f["versions"]}
    revoked = [v for v in ids.values() if v["revoked"]]
    assert [v["version"] for v in revoked] and len(revoked) == 1
    sev = {v["severity"] for v in ids.values()}
    assert sev == {None, "critical", "medium"}
    texts = {v["findings"] for v in ids.values()}
    assert {"not scanned", "no findings", "critical (fix 9d)", "medium (fix 9d)"} <= texts
    page = reports.render(d)
    lineage = page[page.index('<section id="lineage">') : page.index('<section id="drift">')]
    assert lineage.count('<tr class="revoked">') == 1
    assert "CVE-2026-0001 &lt;b&gt;openssl&lt;/b&gt;" in lineage
    assert "<b>openssl</b>" not in lineage
    assert '<span class="badge-revoked">1 revoked</span>' in lineage
    assert '<span class="sev sev-critical">critical (fix 9d)</span>' in lineage
    assert '<span class="sev sev-critical">worst finding: critical</span>' in lineage
    assert '<span class="muted">not scanned</span>' in lineage
    chart = lineage[lineage.index("Plotly.newPlot") :]
    assert '"x"' in chart and charts.REVOKED in chart  # the cross, in red
    assert charts.SEVERITY_COLOURS["critical"] in chart and '"circle-open"' in chart
    assert '"name":"revoked"' in chart and '"name":"worst finding: medium"' in chart


def test_report_data_groups_scopes_and_outcomes(demo_report):
    d = demo_report
    scopes = [p["scope"] for p in d.history]
    assert scopes == ["1 region (us-east-1)", "2 regions (eu-west-1, us-east-1)"]
    assert [p["scope_changed"] for p in d.history] == [False, True]
    # the journal: one row per action, its final status
    assert [(r["action_id"], r["status"]) for r in d.journal] == [
        ("a1", "done"),
        ("a2", "done"),
        ("a3", "skipped"),
        ("a4", "failed"),
        ("a5", "done"),
    ]
    groups = audit_groups(d.audit["findings"])
    assert sum(g["count"] for g in groups) == len(d.audit["findings"])
    assert len({g["check"] for g in groups}) == len(groups)
    html = reports.render(d)
    assert html.count('<details class="check">') == len(groups)
    journal = html[html.index('id="journal"') :]
    assert "intended" not in journal.split("</p>", 1)[1]  # no intended+done pairs


def test_journal_outcomes_keeps_an_unfinished_action_and_the_last_word():
    rows = [
        {"seq": 1, "plan_checksum": "p", "action_id": "a1", "status": "intended", "at": "1"},
        {"seq": 2, "plan_checksum": "p", "action_id": "a1", "status": "done", "at": "2"},
        {"seq": 3, "plan_checksum": "p", "action_id": "a2", "status": "intended", "at": "3"},
        {"seq": 4, "plan_checksum": "q", "action_id": "a1", "status": "intended", "at": "4"},
        {"seq": 5, "plan_checksum": "q", "action_id": "a1", "status": "failed", "at": "5"},
    ]
    out = journal_outcomes(rows)
    assert [(r["plan_checksum"], r["action_id"], r["status"]) for r in out] == [
        ("p", "a1", "done"),
        ("p", "a2", "intended"),
        ("q", "a1", "failed"),
    ]
    assert out[0]["started_at"] == "1"
    assert with_scopes([])[:1] == []


def test_fitting_labels_never_overlap():
    labels = [f"{v}.0.{v % 10}" for v in range(1, 30)]
    xs = [v * 9.0 for v in range(1, 30)]  # 9 px apart: most cannot be drawn
    keep = [v == 5 for v in range(1, 30)]
    out = charts.fitting_labels(labels, xs, keep)
    assert out[4] == labels[4] and out[-1] == labels[-1]  # the channel version, the newest
    shown = [(x, lab) for x, lab in zip(xs, out, strict=True) if lab]
    for (x1, a), (x2, b) in zip(shown, shown[1:], strict=False):
        assert x2 - x1 >= (len(a) + len(b)) * charts.CHAR_PX / 2, (a, b)


def week_of_scans() -> list[dict]:
    """Six saved inventories a day apart, the last one of two regions (its scope changed:
    the "scope changed" mark stands at the chart's right edge, on a date axis)."""
    out = []
    for n in range(6):
        regions = ["us-east-1"] + (["eu-west-1"] if n == 5 else [])
        total = 70.0 + n * 3.333333
        out.append(
            {
                "scanned_at": f"2026-12-0{n + 1}T13:30:1{n}Z",
                "regions": regions,
                "accounts": ["555000111222"],
                "full_size_usd": total,
                "estimate_usd": total / 3,
                "by_family": {"web-server": total / 2, "app-db": total / 2},
            }
        )
    return with_scopes(out)


def inside(boxes: list[dict], outer: dict) -> list[str]:
    """The texts whose box leaves ``outer`` left or right (cut at the chart's edge)."""
    return [b["text"] for b in boxes if b["l"] < outer["l"] - 0.5 or b["r"] > outer["r"] + 0.5]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make sysdeps)")
def test_demo_report_layout_in_chromium(demo_report, tmp_path, monkeypatch):
    d = dataclasses.replace(demo_report, history=week_of_scans())
    facts = measure(reports.render(d), tmp_path, "report")
    print("screenshot:", facts["screenshot"], "height:", facts["height"])
    assert Path(facts["screenshot"]).stat().st_size > 20_000
    assert facts["height"] < MAX_PAGE_PX, facts["height"]
    assert facts["checks"] >= 3 and facts["open_checks"] == 0  # grouped, details folded
    assert facts["journal_rows"] == 5
    assert len(facts["labels"]) >= len(demo_report.families)  # labels are drawn ...
    assert overlaps(facts["labels"] + facts["ticks"]) == []  # ... and none overlaps another
    assert inside(facts["labels"], facts["lineage_box"]) == []
    # cost over time: every tick, title, legend entry and the "scope changed" mark inside
    # the chart and clear of each other (they overlapped at the right edge)
    texts = facts["cost_texts"]
    assert any(b["text"] == "scope changed" for b in texts)
    assert inside(texts, facts["cost_box"]) == [] and overlaps(texts) == []
    # the twin: every version label drawn, as before; when they pile up (the demo fleet's
    # versions may fall apart by chance), the same check finds them
    monkeypatch.setattr(charts, "fitting_labels", lambda labels, _xs, _keep: labels)
    twin = measure(reports.render(d), tmp_path, "every-label")
    assert len(twin["labels"]) >= len(facts["labels"])
    box = twin["labels"][0]
    assert overlaps([box, {**box, "text": "x", "l": box["l"] + 1, "r": box["r"] + 1}]) != []


def test_each_chart_keeps_its_own_height():
    """A chart's own height wins over the common layout's 380 px: 11 families in the
    lineage get 48 px a row (at 380 px their labels piled onto the next row's points)."""
    fams = [
        {
            "label": f"fam-{n}",
            "versions": [
                {
                    "image_id": f"ami-{n:04d}",
                    "created_at": f"2026-0{1 + n % 9}-01T00:00:00Z",
                    "version": f"{n}.0.0",
                    "channels": [],
                    "state": "available",
                }
            ],
        }
        for n in range(11)
    ]
    assert '"height":618' in charts.lineage(fams).replace(" ", "")
    groups = [
        {"key": f"f{n}", "images": 1, "full_size_usd": 1.0, "standard_usd": 1.0}
        | {"archive_usd": 0.0, "estimate_usd": 0.5}
        for n in range(10)
    ]
    assert '"height":400' in charts.cost_by_family(groups).replace(" ", "")


# The report's size: plotly.js's basic bundle once (~1.2 MB) and a bounded part per image
# (the demo fleet's report was 4.9 MB with the full bundle, 1.3 MB with the basic one).
MAX_FIXED_BYTES = 1_350_000
MAX_BYTES_PER_IMAGE = 4_000


def test_report_size_is_bounded_per_image(demo_report, monkeypatch):
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    from amictl.reports import html

    size = len(reports.render(demo_report).encode())
    images = demo_report.summary["images"]
    bound = MAX_FIXED_BYTES + MAX_BYTES_PER_IMAGE * images
    print(f"report: {size:,} bytes for {images} images (bound {bound:,})")
    assert size < bound
    assert html.plotly_js().count("plotly.js (basic - minified) v") == 1  # inlined once
    bundled = html.plotly_js().split("plotly.js (basic - minified) v", 1)[1].split()[0]
    assert bundled.split(".")[0] == get_plotlyjs_version().split(".")[0]
    # the twin: the full bundle, as before, breaks the bound
    html.plotly_js.cache_clear()
    monkeypatch.setattr(html, "plotly_js", lambda: str(get_plotlyjs()))
    assert len(reports.render(demo_report).encode()) > bound
