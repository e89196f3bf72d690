"""Attacks on `amictl report --html`: attacker-controlled AWS text (image names, tag values,
descriptions of an image shared to you) must never execute in a browser, and the file must
fetch nothing."""

from __future__ import annotations

import re

import pytest
import yaml

from amictl.reports import html
from amictl.reports.data import ReportData
from cli_fleet import CliFleet
from test_report_browser import CHROMIUM, chromium, console_lines

# Each payload, if it ever ran, logs PWNED to the console (which chromium logs to stderr).
P_IMG = "<img src=x onerror=console.error('PWNED-img')>"
P_SCRIPT = "</script><script>console.error('PWNED-script')</script>"
P_ATTR = "\"'><svg onload=console.error('PWNED-attr')>"
P_LINK = "<a href=\"javascript:console.error('PWNED-link')\">x</a>"
P_STYLE = "</style><script>console.error('PWNED-style')</script>"
P_COMMENT = "--><script>console.error('PWNED-comment')</script>"

FLEET = yaml.safe_dump(
    {
        "images": [
            {
                "alias": "a",
                "name": "web-1" + P_SCRIPT,
                "age_days": 40,
                "description": P_IMG,
                "tags": {"family": P_IMG, "version": P_LINK, "owner": P_ATTR},
                "public": True,
                "snapshots": [{"size_gib": 8}],
            },
            {
                "alias": "b",
                "name": "web-2" + P_STYLE,
                "age_days": 20,
                "source": "a",
                "description": P_COMMENT,
                "tags": {"family": P_IMG, "version": P_SCRIPT},
                "shared_with": ["999988887777"],
                "snapshots": [{"size_gib": 8}],
            },
            {
                "alias": "c",
                "name": P_ATTR,
                "age_days": 10,
                "tags": {"family": P_STYLE, "version": P_COMMENT},
                "snapshots": [{"size_gib": 4}],
            },
        ]
    }
)


@pytest.fixture(scope="module")
def evil_report(sandbox, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evil-report")
    f = CliFleet(sandbox, FLEET, tmp)
    path = tmp / "r.html"
    code, out, err = f.run("report", "--html", str(path))
    assert code == 0, out + err
    return path


def test_attacker_text_is_escaped_in_the_html(evil_report):
    html = evil_report.read_text()
    body = html.split("</head>", 1)[1]
    # the only <script> elements in the body are the charts' (Plotly's own, one per chart)
    assert body.count("<script") == 4, body.count("<script")
    for payload in (P_IMG, P_SCRIPT, P_ATTR, P_LINK, P_STYLE, P_COMMENT):
        assert payload not in html, payload
    assert "http://" not in html and "https://" not in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_nothing_executes_in_chromium(evil_report, tmp_path):
    res = chromium(evil_report, tmp_path / "profile", "--dump-dom")
    lines = console_lines(res.stderr)
    assert not [x for x in lines if "PWNED" in x], lines
    dom = res.stdout
    # no element injected from the payloads (only escaped text)
    assert not re.search(r"<svg[^>]*onload", dom)
    assert not re.search(r"<a[^>]*href=.javascript:", dom)
    assert not re.search(r"<img[^>]*onerror", dom)


@pytest.mark.parametrize(
    "plan",
    [
        {"actions": [], "summary": [1]},
        {"actions": [], "policy": "x", "summary": {"monthly_savings_usd": "<b>lots</b>"}},
        {"actions": [{"id": "a1", "reasons": [1, None, "<i>x</i>"]}]},
        {"actions": [{"id": "a1", "reasons": "<script>x</script>", "rule": {"a": "<b>"}}]},
    ],
)
def test_a_hand_made_plan_file_renders_escaped_without_a_traceback(plan):
    d = ReportData("t", "now", {}, {}, [], [], {}, [], None, plan, "file")
    out = html._plan(d)
    assert "<b>" not in out and "<i>" not in out and "<script" not in out
