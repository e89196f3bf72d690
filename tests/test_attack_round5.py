"""Round 5 of hostile attacks on the issue 27/28 features (rollout, allowed-images, revoke,
approvals). Each test checks the OUTCOME in AWS (DescribeAutoScalingGroups,
DescribeLaunchTemplateVersions, DescribeInstances), not amictl's words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_fleet import CliFleet

FAST = ["--yes", "--poll", "0", "--canary-wait", "0", "--canary", "50%"]


def _lt_data(f: CliFleet, tid: str, version: str) -> dict[str, Any]:
    (v,) = f.env.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=tid, Versions=[version]
    )["LaunchTemplateVersions"]
    return dict(v["LaunchTemplateData"])


def _mixed_launches(f: CliFleet, asg: str) -> dict[str, Any]:
    """What a group with a MixedInstancesPolicy launches: its template's version resolved."""
    (g,) = f.env.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])[
        "AutoScalingGroups"
    ]
    spec = g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    return _lt_data(f, spec["LaunchTemplateId"], spec.get("Version") or "$Default")


MIXED = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
launch_templates:
  - {alias: lt, name: web-shared, versions: [{image: w1}], tags: {"amictl:family": web}}
auto_scaling_groups:
  - {alias: a, name: web-a, launch_template: lt, version: "$Default", desired: 1}
  - {alias: m, name: web-mixed, mixed: {launch_template: lt, version: "$Default"}, desired: 1}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2}
"""


def test_rollout_moves_a_mixed_instances_group_it_does_not_name(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: group web-mixed launches $Default of the family's template through a
    MixedInstancesPolicy (not the group's LaunchTemplate field). `rollout web --channel prod`
    makes a new default version, so web-mixed now launches the channel's image without a
    refresh, and neither the plan, the bystander check nor the report names it.
    Safe outcome: the rollout is refused (exit 3) naming web-mixed as a group it would move
    unasked (as for an ordinary $Default group), or web-mixed is part of the rollout; in
    either case web-mixed must not end up launching a changed version silently."""
    f = CliFleet(sandbox, MIXED, tmp_path)
    before = _mixed_launches(f, "web-mixed")
    assert before["ImageId"] == f.ids["w1"]
    code, out, err = f("rollout", "web", "--channel", "prod", "--wait", *FAST, "-o", "json")
    after = _mixed_launches(f, "web-mixed")
    if code == 3:
        assert "web-mixed" in err, out + err
        assert after == before
        return
    data = json.loads(out)
    named = {g["asg"] for g in data["groups"]}
    assert "web-mixed" in named or after == before, (
        f"web-mixed now launches {after['ImageId']} (was {before['ImageId']}), "
        f"report names only {sorted(named)}"
    )
