"""Amazon Inspector findings on AMIs (issue 28), which moto lacks:

* GetImageFindings: the findings of a scanned image (``ImageFindings``: SeverityLabel,
  Score, Title, FixAvailable, FirstObservedAt, UpdatedAt), paginated (MaxResults 1-1000,
  NextToken); an image never scanned answers no findings, as AWS does.
* DescribeImages ``ScanResults`` on a scanned image: HighestFindingSeverityLabel,
  FindingScanDate and ``<Severity>FixAvailableSince`` (the earliest time a fix became
  available for a finding of that severity). An unscanned image has no ScanResults.
* The Allowed AMIs ``ScanResultCondition`` (patches/governance.py calls
  :func:`scan_result_ok`): an image not scanned never meets it; MaximumSeverityLabel,
  MaxDaysSinceLastFindingScan and MaxDaysSince<Severity>FixAvailable as the ImageCriterion
  page documents them.

Findings are set per image through the control API (``POST /_amictl/findings``,
``Sandbox.set_findings``) or a fleet file (``findings:`` on an image, docs/fleet.md).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses.amis import AmisResponse

from .helpers import err, now, patch

SEVERITIES = ("informational", "low", "medium", "high", "critical")
# image id -> {"scanned_at": datetime, "findings": [{severity, title, score, fix_since, first}]}
FINDINGS: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def _days(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ValueError(f"expected a number of days >= 0, got {v!r}")
    return float(v)


def parse(body: dict[str, Any], at: dt.datetime | None = None) -> dict[str, Any]:
    """``{scanned_days_ago: 0, items: [{severity, title, score, fix_available_days_ago,
    first_observed_days_ago}]}`` -> the stored form; ValueError names the bad key."""
    at = at or now()
    unknown = set(body) - {"scanned_days_ago", "items"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (scanned_days_ago, items)")
    items = body.get("items") or []
    if not isinstance(items, list):
        raise ValueError("items: expected a list of findings")
    out = []
    for n, f in enumerate(items):
        if not isinstance(f, dict):
            raise ValueError(f"items[{n}]: expected a mapping")
        bad = set(f) - {
            "severity",
            "title",
            "score",
            "fix_available_days_ago",
            "first_observed_days_ago",
        }
        if bad:
            raise ValueError(f"items[{n}]: unknown key {sorted(bad)[0]!r}")
        sev = str(f.get("severity", "")).lower()
        if sev not in SEVERITIES:
            raise ValueError(f"items[{n}].severity: expected one of {', '.join(SEVERITIES)}")
        fix = f.get("fix_available_days_ago")
        first = _days(f.get("first_observed_days_ago", 0))
        out.append(
            {
                "severity": sev,
                "title": str(f.get("title") or f"CVE-sandbox-{n}"),
                "score": float(f.get("score", SEVERITIES.index(sev) * 2.5)),
                "fix_since": None if fix is None else at - dt.timedelta(days=_days(fix)),
                "first": at - dt.timedelta(days=first),
            }
        )
    return {
        "scanned_at": at - dt.timedelta(days=_days(body.get("scanned_days_ago", 0))),
        "findings": out,
    }


def control(data: dict[str, Any]) -> dict[str, Any]:
    """The control API: ``{image_id, scanned_days_ago, items}`` sets an image's scan (an
    empty ``items`` list: scanned, clean); ``{image_id, unscanned: true}`` forgets it;
    ``{reset: true}`` forgets every scan."""
    with _lock:
        if data.get("reset"):
            FINDINGS.clear()
            return {"images": 0}
        iid = str(data.get("image_id") or "")
        if not iid.startswith("ami-"):
            raise ValueError("image_id: expected an AMI id")
        if data.get("unscanned"):
            FINDINGS.pop(iid, None)
        else:
            FINDINGS[iid] = parse({k: v for k, v in data.items() if k != "image_id"})
        return {"images": len(FINDINGS)}


def set_image(image_id: str, body: dict[str, Any]) -> None:
    """A fleet file's ``findings:`` (already checked by :func:`parse`)."""
    with _lock:
        FINDINGS[image_id] = parse(body)


def scan_results(image_id: str) -> dict[str, Any] | None:
    scan = FINDINGS.get(image_id)
    if scan is None:
        return None
    out: dict[str, Any] = {"FindingScanDate": scan["scanned_at"]}
    sevs = [f["severity"] for f in scan["findings"]]
    if sevs:
        out["HighestFindingSeverityLabel"] = max(sevs, key=SEVERITIES.index)
    for sev in SEVERITIES:
        since = [
            f["fix_since"] for f in scan["findings"] if f["severity"] == sev and f["fix_since"]
        ]
        if since:
            out[f"{sev.capitalize()}FixAvailableSince"] = min(since)
    return out


def scan_result_ok(image_id: str, cond: dict[str, Any], at: dt.datetime) -> bool:
    """An image meets a ScanResultCondition (never when it was not scanned)."""
    res = scan_results(image_id)
    if res is None:
        return False
    days = cond.get("MaxDaysSinceLastFindingScan")
    if days is not None and (at - res["FindingScanDate"]).total_seconds() / 86400 > int(days):
        return False
    top = cond.get("MaximumSeverityLabel")
    worst = res.get("HighestFindingSeverityLabel")
    if top and worst and SEVERITIES.index(worst) > SEVERITIES.index(top):
        return False
    for sev in SEVERITIES:
        limit = cond.get(f"MaxDaysSince{sev.capitalize()}FixAvailable")
        since = res.get(f"{sev.capitalize()}FixAvailableSince")
        if limit is not None and since is not None and (at - since).days > int(limit):
            return False
    return True


@patch(
    "GetImageFindings and DescribeImages ScanResults: Amazon Inspector findings per image, "
    "none for an image never scanned"
)
def image_findings() -> None:
    def get_findings(self: Any) -> ActionResult:
        self.error_on_dryrun()
        image_id = self._get_param("ImageId")
        if not image_id:
            raise err("MissingParameter", "The request must contain the parameter ImageId")
        if not self.ec2_backend.describe_images(ami_ids=[image_id]):  # raises NotFound
            raise err("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
        size = int(self._get_param("MaxResults") or 1000)
        if not 1 <= size <= 1000:
            raise err("InvalidParameterValue", "MaxResults must be between 1 and 1000")
        start = int(self._get_param("NextToken") or 0)
        scan = FINDINGS.get(image_id) or {"findings": []}
        page = scan["findings"][start : start + size]
        out: dict[str, Any] = {
            "ImageFindings": [
                {
                    "SeverityLabel": f["severity"],
                    "Title": f["title"],
                    "Score": f["score"],
                    "FixAvailable": f["fix_since"] is not None,
                    "FirstObservedAt": f["first"],
                    "UpdatedAt": scan.get("scanned_at"),
                }
                for f in page
            ]
        }
        if start + size < len(scan["findings"]):
            out["NextToken"] = str(start + size)
        return ActionResult(out)

    AmisResponse.get_image_findings = get_findings  # type: ignore[attr-defined]

    orig_response = AmisResponse.describe_images

    def describe_images_response(self: Any) -> Any:
        result: Any = orig_response(self)
        for view in result.result.get("Images", []):
            res = scan_results(view["ImageId"])
            if res is not None:
                view["ScanResults"] = res
        return result

    AmisResponse.describe_images = describe_images_response  # type: ignore[method-assign]
