"""The HTML report (``amictl report --html FILE``): fleet summary, cost by family and over
time, age distribution, lineage per family, audit findings, the latest plan and the
journal's last actions, in one self-contained file. A library: it never prints."""

from __future__ import annotations

import os
import tempfile

from .data import ReportData, build, latest_stored_plan, load_plan_file
from .html import render


def write(path: str, data: ReportData) -> int:
    """Write the report atomically (a temporary file renamed over ``path``); its size."""
    text = render(data)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".amictl-report-", suffix=".html", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(text.encode("utf-8"))


__all__ = ["ReportData", "build", "latest_stored_plan", "load_plan_file", "render", "write"]
