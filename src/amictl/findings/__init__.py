"""Amazon Inspector's findings on images (issue 28): the worst severity and how long a
fix has been available, from DescribeImages ``ScanResults`` (kept on ``Image.scan_results``)
and GetImageFindings. An image Inspector never scanned is *not scanned*, never "clean".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..errors import InputError
from ..model import iso, parse_time

SEVERITIES = ("informational", "low", "medium", "high", "critical")
NOT_SCANNED = "not scanned"
PERMISSIONS = frozenset({"ec2:DescribeImages", "ec2:GetImageFindings"})


def check_severity(value: str, key: str) -> str:
    v = value.strip().lower()
    if v not in SEVERITIES:
        raise InputError(f"{value!r}: expected one of {', '.join(SEVERITIES)}", key=key)
    return v


def scan_results(data: dict[str, Any] | None) -> dict[str, str] | None:
    """DescribeImages' ``ScanResults`` with its times as ISO text (None: not scanned)."""
    if not data or not data.get("FindingScanDate"):
        return None
    return {
        k: (iso(parse_time(v)) or "") if k != "HighestFindingSeverityLabel" else str(v)
        for k, v in data.items()
    }


@dataclass(frozen=True)
class Summary:
    scanned: bool
    worst: str | None = None  # None: scanned, no findings
    fix_days: int | None = None  # days since a fix became available for any finding
    scanned_at: str | None = None

    @property
    def text(self) -> str:
        if not self.scanned:
            return NOT_SCANNED
        if self.worst is None:
            return "no findings"
        return self.worst + (f" (fix {self.fix_days}d)" if self.fix_days is not None else "")

    def at_least(self, severity: str) -> bool:
        return self.worst is not None and SEVERITIES.index(self.worst) >= SEVERITIES.index(severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "worst_severity": self.worst,
            "days_fix_available": self.fix_days,
            "scanned_at": self.scanned_at,
        }


def summary(results: dict[str, str] | None, now: dt.datetime | None = None) -> Summary:
    """The summary of an image's scan results (``Image.scan_results``)."""
    if not results:
        return Summary(False)
    now = now or dt.datetime.now(dt.UTC)
    since = [
        parse_time(results[f"{s.capitalize()}FixAvailableSince"])
        for s in SEVERITIES
        if results.get(f"{s.capitalize()}FixAvailableSince")
    ]
    first = min((s for s in since if s is not None), default=None)
    return Summary(
        True,
        results.get("HighestFindingSeverityLabel") or None,
        (now - first).days if first else None,
        results.get("FindingScanDate"),
    )


def worst_of(summaries: list[Summary]) -> Summary:
    """The worst of several copies' summaries (any copy not scanned: not scanned)."""
    if not summaries or any(not s.scanned for s in summaries):
        return Summary(False)
    worst = max(
        summaries, key=lambda s: (SEVERITIES.index(s.worst) if s.worst else -1, s.fix_days or 0)
    )
    days = max((s.fix_days for s in summaries if s.fix_days is not None), default=None)
    return Summary(True, worst.worst, days, worst.scanned_at)


def image_findings(conn: Connector, target: Target, image_id: str) -> list[dict[str, Any]]:
    """Every finding GetImageFindings lists for the image (none when it was not scanned)."""
    ec2 = conn.client("ec2", target.region, target.role_arn)
    out: list[dict[str, Any]] = []
    try:
        for page in ec2.get_paginator("get_image_findings").paginate(ImageId=image_id):
            out.extend(page.get("ImageFindings") or [])
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "GetImageFindings", target.region) from None
    return out


def condition_met(results: dict[str, Any] | None, cond: dict[str, Any], at: dt.datetime) -> bool:
    """Whether an image's DescribeImages ``ScanResults`` meet an Allowed AMIs
    ``ScanResultCondition`` as the ImageCriterion page documents it: an image not scanned
    never does."""
    res = scan_results(results)
    if res is None:
        return False
    scanned = parse_time(res["FindingScanDate"])
    days = cond.get("MaxDaysSinceLastFindingScan")
    if days is not None and (scanned is None or (at - scanned).days > int(days)):
        return False
    top, worst = cond.get("MaximumSeverityLabel"), res.get("HighestFindingSeverityLabel")
    if top and worst and SEVERITIES.index(worst) > SEVERITIES.index(str(top)):
        return False
    for sev in SEVERITIES:
        limit = cond.get(f"MaxDaysSince{sev.capitalize()}FixAvailable")
        since = parse_time(res.get(f"{sev.capitalize()}FixAvailableSince"))
        if limit is not None and since is not None and (at - since).days > int(limit):
            return False
    return True


def scan_condition(max_severity: str | None, max_age: int | None) -> dict[str, Any] | None:
    """An Allowed AMIs ScanResultCondition (``allowed-images set --scan-max-*``)."""
    out: dict[str, Any] = {}
    if max_severity:
        out["MaximumSeverityLabel"] = check_severity(max_severity, "--scan-max-severity")
    if max_age is not None:
        out["MaxDaysSinceLastFindingScan"] = max_age
    return out or None
