"""Issue 30: a warm plan reads only what can have changed since the stored facts, and is
never less careful for it: what it reuses (launch-template versions, launch permissions)
can only keep an image, or is re-read live by apply before anything is destroyed.

One fleet, one account: a cold plan, a warm plan on the unchanged fleet (no per-resource
reads at all), then three out-of-band changes a warm plan cannot see in DescribeImages —
a launch permission added, a snapshot shared, a launch-template version added — and the
plan and apply that follow, checked in the sandbox's own state.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cli_fleet import CliFleet

PARTNER = "210987654321"
FLEET = """images:
  - {alias: a1, age_days: 300, tags: {family: app, version: '1'}}
  - {alias: a2, age_days: 250, tags: {family: app, version: '2'}}
  - {alias: a3, age_days: 200, tags: {family: app, version: '3'}}
  - {alias: a4, age_days: 10, tags: {family: app, version: '4'}}
launch_templates:
  - {alias: lt1, name: lt1, versions: [{image: a4}]}
"""
POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1, in_use: true}
    retire: {deregister: 0d, snapshots: delete}
"""
PER_RESOURCE = (
    "ec2.DescribeImageAttribute",
    "ec2.DescribeLaunchTemplateVersions",
    "ec2.DescribeSnapshotAttribute",
)


class Run(CliFleet):
    def plan(self, *extra: str) -> tuple[dict[str, Any], dict[str, int], str]:
        """The saved plan, the calls the sandbox served, and stderr (-v)."""
        (self.tmp / "p.yaml").write_text(POLICY)
        self.env.sandbox.reset_call_counts()
        out = self.tmp / "plan.json"
        code, _o, err = self.run(
            "plan", "-p", str(self.tmp / "p.yaml"), "--out", str(out), "-o", "json", "-v", *extra
        )
        assert code == 0, err
        return json.loads(out.read_text()), self.env.sandbox.aws_model_state()["calls"], err


def steps(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(a["type"], a.get("image_id"), a.get("snapshot_id")) for a in body["actions"]]


def deregistered(body: dict[str, Any]) -> set[str]:
    return {a["image_id"] for a in body["actions"] if a["type"] == "deregister"}


def test_warm_plan_reads_no_unchanged_resource_and_stays_safe(sandbox: Any, tmp_path: Path) -> None:
    run = Run(sandbox, FLEET, tmp_path)
    ids = run.ids
    cold, calls, _err = run.plan()
    assert deregistered(cold) == {ids["a1"], ids["a2"], ids["a3"]}
    assert calls["ec2.DescribeImageAttribute"] == 3  # the three it would retire
    assert calls["ec2.DescribeLaunchTemplateVersions"] == 1
    # warm, nothing changed: the listings are read again, nothing per resource
    warm, calls, err = run.plan()
    assert not [op for op in PER_RESOURCE if calls.get(op)], calls
    assert calls["ec2.DescribeImages"] >= 1 and calls["ec2.DescribeSnapshots"] >= 1
    assert steps(warm) == steps(cold)  # the same actions (the reasons say "cached")
    assert re.search(r"^phase seconds \(wall/cpu\): scan=[\d.]+/[\d.]+ decide=.* write=", err, re.M)

    # out of band: a2 shared with a partner, a1's snapshot shared, a new lt1 version on a3
    ec2 = run.env.client("ec2")
    ec2.modify_image_attribute(ImageId=ids["a2"], LaunchPermission={"Add": [{"UserId": PARTNER}]})
    a1 = ec2.describe_images(ImageIds=[ids["a1"]])["Images"][0]
    a1_snap = a1["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=a1_snap,
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=[PARTNER],
    )
    lt = ec2.describe_launch_templates(LaunchTemplateNames=["lt1"])["LaunchTemplates"][0]
    ec2.create_launch_template_version(
        LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData={"ImageId": ids["a3"]}
    )
    body, calls, _err = run.plan()
    # the new version is read (that template only, from its first unread version) and keeps a3
    assert calls.get("ec2.DescribeLaunchTemplateVersions") == 1
    assert ids["a3"] not in deregistered(body)
    # a2's sharing comes from the stored read (the plan says how old); the snapshot's
    # sharing is never read by a plan: both are apply's to read live
    assert not calls.get("ec2.DescribeImageAttribute") and not calls.get(
        "ec2.DescribeSnapshotAttribute"
    )
    assert ids["a2"] in deregistered(body)
    code, out, err = run.run("apply", str(tmp_path / "plan.json"), "--yes", "-o", "json")
    assert code in (0, 4), out + err
    # AWS's own state: the shared image and the shared snapshot are still there, a3 too;
    # a1 (private) is gone
    owned = {i["ImageId"]: i["State"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert owned.get(ids["a2"]) == "available" and owned.get(ids["a3"]) == "available"
    assert ids["a1"] not in owned
    snaps = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert a1_snap in snaps
