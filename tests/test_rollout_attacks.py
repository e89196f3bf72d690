"""Issue 27, rollout part: the fourth round of attacks on `amictl rollout` (R1-R6, rollout
beside infrastructure code), on the issue's fleet. Each test checks what the instances run
(DescribeInstances) and what the templates hold, not only what amictl reports."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from amictl.errors import SafetyError
from cli_fleet import CliFleet

FLEET = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
  - {alias: w3, name: web-2.0.0, age_days: 1, tags: {family: web}}
  - {alias: bad, name: web-2.1.0, age_days: 1, tags: {family: web, "amictl:bake-status": failed}}
  - {alias: dis, name: web-2.2.0, age_days: 1, disabled: true, tags: {family: web}}
  - {alias: theirs, name: web-2.3.0, age_days: 1, owner: "444455556666", public: true,
     tags: {family: web}}
launch_templates:
  - {alias: ltpin, name: web-pinned, tags: {"amictl:family": web}, default_version: 2,
     versions: [{image: w1, instance_type: t3.micro}, {image: w2, instance_type: m5.large}]}
  - {alias: ltlatest, name: web-latest, tags: {"amictl:family": web}, default_version: 1,
     versions: [{image: w1, instance_type: t3.micro}, {image: w2, instance_type: c5.xlarge}]}
  - {alias: ltssm, name: web-ssm, versions: [{image_id: "resolve:ssm:/amictl/channels/web/prod",
     instance_type: t3.micro}]}
auto_scaling_groups:
  - {alias: gpin, name: web-pinned-asg, launch_template: ltpin, version: "1", desired: 2}
  - {alias: glatest, name: web-latest-asg, launch_template: ltlatest, version: "$Latest", desired: 2}
  - {alias: gssm, name: web-ssm-asg, launch_template: ltssm, version: "$Default", desired: 0}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2, data_type: "aws:ec2:image"}
  - {alias: stg, name: /amictl/channels/web/staging, image: w3, data_type: "aws:ec2:image"}
"""
FAST = ["--yes", "--poll", "0", "--canary-wait", "0", "--canary", "50%"]
GROUPS = {"web-pinned-asg": "ltpin", "web-latest-asg": "ltlatest", "web-ssm-asg": "ltssm"}


@pytest.fixture
def fleet(sandbox: Any, tmp_path: Path) -> CliFleet:
    f = CliFleet(sandbox, FLEET, tmp_path)
    f.env.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="web-ssm-asg", MaxSize=2, DesiredCapacity=2
    )
    return f


def running(f: CliFleet, asg: str) -> Counter[tuple[str, str]]:
    """(image, instance type) of each instance the group runs, read from EC2."""
    groups = f.env.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])[
        "AutoScalingGroups"
    ]
    ids = [i["InstanceId"] for g in groups for i in g["Instances"]]
    if not ids:
        return Counter()
    res = f.env.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return Counter((i["ImageId"], i["InstanceType"]) for r in res for i in r["Instances"])


def launches(f: CliFleet, asg: str) -> dict[str, Any]:
    """The launch template data the group launches now (its version resolved)."""
    g = f.env.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])[
        "AutoScalingGroups"
    ][0]
    spec = g["LaunchTemplate"]
    (v,) = f.env.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=[spec["Version"]]
    )["LaunchTemplateVersions"]
    return dict(v["LaunchTemplateData"])


def versions(f: CliFleet, alias: str) -> int:
    return len(
        f.env.client("ec2").describe_launch_template_versions(LaunchTemplateId=f.ids[alias])[
            "LaunchTemplateVersions"
        ]
    )


def snapshot(f: CliFleet) -> dict[str, Any]:
    return {a: (running(f, a), launches(f, a)) for a in GROUPS}


def test_r1_a_failed_rollout_of_a_latest_group_brings_it_back(fleet: CliFleet) -> None:
    before = snapshot(fleet)
    assert before["web-latest-asg"][0] == Counter({(fleet.ids["w2"], "c5.xlarge"): 2})
    fleet.env.sandbox.set_instance_refresh(asg="web-latest-asg", outcome="fail", at=50, count=1)
    try:
        code, out, err = fleet(
            "rollout", "web", "--channel", "staging", "--asg", "web-latest-asg", "--wait",
            *FAST, "-o", "json",
        )  # fmt: skip
    finally:
        fleet.env.sandbox.set_instance_refresh(reset=True)
    assert code == 1, out + err
    data = json.loads(out)
    assert data["status"] == "rolled-back"
    assert [g["status"] for g in data["groups"]] == ["rolled back"]
    # what AWS says: the old image and type again, and $Latest holds the old data again
    assert snapshot(fleet) == before


def test_r2_a_rollout_never_takes_over_another_rollouts_refresh(fleet: CliFleet) -> None:
    # the refresh moves on its own (docs/sandbox.md, "Instance refresh timing"): a canary
    # wait of 12000 s (12 s on the sandbox's clock) keeps it running for the second rollout
    code, out, err = fleet(
        "rollout", "web", "--channel", "staging", "--asg", "web-pinned-asg", *FAST,
        "--canary-wait", "12000", "-o", "json",
    )  # fmt: skip
    assert code == 0, out + err
    first = json.loads(out)
    assert first["status"] == "started"
    made = versions(fleet, "ltpin")
    code, out, err = fleet(
        "rollout", "web", "--channel", "prod", "--asg", "web-pinned-asg", "--wait", *FAST
    )
    assert code == 3, out + err
    assert first["rollout_id"] in err and f"rollout --resume {first['rollout_id']}" in err
    assert versions(fleet, "ltpin") == made  # the second changed nothing
    code, out, err = fleet("rollout", "--resume", first["rollout_id"], "--poll", "0", "-o", "json")
    assert code == 0, out + err
    assert json.loads(out)["status"] == "succeeded"
    assert running(fleet, "web-pinned-asg") == Counter({(fleet.ids["w3"], "t3.micro"): 2})


def test_r2_someone_elses_refresh_is_refused_and_named(fleet: CliFleet) -> None:
    asg = fleet.env.client("autoscaling")
    fleet.env.sandbox.set_instance_refresh(asg="web-pinned-asg", outcome="hang", at=0, count=1)
    try:
        rid = asg.start_instance_refresh(AutoScalingGroupName="web-pinned-asg")["InstanceRefreshId"]
        code, out, err = fleet(
            "rollout", "web", "--channel", "staging", "--asg", "web-pinned-asg", "--wait", *FAST
        )
    finally:
        fleet.env.sandbox.set_instance_refresh(reset=True)
        asg.cancel_instance_refresh(AutoScalingGroupName="web-pinned-asg")
    assert code == 3, out + err
    assert rid in err and "refusing to take it over" in err
    assert versions(fleet, "ltpin") == 2
    assert running(fleet, "web-pinned-asg") == Counter({(fleet.ids["w1"], "t3.micro"): 2})


def test_r2_a_refresh_started_between_plan_and_start_is_refused(fleet: CliFleet) -> None:
    from amictl import rollout
    from amictl.state.store import Store

    store = Store(fleet.vars["AMICTL_STATE"])
    conn = fleet.env.connector()
    plan = rollout.make_plan(conn, conn.targets(), "web", "staging", ["web-pinned-asg"], 50)
    rollout.save_plan(store, plan)
    asg = fleet.env.client("autoscaling")
    fleet.env.sandbox.set_instance_refresh(asg="web-pinned-asg", outcome="hang", at=0, count=1)
    try:
        rid = asg.start_instance_refresh(AutoScalingGroupName="web-pinned-asg")["InstanceRefreshId"]
        with pytest.raises(SafetyError) as e:
            rollout.execute(conn, store, plan, rollout.Options(poll=0))
    finally:
        fleet.env.sandbox.set_instance_refresh(reset=True)
    assert rid in str(e.value) and "did not start" in str(e.value)
    (r,) = [
        x
        for x in asg.describe_instance_refreshes(AutoScalingGroupName="web-pinned-asg")[
            "InstanceRefreshes"
        ]
        if x["InstanceRefreshId"] == rid
    ]
    assert r["Status"] == "InProgress" and "DesiredConfiguration" not in r  # not adopted
    asg.cancel_instance_refresh(AutoScalingGroupName="web-pinned-asg")


@pytest.mark.parametrize(
    ("alias", "reason"),
    [
        ("bad", "is a bake that is failed"),
        ("dis", "is disabled"),
        ("theirs", "an image of account 444455556666"),
    ],
)
def test_r3_rollout_refuses_what_launch_refuses(fleet: CliFleet, alias: str, reason: str) -> None:
    fleet.env.client("ssm").put_parameter(
        Name="/amictl/channels/web/staging",
        Value=fleet.ids[alias],
        Type="String",
        DataType="aws:ec2:image",
        Overwrite=True,
    )
    before = snapshot(fleet)
    code, out, err = fleet("rollout", "web", "--channel", "staging", "--wait", *FAST)
    assert code == 3, out + err
    assert reason in err and "refusing to roll it out" in err
    if alias != "theirs":  # launch says the same reason
        lcode, _, lerr = fleet("launch", "web@staging", "--type", "t3.micro")
        assert lcode == 3 and reason in lerr
    assert snapshot(fleet) == before
    assert versions(fleet, "ltpin") == 2 and versions(fleet, "ltlatest") == 2


def test_r4_only_groups_that_follow_the_channel_rolled_out(fleet: CliFleet) -> None:
    code, out, err = fleet("rollout", "web", "--channel", "staging", "--wait", *FAST, "-o", "json")
    assert code == 0, out + err
    data = json.loads(out)
    assert {r["asg"] for r in data["plan"]} == {"web-pinned-asg", "web-latest-asg"}
    assert running(fleet, "web-ssm-asg") == Counter({(fleet.ids["w2"], "t3.micro"): 2})
    code, out, err = fleet("rollout", "web", "--channel", "staging", "--asg", "web-ssm-asg", *FAST)
    assert code == 2 and "web-ssm-asg" in err


def test_r6_each_new_version_is_the_groups_version_with_only_the_image(fleet: CliFleet) -> None:
    before = {a: launches(fleet, a) for a in GROUPS}
    code, out, err = fleet("rollout", "web", "--channel", "staging", "--wait", *FAST, "-o", "json")
    assert code == 0, out + err
    w3 = fleet.ids["w3"]
    assert running(fleet, "web-pinned-asg") == Counter({(w3, "t3.micro"): 2})
    assert running(fleet, "web-latest-asg") == Counter({(w3, "c5.xlarge"): 2})
    for asg in ("web-pinned-asg", "web-latest-asg"):
        assert launches(fleet, asg) == {**before[asg], "ImageId": w3}
    # the pinned group's template keeps its default (version 2, m5.large): no group used it
    lt = fleet.env.client("ec2").describe_launch_templates(LaunchTemplateIds=[fleet.ids["ltpin"]])
    assert lt["LaunchTemplates"][0]["DefaultVersionNumber"] == 2


def test_r5_resume_finds_any_unfinished_rollout_and_lists_them(fleet: CliFleet) -> None:
    from amictl import interrupts, rollout
    from amictl.errors import Interrupted
    from amictl.state.store import Store

    store = Store(fleet.vars["AMICTL_STATE"])
    conn = fleet.env.connector()
    plan = rollout.make_plan(conn, conn.targets(), "web", "staging", ["web-pinned-asg"], 50, 90, 0)
    rollout.save_plan(store, plan)

    def stop(_event: dict[str, Any]) -> None:  # Ctrl-C while following
        interrupts.request_stop()

    try:
        with pytest.raises(Interrupted) as exc:
            rollout.execute(conn, store, plan, rollout.Options(poll=0), stop)
    finally:
        interrupts.reset()
    assert f"amictl rollout --resume {plan.rollout_id}" in (exc.value.hint or "")
    # a second rollout, of another group, runs to its end meanwhile
    code, out, err = fleet(
        "rollout", "web", "--channel", "staging", "--asg", "web-latest-asg", "--wait", *FAST
    )
    assert code == 0, out + err
    listed = {r["rollout_id"]: r for r in fleet.json("rollout", "list")}
    assert listed[plan.rollout_id]["status"] == "interrupted"
    assert listed[plan.rollout_id]["unfinished"] is True
    assert [r["status"] for r in listed.values()].count("succeeded") == 1
    code, out, err = fleet("rollout", "--resume", "--poll", "0", "-o", "json")
    assert code == 0, out + err
    assert json.loads(out)["rollout_id"] == plan.rollout_id
    assert running(fleet, "web-pinned-asg") == Counter({(fleet.ids["w3"], "t3.micro"): 2})
    code, _, err = fleet("rollout", "--resume", plan.rollout_id)
    assert code == 1 and "has ended" in err
    code, _, err = fleet("rollout", "--resume", "0123456789abcdef")
    assert code == 2


IAC = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
launch_templates:
  - {alias: lt, name: web-cfn, versions: [{image: w1}],
     tags: {"amictl:family": web, "aws:cloudformation:stack-name": web-stack}}
auto_scaling_groups:
  - {alias: g, name: web-cfn-asg, launch_template: lt, version: "$Default", desired: 2}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2}
"""


def test_cloudformation_templates_are_named_and_refused_unless_forced(
    sandbox: Any, tmp_path: Path
) -> None:
    f = CliFleet(sandbox, IAC, tmp_path)
    # wide enough for every column of the plan shown, whatever the test's terminal
    code, out, err = f("rollout", "web", "--channel", "prod", "--wait", *FAST, COLUMNS="220")
    assert code == 3, out + err
    assert "CloudFormation stack web-stack" in out + err and "--force-iac" in err
    assert "CloudFormation stack web-stack" in out  # in the plan shown
    assert versions(f, "lt") == 1
    code, out, err = f("rollout", "web", "--channel", "prod", "--wait", "--force-iac", *FAST)
    assert code == 0, out + err
    assert running(f, "web-cfn-asg") == Counter({(f.ids["w2"], "t3.micro"): 2})


BYSTANDER = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
launch_templates:
  - {alias: lt, name: web-shared, versions: [{image: w1}], tags: {"amictl:family": web}}
auto_scaling_groups:
  - {alias: a, name: web-a, launch_template: lt, version: "$Default", desired: 1}
  - {alias: b, name: web-b, launch_template: lt, version: "$Default", desired: 1}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2}
"""


def test_a_rollout_narrowed_by_asg_refuses_to_move_the_groups_it_leaves_out(
    sandbox: Any, tmp_path: Path
) -> None:
    f = CliFleet(sandbox, BYSTANDER, tmp_path)
    code, out, err = f("rollout", "web", "--channel", "prod", "--asg", "web-a", *FAST)
    assert code == 3 and "web-b" in err, out + err
    assert versions(f, "lt") == 1
