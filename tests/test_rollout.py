"""amictl rollout (issue 21): canary instance refreshes on the sandbox, rollback on failure,
journaled resume; the sandbox's instance refresh itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from amictl.errors import InputError
from cli_fleet import CliFleet

FLEET = """
images:
  - {alias: web-1, name: web-1, age_days: 60, tags: {family: web, version: "1.0.0"}}
  - {alias: web-2, name: web-2, age_days: 5, tags: {family: web, version: "1.1.0"}}
  - {alias: db-1, name: db-1, age_days: 60, tags: {family: db, version: "1"}}
launch_templates:
  - {alias: lt-a, name: web-a, versions: [{image: web-1}], tags: {"amictl:family": web}}
  - {alias: lt-b, name: web-b, versions: [{image: web-1}], tags: {"amictl:family": web}}
  - {alias: lt-db, name: db, versions: [{image: db-1}]}
auto_scaling_groups:
  - {alias: asg-a, name: web-a, launch_template: lt-a, version: "1", desired: 10}
  - {alias: asg-b, name: web-b, launch_template: lt-b, version: "$Default", desired: 10}
  - {alias: asg-db, name: db, launch_template: lt-db, version: "1", desired: 2}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: web-2}
"""
FAST = ["--canary-wait", "0", "--poll", "0", "--yes"]


@pytest.fixture
def fleet(sandbox: Any, tmp_path: Path) -> CliFleet:
    return CliFleet(sandbox, FLEET, tmp_path)


def images_running(f: CliFleet, asg: str) -> Counter[str]:
    ids = [
        i["InstanceId"]
        for g in f.env.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[asg]
        )["AutoScalingGroups"]
        for i in g["Instances"]
    ]
    res = f.env.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return Counter(i["ImageId"] for r in res for i in r["Instances"])


def default_version(f: CliFleet, alias: str) -> int:
    lt = f.env.client("ec2").describe_launch_templates(LaunchTemplateIds=[f.ids[alias]])
    return int(lt["LaunchTemplates"][0]["DefaultVersionNumber"])


def test_rollout_two_groups_with_a_canary_succeeds(fleet: CliFleet) -> None:
    code, out, err = fleet("rollout", "web", "--channel", "prod", "--wait", *FAST, "-o", "json")
    assert code == 0, out + err
    data = json.loads(out)
    assert data["status"] == "succeeded" and data["version"] == "1.1.0"
    assert {r["asg"] for r in data["plan"]} == {"web-a", "web-b"}  # not db: another family
    assert all(r["to_replace"] == 10 for r in data["plan"])
    assert {g["status"] for g in data["groups"]} == {"succeeded"}
    new = fleet.ids["web-2"]
    assert images_running(fleet, "web-a") == Counter({new: 10})
    assert images_running(fleet, "web-b") == Counter({new: 10})
    assert default_version(fleet, "lt-a") == 2 and default_version(fleet, "lt-b") == 2
    asg = fleet.env.client("autoscaling")
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-a"])["AutoScalingGroups"][0]
    assert g["LaunchTemplate"]["Version"] == "2"  # the pinned group took the new version
    refresh = asg.describe_instance_refreshes(AutoScalingGroupName="web-a")["InstanceRefreshes"][0]
    assert refresh["Preferences"]["CheckpointPercentages"] == [10, 100]
    # nothing else touched: the other family's group, the channel
    assert images_running(fleet, "db") == Counter({fleet.ids["db-1"]: 2})
    ssm = fleet.env.client("ssm")
    assert ssm.get_parameter(Name="/amictl/channels/web/prod")["Parameter"]["Value"] == new


def test_a_refresh_failing_at_the_canary_rolls_every_group_back(fleet: CliFleet) -> None:
    # the two rollout refreshes fail at the canary; the restoring refresh after them succeeds
    fleet.env.sandbox.set_instance_refresh(asg="*", outcome="fail", at=10, count=2)
    try:
        code, out, err = fleet("rollout", "web", "--channel", "prod", "--wait", *FAST, "-o", "json")
    finally:
        fleet.env.sandbox.set_instance_refresh(reset=True)
    assert code == 1, out + err
    assert "channel prod of web is unchanged" in err
    data = json.loads(out)
    assert data["status"] == "rolled-back"
    by = {g["asg"]: g for g in data["groups"]}
    assert by["web-a"]["status"] == "rolled back" and "RollbackSuccessful" in by["web-a"]["detail"]
    assert by["web-b"]["status"] == "rolled back" and "restored" in by["web-b"]["detail"]
    old = fleet.ids["web-1"]
    assert images_running(fleet, "web-a") == Counter({old: 10})
    assert images_running(fleet, "web-b") == Counter({old: 10})
    assert default_version(fleet, "lt-a") == 1 and default_version(fleet, "lt-b") == 1
    rows = fleet.json("journal", "--plan", f"rollout-{data['rollout_id']}")
    done = [(r["type"], r["resource"]) for r in rows if r["status"] == "done"]
    assert ("rollout-restore-default", fleet.ids["lt-b"]) in done
    assert ("rollout-restore-refresh", "web-b") in done
    g = fleet.env.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["web-a"]
    )["AutoScalingGroups"][0]
    assert g["LaunchTemplate"]["Version"] == "1"


def test_a_hanging_refresh_times_out_and_rolls_back(fleet: CliFleet) -> None:
    fleet.env.sandbox.set_instance_refresh(asg="web-a", outcome="hang", at=10)
    try:
        code, out, err = fleet(
            "rollout",
            "web",
            "--channel",
            "prod",
            "--asg",
            "web-a",
            "--wait",
            "--timeout",
            "0.5",
            *FAST,
            "-o",
            "json",
        )
    finally:
        fleet.env.sandbox.set_instance_refresh(reset=True)
    assert code == 1, out + err
    assert images_running(fleet, "web-a") == Counter({fleet.ids["web-1"]: 10})
    assert images_running(fleet, "web-b") == Counter({fleet.ids["web-1"]: 10})  # not asked


def test_sandbox_instance_refresh_control_refuses_unknown_keys(sandbox: Any) -> None:
    with pytest.raises(InputError, match="unknown key"):
        sandbox.set_instance_refresh(outcome="fail", bogus=1)
    with pytest.raises(InputError, match="outcome"):
        sandbox.set_instance_refresh(outcome="explode")


def test_sandbox_refresh_moves_on_its_own_clock(fleet: CliFleet) -> None:
    """docs/sandbox.md, "Instance refresh timing": a step every 0.3 s (300 AWS seconds at
    1000x), a checkpoint's delay divided by 1000, whether anyone asks or not."""
    ec2, asg = fleet.env.client("ec2"), fleet.env.client("autoscaling")
    ec2.create_launch_template_version(
        LaunchTemplateName="web-b",
        SourceVersion="1",
        LaunchTemplateData={"ImageId": fleet.ids["web-2"]},
    )
    asg.start_instance_refresh(
        AutoScalingGroupName="web-b",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "web-b", "Version": "2"}},
        Preferences={
            "MinHealthyPercentage": 50,  # 5 of 10 at a time
            "CheckpointPercentages": [50, 100],
            "CheckpointDelay": 1000,  # 1 s on the sandbox
        },
    )
    time.sleep(1.0)  # nobody asked: Pending -> InProgress at 0.3 s, 5 replaced at 0.6 s
    (r,) = asg.describe_instance_refreshes(AutoScalingGroupName="web-b")["InstanceRefreshes"]
    assert r["Status"] == "InProgress" and r["PercentageComplete"] == 50, r
    assert "Waiting for checkpoint" in r["StatusReason"]
    assert images_running(fleet, "web-b") == Counter({fleet.ids["web-1"]: 5, fleet.ids["web-2"]: 5})
    time.sleep(1.3)  # the checkpoint ends at 1.6 s, the last 5 at 1.9 s
    (r,) = asg.describe_instance_refreshes(AutoScalingGroupName="web-b")["InstanceRefreshes"]
    assert r["Status"] == "Successful", r
    assert images_running(fleet, "web-b") == Counter({fleet.ids["web-2"]: 10})


def test_interrupted_rollout_resumes_without_repeating_a_step(fleet: CliFleet) -> None:
    from amictl import interrupts, rollout
    from amictl.errors import Interrupted
    from amictl.state.store import Store

    store = Store(fleet.vars["AMICTL_STATE"])
    conn = fleet.env.connector()
    plan = rollout.make_plan(conn, conn.targets(), "web", "prod", canary_wait=0)
    rollout.save_plan(store, plan)

    def stop(_event: dict[str, Any]) -> None:  # Ctrl-C while following the refreshes
        interrupts.request_stop()

    try:
        with pytest.raises(Interrupted) as exc:
            rollout.execute(conn, store, plan, rollout.Options(poll=0), stop)
        assert exc.value.exit_code == 130
    finally:
        interrupts.reset()
    assert rollout.resumable(store) is not None
    code, out, err = fleet("rollout", "--resume", "--poll", "0", "-o", "json")
    assert code == 0, out + err
    assert json.loads(out)["status"] == "succeeded"
    new = fleet.ids["web-2"]
    assert images_running(fleet, "web-a") == Counter({new: 10})
    # one template version and one refresh per group, not two
    versions = fleet.env.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=fleet.ids["lt-a"]
    )["LaunchTemplateVersions"]
    assert len(versions) == 2
    refreshes = fleet.env.client("autoscaling").describe_instance_refreshes(
        AutoScalingGroupName="web-a"
    )["InstanceRefreshes"]
    assert len(refreshes) == 1
    assert rollout.resumable(store) is None
    code, _, err = fleet("rollout", "--resume")
    assert code == 1 and "no unfinished rollout" in err


def test_rollout_refuses_bad_input_and_asks_without_yes(fleet: CliFleet) -> None:
    code, _, err = fleet("rollout", "web", "--channel", "prod", "--canary", "0%")
    assert code == 2 and "--canary" in err
    code, _, err = fleet("rollout", "web", "--channel", "prod", "--asg", "nope", "--yes")
    assert code == 2 and "nope" in err
    code, _, err = fleet("rollout", "web", "--channel", "nope", "--yes")
    assert code == 1 and "does not exist" in err
    code, _, err = fleet("rollout", "web", "--channel", "prod")  # no terminal, no --yes
    assert code == 2 and "confirmation" in err  # issue 31: one code for every command
    assert images_running(fleet, "web-a") == Counter({fleet.ids["web-1"]: 10})


def test_drift_lists_what_is_behind_before_the_rollout_and_nothing_after(fleet: CliFleet) -> None:
    before = fleet.json("drift", "--family", "web")
    (group,) = before["groups"]
    assert group["channel"] == "prod" and group["channel_version"] == "1.1.0"
    kinds = Counter(b["kind"] for b in group["behind"])
    assert kinds == Counter({"instance": 20, "auto-scaling-group": 2, "launch-template-version": 2})
    assert {b["versions_behind"] for b in group["behind"]} == {1}
    assert {b["days_behind"] for b in group["behind"]} == {55}
    code, _, err = fleet("drift", "--family", "web", "--strict", "0")
    assert code == 1 and "1 version behind" in err
    assert fleet("drift", "--family", "web", "--strict", "1")[0] == 0
    html = fleet.tmp / "report.html"
    fleet.json("report", "--html", str(html), "--from-state")
    text = html.read_text()
    assert '<section id="drift">' in text and 'id="chart-drift"' in text
    code, out, err = fleet("rollout", "web", "--channel", "prod", "--wait", *FAST, "-o", "json")
    assert code == 0, out + err
    after = fleet.json("drift", "--family", "web")
    assert after["behind"] == 0 and after["groups"][0]["behind"] == []
    assert fleet("drift", "--strict", "0")[0] == 0


def test_a_rollout_killed_between_a_call_and_its_journal_row_resumes_exactly(
    fleet: CliFleet,
) -> None:
    """SIGKILL after CreateLaunchTemplateVersion and StartInstanceRefresh answered but
    before their `done` rows: the resume finds the version again (by its description)
    instead of making a second one; the refresh, whose id the kill lost, is never guessed
    (round 5): while it runs the resume refuses naming it, after it ended the resume
    carries on."""
    from amictl import rollout
    from amictl.rollout.journal import Journal
    from amictl.rollout.run import Runner
    from amictl.state.store import Store

    store = Store(fleet.vars["AMICTL_STATE"])
    conn = fleet.env.connector()
    plan = rollout.make_plan(conn, conn.targets(), "web", "prod", asgs=["web-a"], canary_wait=0)
    rollout.save_plan(store, plan)
    journal = Journal(store, plan)
    runner = Runner(conn, store, plan, rollout.Options(poll=0))
    (tc,) = plan.templates
    (g,) = plan.groups
    journal.write("lt0", "lt-version", tc, "intended", old_default=tc.old_default)
    runner._template_versions(tc)  # the call went through; then the kill
    journal.write("rf0", "refresh", g, "intended", version=str(tc.new_version))
    fleet.env.sandbox.set_instance_refresh(asg="web-a", outcome="hang", at=0, count=1)
    try:
        lost = runner._start(g, str(tc.new_version), canary=True)  # idem
        assert rollout.resumable(store) is not None
        code, out, err = fleet("rollout", "--resume", "--poll", "0", "-o", "json")
    finally:
        fleet.env.sandbox.set_instance_refresh(reset=True)
    assert code == 3 and lost in err, out + err
    assert rollout.resumable(store) is not None  # left as it was, still resumable
    asg = fleet.env.client("autoscaling")
    asg.cancel_instance_refresh(AutoScalingGroupName="web-a")
    for _ in range(50):  # the operator waits for the cancel to end
        (r,) = asg.describe_instance_refreshes(AutoScalingGroupName="web-a")["InstanceRefreshes"]
        if r["Status"] == "Cancelled":
            break
    code, out, err = fleet("rollout", "--resume", "--poll", "0", "-o", "json")
    assert code == 0, out + err
    versions = fleet.env.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=fleet.ids["lt-a"]
    )["LaunchTemplateVersions"]
    assert len(versions) == 2
    refreshes = asg.describe_instance_refreshes(AutoScalingGroupName="web-a")["InstanceRefreshes"]
    assert sorted(r["Status"] for r in refreshes) == ["Cancelled", "Successful"]
    assert images_running(fleet, "web-a") == Counter({fleet.ids["web-2"]: 10})


def test_a_rollout_waits_for_nobody_else_holding_the_account_lock(fleet: CliFleet) -> None:
    from amictl import rollout
    from amictl.state.store import Store

    store = Store(fleet.vars["AMICTL_STATE"])
    with store.lock([f"{fleet.env.account}/us-east-1"], owner="apply 0123456789ab"):
        code, _, err = fleet("rollout", "web", "--channel", "prod", "--wait", *FAST)
    assert code == 3 and "apply 0123456789ab" in err
    assert images_running(fleet, "web-a") == Counter({fleet.ids["web-1"]: 10})
    assert default_version(fleet, "lt-a") == 1  # nothing changed before the lock
    assert rollout.resumable(store) is None  # and nothing left to resume


SSM_FLEET = """
images:
  - {alias: web-1, name: web-1, age_days: 60, tags: {family: web, version: "1.0.0"}}
  - {alias: web-2, name: web-2, age_days: 5, tags: {family: web, version: "1.1.0"}}
launch_templates:
  - {alias: lt-s, name: web-s, versions: [{image_id: "resolve:ssm:/amictl/channels/web/prod"}]}
auto_scaling_groups:
  - {alias: asg-s, name: web-s, launch_template: lt-s, version: "$Default", desired: 0}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: web-1}
"""


def test_groups_whose_template_resolves_the_channel_are_refreshed(
    sandbox: Any, tmp_path: Path
) -> None:
    f = CliFleet(sandbox, SSM_FLEET, tmp_path)
    asg = f.env.client("autoscaling")
    asg.update_auto_scaling_group(AutoScalingGroupName="web-s", MaxSize=4, DesiredCapacity=4)
    assert images_running(f, "web-s") == Counter({f.ids["web-1"]: 4})  # resolved at launch
    code, out, err = f("promote", "web", "1.1.0", "--channel", "prod")
    assert code == 0, out + err
    data = f.json("drift")
    assert data["behind"] == 4  # the instances; the template follows the channel
    code, out, err = f("rollout", "web", "--channel", "prod", "--wait", *FAST, "-o", "json")
    assert code == 0, out + err
    data = json.loads(out)
    assert data["plan"][0]["mode"] == "ssm"
    assert images_running(f, "web-s") == Counter({f.ids["web-2"]: 4})
    versions = f.env.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=f.ids["lt-s"]
    )["LaunchTemplateVersions"]
    assert len(versions) == 1  # no new version: it already follows the channel
    # a failure cannot be undone without changing the channel: said so, exit 1
    f("promote", "web", "1.0.0", "--channel", "prod")
    sandbox.set_instance_refresh(asg="web-s", outcome="fail", at=25, count=1)
    code, out, err = f("rollout", "web", "--channel", "prod", "--wait", *FAST, "-o", "json")
    assert code == 1
    (group,) = json.loads(out)["groups"]
    assert group["status"] == "not rolled back" and "amictl rollback web" in group["detail"]
    assert "did NOT bring every group back" in err


def test_a_refresh_cancelled_by_someone_else_rolls_back(fleet: CliFleet) -> None:
    from amictl import rollout
    from amictl.state.store import Store

    store = Store(fleet.vars["AMICTL_STATE"])
    conn = fleet.env.connector()
    plan = rollout.make_plan(conn, conn.targets(), "web", "prod", asgs=["web-b"], canary_wait=0)
    rollout.save_plan(store, plan)
    fleet.env.sandbox.set_instance_refresh(asg="web-b", outcome="hang", at=10, count=1)
    asg = fleet.env.client("autoscaling")
    cancelled: list[str] = []

    def cancel_once(event: dict[str, Any]) -> None:  # an operator cancels it in the console
        if event["phase"] == "rollout" and event["status"] == "InProgress" and not cancelled:
            cancelled.append(
                asg.cancel_instance_refresh(AutoScalingGroupName="web-b")["InstanceRefreshId"]
            )

    out = rollout.execute(conn, store, plan, rollout.Options(poll=0), cancel_once)
    assert cancelled and out.status == "rolled-back"
    (row,) = out.rows()
    assert row["refresh"] == "Cancelled" and row["status"] == "rolled back"
    assert images_running(fleet, "web-b") == Counter({fleet.ids["web-1"]: 10})
    assert default_version(fleet, "lt-b") == 1


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_real_process_stopped_while_following_resumes(
    fleet: CliFleet, sig: int, code: int
) -> None:
    from amictl.state.store import Store

    store = Store(fleet.vars["AMICTL_STATE"])
    cmd = [
        sys.executable,
        "-m",
        "amictl.cli.main",
        "rollout",
        "web",
        "--channel",
        "prod",
        "--wait",
        "--canary-wait",
        "4000",  # 4 s on the sandbox's Auto Scaling clock (1000x AWS's, docs/sandbox.md)
        "--poll",
        "0.2",
        "--yes",
        "--no-progress",
        *fleet.env.cli_args(),
    ]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **fleet.vars},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120

    def started() -> int:
        rows = store.journal_rows(plan_prefix="rollout-", limit=1000)
        return sum(1 for r in rows if r["type"] == "rollout-refresh" and r["status"] == "done")

    while started() < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(0.5)  # following: both refreshes wait at the canary checkpoint
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    if sig == signal.SIGTERM:
        assert "SIGTERM" in err
    assert images_running(fleet, "web-a")[fleet.ids["web-1"]] >= 1  # not finished yet
    c, out, e = fleet("rollout", "--resume", "--poll", "0.2", "-o", "json")
    assert c == 0, out + e
    assert json.loads(out)["status"] == "succeeded"
    for name in ("web-a", "web-b"):
        assert images_running(fleet, name) == Counter({fleet.ids["web-2"]: 10})
        refreshes = fleet.env.client("autoscaling").describe_instance_refreshes(
            AutoScalingGroupName=name
        )["InstanceRefreshes"]
        assert len(refreshes) == 1
