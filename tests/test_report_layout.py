"""The demo fleet's HTML report reads (issue 23 item 6), measured in headless Chromium.

The report of the built-in demo fleet, with two saved inventories of different scope (one
region, then two) and journaled actions, is rendered; a script added to the page measures
the layout in the DOM: the page's height, the boxes of the lineage chart's labels. A twin
render with every version label drawn shows that the overlap check can fail.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from amictl import audit, reports
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
    var checks = document.querySelectorAll("#audit details.check");
    var open = document.querySelectorAll("#audit details.check[open]");
    document.getElementById("layout-facts").textContent = JSON.stringify({
      height: document.documentElement.scrollHeight,
      labels: labels,
      ticks: ticks,
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
    sandbox.load_text(json.dumps(data), "<demo fleet>")
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


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make sysdeps)")
def test_demo_report_layout_in_chromium(demo_report, tmp_path, monkeypatch):
    facts = measure(reports.render(demo_report), tmp_path, "report")
    print("screenshot:", facts["screenshot"], "height:", facts["height"])
    assert Path(facts["screenshot"]).stat().st_size > 20_000
    assert facts["height"] < MAX_PAGE_PX, facts["height"]
    assert facts["checks"] >= 3 and facts["open_checks"] == 0  # grouped, details folded
    assert facts["journal_rows"] == 5
    assert len(facts["labels"]) >= len(demo_report.families)  # labels are drawn ...
    assert overlaps(facts["labels"] + facts["ticks"]) == []  # ... and none overlaps another
    # the twin: every version label drawn, as before; when they pile up (the demo fleet's
    # versions may fall apart by chance), the same check finds them
    monkeypatch.setattr(charts, "fitting_labels", lambda labels, _xs, _keep: labels)
    twin = measure(reports.render(demo_report), tmp_path, "every-label")
    assert len(twin["labels"]) >= len(facts["labels"])
    box = twin["labels"][0]
    assert overlaps([box, {**box, "text": "x", "l": box["l"] + 1, "r": box["r"] + 1}]) != []
