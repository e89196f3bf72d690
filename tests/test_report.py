"""report --html: sections, one self-contained file without any URL, escaping, plan, journal."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import pytest

from amictl.state.store import Store
from cli_fleet import EVIL, report_fleet  # noqa: F401  (a session fixture)


@pytest.fixture
def fleet(report_fleet):  # noqa: F811
    return report_fleet


class Refs(HTMLParser):
    """Every attribute that makes a browser fetch something, and every script."""

    def __init__(self) -> None:
        super().__init__()
        self.fetching: list[tuple[str, str, str]] = []
        self.scripts = 0
        self.inline_scripts = 0

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "srcset", "data", "action", "poster") and v:
                self.fetching.append((tag, k, v))
        if tag == "script":
            self.scripts += 1
            self.inline_scripts += not dict(attrs).get("src")
        if tag == "link":
            self.fetching.append((tag, "link", str(attrs)))


def test_no_external_url_anywhere(fleet):
    text = fleet.html
    # no URL a browser would fetch: src/href/... attributes, CSS url(), @import, and none at all
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text, re.I) and "@import" not in text
    assert "http://" not in text and "https://" not in text
    refs = Refs()
    refs.feed(text)
    assert all(v.startswith("#") for _t, _k, v in refs.fetching), refs.fetching
    assert refs.scripts == refs.inline_scripts >= 5  # plotly.js once + one per chart


def test_sections_charts_and_figures(fleet):
    text, out = fleet.html, fleet.out
    for sid in ("summary", "cost", "history", "ages", "lineage", "audit", "plan", "journal"):
        assert f'id="{sid}"' in text
    for chart in ("chart-cost-family", "chart-cost-time", "chart-age", "chart-lineage"):
        assert f'id="{chart}"' in text
    assert text.count("Plotly.newPlot") == 4
    assert out["bytes"] == len(text.encode()) and out["path"] == str(fleet.path)
    # 8+10+10+12 (+4 evil) GiB standard, 20 archive, 6 orphaned: full size
    assert out["monthly_full_size_usd"] == pytest.approx(44 * 0.05 + 20 * 0.0125 + 6 * 0.05)
    assert out["history_points"] >= 2
    assert out["findings"]["critical"] == 1  # web-2 is public
    assert "upper bound" in text and "shared-block estimate" in text
    ids = fleet.ids
    # lineage: which version came from which base, the channel on it
    lineage = text[text.index('id="lineage"') : text.index('id="audit"')]
    assert ids["web-2"] in lineage and "web-1 (1)" in lineage and "base-1 (1)" in lineage
    assert "prod" in lineage
    audit = text[text.index('id="audit"') : text.index('id="plan"')]
    assert ids["web-2"] in audit and "public-image" in audit and "amictl unshare" in audit


def test_text_from_aws_is_escaped(fleet):
    assert EVIL not in fleet.html
    assert html.escape(EVIL) in fleet.html


def test_plan_and_journal_sections(fleet, tmp_path):
    plan = {
        "format": 1,
        "created_at": "2026-11-26T10:00:00Z",
        "policy": {"path": "lifecycle.yaml"},
        "summary": {"deregister": 1, "monthly_savings_usd": 0.5},
        "actions": [
            {
                "id": "a1",
                "type": "deregister",
                "region": "us-east-1",
                "image_id": "ami-0feed",
                "rule": "retire-old",
                "reasons": ["older than 30d"],
            }
        ],
    }
    store = Store(fleet.vars["AMICTL_STATE"])
    store.save_plan("c0ffee" * 10 + "abcd", plan)
    store.journal_write(
        plan_checksum="c0ffee" * 10 + "abcd",
        action_id="a1",
        type="deregister",
        account=fleet.env.account,
        region="us-east-1",
        resource="ami-0feed",
        status="done",
        caller="arn:aws:sts::1:assumed-role/ops/alice",
    )
    mine = tmp_path / "with-plan.html"
    out = fleet.write("--from-state", "--no-audit", path=mine)
    text = mine.read_text()
    section = text[text.index('id="plan"') : text.index('id="journal"')]
    assert "ami-0feed" in section and "retire-old" in section and "c0ffeec0ffee" in section
    assert out["plan"].startswith("state store, plan c0ffeec0ffee")
    journal = text[text.index('id="journal"') :]
    assert "ami-0feed" in journal and "alice" in journal
    assert out["findings"] is None and "the audit was not run" in text
    other = tmp_path / "plan.json"
    other.write_text(
        json.dumps({**plan, "actions": [{**plan["actions"][0], "image_id": "ami-0beef"}]})
    )
    out = fleet.write("--from-state", "--no-audit", "--plan", str(other), path=mine)
    assert out["plan"] == str(other) and "ami-0beef" in mine.read_text()


def test_bad_input_exits_2(fleet, tmp_path):
    code, _o, err = fleet.run("report", "--html", str(tmp_path / "no" / "r.html"), "--from-state")
    assert code == 2 and "no such directory" in err
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    code, _o, err = fleet.run("report", "--html", str(tmp_path / "r.html"), "--plan", str(bad))
    assert code == 2 and "plan.json" in err
    code, _o, err = fleet.run("report", "--html", str(tmp_path / "r.html"), "--since", "x")
    assert code == 2 and "--since" in err
    assert not (tmp_path / "r.html").exists()
