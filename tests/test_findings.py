"""Amazon Inspector findings (issue 28): the sandbox's GetImageFindings / ScanResults set
per image, the gates max_severity and max_days_fix_available, versions/show, stale
--findings and the Allowed AMIs ScanResultCondition."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from amictl.findings import NOT_SCANNED, summary
from amictl.governance.allowed import criterion_allows
from cli_fleet import CliFleet

FLEET = """
images:
  - {alias: web-1, name: web-1, age_days: 30, tags: {family: web, version: "1.0.0"},
     findings: {scanned_days_ago: 1, items: [{severity: medium}]}}
  - {alias: web-2, name: web-2, age_days: 5, tags: {family: web, version: "2.0.0"},
     findings: {scanned_days_ago: 0, items: [
       {severity: critical, title: CVE-2026-1, fix_available_days_ago: 12},
       {severity: low, fix_available_days_ago: 2}]}}
  - {alias: web-3, name: web-3, age_days: 1, tags: {family: web, version: "3.0.0"}}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: web-2}
"""
GATES = "channels:\n  prod:\n    max_severity: high\n"


@pytest.fixture
def fleet(sandbox: Any, tmp_path: Path) -> CliFleet:
    return CliFleet(sandbox, FLEET, tmp_path)


def test_sandbox_answers_findings_like_aws(fleet: CliFleet) -> None:
    ec2 = fleet.env.client("ec2")
    got = ec2.get_image_findings(ImageId=fleet.ids["web-2"])["ImageFindings"]
    assert sorted(f["SeverityLabel"] for f in got) == ["critical", "low"]
    assert all(f["FixAvailable"] for f in got)
    pages = list(
        ec2.get_paginator("get_image_findings").paginate(
            ImageId=fleet.ids["web-2"], PaginationConfig={"PageSize": 1}
        )
    )
    assert [len(p["ImageFindings"]) for p in pages] == [1, 1]
    assert ec2.get_image_findings(ImageId=fleet.ids["web-3"])["ImageFindings"] == []
    imgs = {
        i["ImageId"]: i
        for i in ec2.describe_images(ImageIds=[fleet.ids[a] for a in ("web-2", "web-3")])["Images"]
    }
    res = imgs[fleet.ids["web-2"]]["ScanResults"]
    assert res["HighestFindingSeverityLabel"] == "critical"
    assert (dt.datetime.now(dt.UTC) - res["CriticalFixAvailableSince"]).days == 12
    assert "ScanResults" not in imgs[fleet.ids["web-3"]]  # never scanned: nothing, not clean
    with pytest.raises(Exception, match="NotFound"):
        ec2.get_image_findings(ImageId="ami-0123456789abcdef0")


def test_scan_result_condition_is_evaluated(fleet: CliFleet) -> None:
    ec2 = fleet.env.client("ec2")
    at = dt.datetime.now(dt.UTC)
    imgs = {i["ImageId"]: i for i in ec2.describe_images(Owners=["self"])["Images"]}
    cond = {"ScanResultCondition": {"MaximumSeverityLabel": "high"}}
    allowed = {
        a: criterion_allows(imgs[fleet.ids[a]], cond, at) for a in ("web-1", "web-2", "web-3")
    }
    assert allowed == {"web-1": True, "web-2": False, "web-3": False}  # unscanned: never


def test_versions_and_show_print_findings(fleet: CliFleet) -> None:
    rows = fleet.json("versions", "web")
    by = {r["version"]: r["findings"] for r in rows}
    assert by == {"1.0.0": "medium", "2.0.0": "critical (fix 12d)", "3.0.0": NOT_SCANNED}
    data = fleet.json("show", fleet.ids["web-3"])
    assert data["findings"] == NOT_SCANNED and data["findings_detail"]["scanned"] is False


def test_gate_max_severity_refuses_then_accepts_once_cleared(
    fleet: CliFleet, sandbox: Any, tmp_path: Path
) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text(GATES)
    code, _, err = fleet("promote", "web", "2.0.0", "--channel", "prod", "--gates", str(gates))
    assert code == 3 and "max_severity high" in err and "critical" in err, err
    code, _, err = fleet("promote", "web", "3.0.0", "--channel", "prod", "--gates", str(gates))
    assert code == 3 and NOT_SCANNED in err, err  # unscanned is never clean
    sandbox.set_findings(fleet.ids["web-2"], items=[])  # the fix was applied, rescanned
    code, out, err = fleet("promote", "web", "2.0.0", "--channel", "prod", "--gates", str(gates))
    assert code == 0, out + err


def test_gate_max_days_fix_available(fleet: CliFleet, tmp_path: Path) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text("channels:\n  beta:\n    max_days_fix_available: 7\n")
    code, _, err = fleet("promote", "web", "2.0.0", "--channel", "beta", "--gates", str(gates))
    assert code == 3 and "12 days" in err, err
    code, out, err = fleet("promote", "web", "1.0.0", "--channel", "beta", "--gates", str(gates))
    assert code == 0, out + err  # a medium finding without a fix


def test_bad_gate_keys_name_file_and_line(fleet: CliFleet, tmp_path: Path) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text("channels:\n  prod:\n    max_severity: awful\n")
    code, _, err = fleet("promote", "web", "1.0.0", "--channel", "prod", "--gates", str(gates))
    assert code == 2 and "gates.yaml:3" in err and "max_severity" in err, err


def test_summary_never_calls_unscanned_clean() -> None:
    assert summary(None).text == NOT_SCANNED
    assert summary({"FindingScanDate": "2026-01-01T00:00:00Z"}).text == "no findings"


def test_stale_findings_lists_channel_images_and_strict_fails(
    fleet: CliFleet, sandbox: Any
) -> None:
    rows = fleet.json("stale", "--days", "1000", "--findings", "high")
    assert [(r["kind"], r["image_id"]) for r in rows] == [("findings", fleet.ids["web-2"])]
    assert "critical (fix 12d)" in rows[0]["detail"]
    code, _, err = fleet("stale", "--days", "1000", "--findings", "high", "--strict")
    assert code == 1, err
    assert fleet.json("stale", "--days", "1000", "--findings", "critical") == rows
    sandbox.set_findings(fleet.ids["web-2"], unscanned=True)
    rows = fleet.json("stale", "--days", "1000", "--findings", "critical")
    assert [r["kind"] for r in rows] == ["not-scanned"]
    sandbox.set_findings(fleet.ids["web-2"], items=[{"severity": "medium"}])
    assert fleet.json("stale", "--days", "1000", "--findings", "high") == []
    code, _, err = fleet("stale", "--findings", "awful")
    assert code == 2 and "--findings" in err


def test_allowed_images_set_adds_a_scan_result_condition(fleet: CliFleet) -> None:
    code, out, err = fleet(
        "allowed-images",
        "set",
        "--from-channels",
        "--mode",
        "audit-mode",
        "--scan-max-severity",
        "high",
        "--scan-max-age",
        "7",
        "--yes",
    )
    assert code == 0, out + err
    crit = fleet.env.client("ec2").get_allowed_images_settings()["ImageCriteria"]
    assert crit and all(
        c["ScanResultCondition"]
        == {"MaximumSeverityLabel": "high", "MaxDaysSinceLastFindingScan": 7}
        for c in crit
    )
    code, _, err = fleet(
        "allowed-images",
        "set",
        "--from-channels",
        "--mode",
        "audit-mode",
        "--scan-max-severity",
        "worst",
        "--yes",
    )
    assert code == 2 and "--scan-max-severity" in err
