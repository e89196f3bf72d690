"""Round 8 attacks (hostile4): this session's speed work (issue 30) against the old code
(commit 368d2c7). Two got through and are fixed: the age limit across a DST change (the
Selector's cutoff is computed in UTC) and a mistyped kept page (a slice that fails on a
shape error after kept pages answered is read again with every page parsed)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from amictl.keep import decide as keep_decide
from amictl.model import Image
from amictl.policy.model import Rule, Select
from cli_fleet import CliFleet, run_or_traceback

LONDON = ZoneInfo("Europe/London")


def test_older_than_across_dst_is_the_old_verdict() -> None:
    """now in BST (+1), 30 days back is GMT (+0): the old code measured elapsed time."""
    now = dt.datetime(2026, 3, 30, 12, 0, tzinfo=LONDON)  # 11:00Z
    older = dt.timedelta(days=30)
    created = dt.datetime(2026, 2, 28, 11, 30, tzinfo=dt.UTC)  # 29 days 23.5 hours old
    rule = Rule("r", select=Select(families=("*",), older_than=older))
    img = Image("ami-1", "1", "r", owner_id="1", created_at=created, family="web")
    old = not (now - created < older)  # 368d2c7's selects()
    assert old is False
    assert keep_decide.selects(rule, img, now) is old


# ---------------------------------------------------------------- kept, projected pages

FLEET = """regions: [us-east-1]
images:
  - {alias: a, name: app-1, age_days: 90, tags: {family: app, version: "1"}}
instances:
  - {alias: i, image: a, tags: {Name: web}}
"""


_run = run_or_traceback


@pytest.mark.parametrize(
    "instance",
    [
        pytest.param({"InstanceId": "i-1", "ImageId": "ami-1", "State": "running"}, id="state"),
        pytest.param(
            {"InstanceId": "i-1", "ImageId": "ami-1", "State": {"Name": "running"}, "Tags": 7},
            id="tags",
        ),
    ],
)
def test_a_mistyped_kept_instance_page_is_a_miss(
    sandbox: Any, tmp_path: Path, instance: dict[str, Any]
) -> None:
    f = CliFleet(sandbox, FLEET, tmp_path)
    assert _run(f, "inventory", "-o", "json")[0] == 0
    kept = sorted((f.tmp / "amictl" / "pages").glob("DescribeInstancesResult-*.json"))
    assert kept
    for page in kept:
        page.write_text(json.dumps({"Reservations": [{"Instances": [instance]}]}))
    code, text = _run(f, "inventory", "-o", "json")
    assert code == 0, text
    out = json.JSONDecoder().raw_decode(text)[0]
    assert out["incomplete"] == [], out["incomplete"]


IN_USE_FLEET = """regions: [us-east-1]
images:
  - {alias: a, name: app-1, age_days: 90, tags: {family: app, version: "1"}}
  - {alias: b, name: app-2, age_days: 1, tags: {family: app, version: "2"}}
instances:
  - {alias: i, image: a, tags: {Name: web}}
"""

IN_USE_POLICY = """format: 1
name: p
rules:
  - name: app
    select: {families: ["*"]}
    keep: {in_use: true, latest: 1}
    retire: {deregister: 0d, snapshots: keep}
"""


def test_apply_p_never_trusts_a_forged_projected_instance_page(
    sandbox: Any, tmp_path: Path
) -> None:
    """`apply -p` plans with kept pages on: the kept (projected) DescribeInstances page is
    forged to hold no instance. app-1, which an instance runs, stays: the plan still finds
    it in use (DescribeImageReferences) and apply's live view reads every page afresh.
    A guard: holds on main."""
    f = CliFleet(sandbox, IN_USE_FLEET, tmp_path)
    pol = tmp_path / "p.yml"
    pol.write_text(IN_USE_POLICY)
    assert _run(f, "plan", "-p", str(pol), "-o", "json")[0] == 0  # keeps its pages
    kept = sorted((f.tmp / "amictl" / "pages").glob("DescribeInstancesResult-*.json"))
    assert kept
    for page in kept:
        page.write_text(json.dumps({"Reservations": []}))
    code, text = _run(f, "apply", "-p", str(pol), "--yes", "-o", "json")
    assert code == 0, text
    live = f.env.client("ec2").describe_images(ImageIds=[f.ids["a"]])["Images"]
    assert [i["State"] for i in live] == ["available"]
    assert not any(t["Key"].startswith("amictl:") for t in live[0].get("Tags", []))
