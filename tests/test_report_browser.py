"""The HTML report in a real browser: Debian's chromium, headless, offline.

It renders the report, saves a screenshot under the test's tmp dir, and checks from the
DOM it dumps that every chart drew (SVG traces with non-empty paths) and from its log
that no console message (error or otherwise) and no uncaught exception came up.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_fleet import report_fleet  # noqa: F401  (a session fixture)

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (`make sysdeps` installs it)"
)
CHARTS = ("chart-cost-family", "chart-cost-time", "chart-age", "chart-lineage")


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=8000",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def console_lines(stderr: str) -> list[str]:
    """Console messages and uncaught errors chromium logs (``INFO:CONSOLE(...)``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def drawn(dom: str) -> dict[str, tuple[int, int]]:
    """chart id -> (SVG traces, non-empty paths inside them)."""
    found = [(m.start(), m.group(1)) for m in re.finditer(r'<div id="(chart-[a-z-]+)"', dom)]
    out = {}
    for i, (start, cid) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else len(dom)
        part = dom[start:end]
        traces = re.findall(r'<g class="trace [^"]*"', part)
        paths = re.findall(r'<path[^>]*\sd="M[^"]+"', part)
        out[cid] = (len(traces), len(paths))
    return out


def test_report_renders_in_chromium(report_fleet, tmp_path):  # noqa: F811
    page = tmp_path / "report.html"
    page.write_text(report_fleet.html)
    shot = tmp_path / "report.png"
    res = chromium(
        page, tmp_path / "profile", "--window-size=1280,2600", f"--screenshot={shot}", "--dump-dom"
    )
    assert shot.exists() and shot.stat().st_size > 20_000, res.stderr[-2000:]
    assert console_lines(res.stderr) == []
    charts = drawn(res.stdout)
    assert set(charts) == set(CHARTS)
    for cid, (traces, paths) in charts.items():
        assert traces >= 1 and paths >= 1, (cid, traces, paths)
    assert 'class="main-svg"' in res.stdout
    # the cost chart draws its stacked bars, the age chart its histogram bars
    for cid in ("chart-cost-family", "chart-age"):
        part = res.stdout[res.stdout.index(f'<div id="{cid}"') :]
        assert '<g class="trace bars"' in part.split('<div id="chart-', 2)[1]


def test_the_console_check_catches_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('boom'); missing();</script></body></html>")
    res = chromium(page, tmp_path / "p")
    lines = console_lines(res.stderr)
    assert any("boom" in x for x in lines) and any("missing" in x for x in lines)
    assert drawn('<div id="chart-x"><svg></svg></div>') == {"chart-x": (0, 0)}
