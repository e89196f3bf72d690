"""Round 5 of hostile attacks on the issue 27/28 features (rollout, allowed-images, revoke,
approvals). Each test checks the OUTCOME in AWS (DescribeAutoScalingGroups,
DescribeLaunchTemplateVersions, DescribeInstances), not amictl's words."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

import test_approvals
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


ALLOWED = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 3, tags: {family: web, version: 1.0.0}}
  - {alias: al2, name: al2023-ami-2023.6, owner: "137112412989", owner_alias: amazon, public: true}
launch_templates:
  - {alias: ltbase, name: on-amazon, versions: [{image: al2, instance_type: t3.micro}]}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w1, data_type: "aws:ec2:image"}
"""


def _allowed(f: CliFleet, image: str) -> bool:
    """AWS's own answer: is the image visible and allowed to this account now?"""
    ec2 = f.env.client("ec2")
    imgs = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image]}])["Images"]
    return bool(imgs) and imgs[0].get("ImageAllowed", True) is not False


def test_allowed_images_audit_mode_from_enabled_narrows_while_still_enabled(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: the region is `enabled` with criteria that allow Amazon's images (a template
    launches one). `allowed-images set --from-channels --mode audit-mode` (no --also) skips
    every refusal (audit mode "only reports"), but apply_set calls
    ReplaceImageCriteriaInAllowedImagesSettings BEFORE EnableAllowedImagesSettings: the
    narrower criteria take effect while the region is still `enabled`. When the second call
    fails (here AccessDenied; equally Ctrl-C or a crash between the two), the account is left
    `enabled` with criteria that lock the template out, though nothing was refused or named.
    Safe outcome: leave enforcement first (state to audit-mode, then criteria), or refuse as
    for `enabled`; after the failure the template's image must still be launchable."""
    f = CliFleet(sandbox, ALLOWED, tmp_path)
    data = f.json(
        "allowed-images", "set", "--from-channels", "--also", "amazon", "--mode", "enabled",
        "--yes",
    )  # fmt: skip
    assert data["changes"][0]["would_break"] == []
    assert _allowed(f, f.ids["al2"])
    sandbox.set_faults(
        [
            {
                "service": "ec2",
                "action": "EnableAllowedImagesSettings",
                "code": "UnauthorizedOperation",
                "status": 403,
            }
        ]
    )
    try:
        code, out, err = f.run(
            "allowed-images", "set", "--from-channels", "--mode", "audit-mode", "--yes"
        )
    finally:
        sandbox.clear_faults()
    assert code != 0, (out, err)
    state = f.env.client("ec2").get_allowed_images_settings().get("State")
    assert state == "enabled"
    assert _allowed(f, f.ids["al2"]), (
        "the template on-amazon can no longer launch its image: the region is still enabled "
        "and its criteria were narrowed by an audit-mode run that refused nothing"
    )


BATCH_ONLY = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 3, tags: {family: web, version: 1.0.0}}
  - {alias: al2, name: al2023-ami-2023.6, owner: "137112412989", owner_alias: amazon, public: true}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w1, data_type: "aws:ec2:image"}
"""


def test_allow_noncompliant_arn_waives_every_launcher_named_by_an_arn(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: check_refusal waives a launcher when `id.split(":")[0]` is named (meant for
    `lt-…:VERSION`). Launchers identified by an ARN (Batch compute environments, Beanstalk
    environments, CloudFormation stacks...) all split to "arn", so
    `--allow-noncompliant arn` waives every one of them without naming any, and `--mode
    enabled` locks the Batch compute environment out of its Amazon image.
    Safe outcome: only an exact id (or an lt-… template id) waives a launcher; the run is
    refused with exit 3 naming the compute environment, and the state stays disabled."""
    from launcher_makers import MAKERS

    f = CliFleet(sandbox, BATCH_ONLY, tmp_path)
    arn, undo = MAKERS["batch-compute-environment"](f.env, f.ids["al2"], f.ids["w1"])
    try:
        audit = f.json("allowed-images", "set", "--from-channels", "--mode", "audit-mode", "--yes")
        assert [r["id"] for r in audit["changes"][0]["would_break"]] == [arn]
        code, out, err = f.run(
            "allowed-images", "set", "--from-channels", "--mode", "enabled",
            "--allow-noncompliant", "arn", "--yes",
        )  # fmt: skip
        state = f.env.client("ec2").get_allowed_images_settings().get("State")
    finally:
        undo()
    assert code == 3 and arn in err, (code, out, err)
    assert state == "audit-mode"


def test_image_names_brackets_are_literal_as_aws_matches_them() -> None:
    """Attack: AWS's ImageCriterion ImageNames knows two wildcards, `*` and `?`; AMI names
    may contain `[` and `]`. amictl (and the sandbox) evaluate ImageNames with
    fnmatch, where `[p]` is a character class. `--from-channels` writes a channel image's
    name as the pattern when the family prefix does not apply (e.g. `gold[p]-7`), so
    amictl judges a launcher on another account's `goldp-7` allowed and enables without
    refusing, while AWS would block it (and would allow `gold[p]-7`, which amictl judges
    not allowed). Safe outcome: only `*` and `?` are wildcards; `[` matches itself."""
    import datetime as dt

    from amictl.governance.allowed import criterion_allows

    at = dt.datetime.now(dt.UTC)
    c = {"ImageProviders": ["210987654321"], "ImageNames": ["gold[p]-7"]}
    other = {"OwnerId": "210987654321", "Name": "goldp-7"}
    same = {"OwnerId": "210987654321", "Name": "gold[p]-7"}
    assert criterion_allows(same, c, at) is True
    assert criterion_allows(other, c, at) is False


ONE_DEFAULT = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
launch_templates:
  - {alias: lt, name: web-default, versions: [{image: w1, instance_type: t3.micro}],
     tags: {"amictl:family": web}}
auto_scaling_groups:
  - {alias: a, name: web-a, launch_template: lt, version: "$Default", desired: 2}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2}
"""


def _group_launches(f: CliFleet, asg: str) -> dict[str, Any]:
    (g,) = f.env.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])[
        "AutoScalingGroups"
    ]
    spec = g["LaunchTemplate"]
    return _lt_data(f, spec["LaunchTemplateId"], spec["Version"])


def _group_images(f: CliFleet, asg: str) -> list[str]:
    (g,) = f.env.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])[
        "AutoScalingGroups"
    ]
    ids = [i["InstanceId"] for i in g["Instances"]]
    res = f.env.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return sorted(i["ImageId"] for r in res for i in r["Instances"])


def test_rollout_whose_refresh_cannot_start_leaves_the_new_default_in_place(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: the operator's role may not call StartInstanceRefresh (AccessDenied), or AWS
    refuses it (ValidationError). rollout has already made the new version the template's
    default, then the StartInstanceRefresh error propagates: no rollback, no `end` row. After
    amictl ends, web-a runs its old instances but launches the channel's image on its next
    scale-out or replacement -- no canary, no refresh, neither "rolled out" nor "as before".
    Safe outcome: when a group's refresh cannot be started, the rollout rolls back (template
    default restored) so web-a launches exactly what it launched before, and says so."""
    f = CliFleet(sandbox, ONE_DEFAULT, tmp_path)
    before = _group_launches(f, "web-a")
    images_before = _group_images(f, "web-a")
    sandbox.set_faults(
        [
            {
                "service": "autoscaling",
                "action": "StartInstanceRefresh",
                "code": "AccessDenied",
                "status": 403,
                "count": 1,
            }
        ]
    )
    try:
        code, out, err = f("rollout", "web", "--channel", "prod", "--wait", *FAST)
    finally:
        sandbox.clear_faults()
    assert code != 0, out + err
    assert _group_images(f, "web-a") == images_before
    after = _group_launches(f, "web-a")
    assert after == before, (
        f"web-a now launches {after['ImageId']} (was {before['ImageId']}) with no refresh "
        f"and no rollback; amictl said: {err.strip()[-300:]}"
    )


SSM_GROUP = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
launch_templates:
  - {alias: ltssm, name: web-ssm, versions: [{image_id: "resolve:ssm:/amictl/channels/web/prod",
     instance_type: t3.micro}]}
auto_scaling_groups:
  - {alias: g, name: web-ssm-asg, launch_template: ltssm, version: "$Default", desired: 0}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2, data_type: "aws:ec2:image"}
"""


def test_resume_takes_over_someone_elses_refresh_of_a_channel_following_group(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: a rollout of a group whose template resolves the channel fails to start its
    refresh (journal: rf0 `intended`, no `done`). Then an operator starts their own refresh
    on the group (no DesiredConfiguration, as the console does). `rollout --resume ID`
    adopts it: `_mine` matches any refresh started after the intended row whose desired
    configuration is "none" like the rollout's, so amictl follows someone else's refresh as
    its own, and on --timeout CANCELS it. Safe outcome: the resume refuses (exit 3) naming
    the refresh it did not start, and that refresh is left running."""
    f = CliFleet(sandbox, SSM_GROUP, tmp_path)
    asg = f.env.client("autoscaling")
    asg.update_auto_scaling_group(AutoScalingGroupName="web-ssm-asg", MaxSize=2, DesiredCapacity=2)
    sandbox.set_faults(
        [{"service": "autoscaling", "action": "StartInstanceRefresh", "code": "AccessDenied",
          "status": 403, "count": 1}]
    )  # fmt: skip
    try:
        code, out, err = f("rollout", "web", "--channel", "prod", "--wait", *FAST)
    finally:
        sandbox.clear_faults()
    assert code != 0, out + err
    (rollout,) = f.json("rollout", "list")
    assert rollout["unfinished"] is True
    sandbox.set_instance_refresh(asg="web-ssm-asg", outcome="hang", at=0, count=1)
    try:
        rid = asg.start_instance_refresh(AutoScalingGroupName="web-ssm-asg")["InstanceRefreshId"]
        code, out, err = f(
            "rollout", "--resume", rollout["rollout_id"], "--poll", "0", "--timeout", "0"
        )
        (r,) = [
            x
            for x in asg.describe_instance_refreshes(AutoScalingGroupName="web-ssm-asg")[
                "InstanceRefreshes"
            ]
            if x["InstanceRefreshId"] == rid
        ]
    finally:
        sandbox.set_instance_refresh(reset=True)
        with contextlib.suppress(Exception):  # already ended
            asg.cancel_instance_refresh(AutoScalingGroupName="web-ssm-asg")
    assert r["Status"] == "InProgress", f"someone else's refresh {rid} is now {r['Status']}"
    assert code == 3 and rid in err, out + err


# the fleet and policy of tests/test_approvals.py, attacked here
APPROVAL_FLEET, APPROVAL_POLICY = test_approvals.FLEET, test_approvals.POLICY


def test_edited_plan_without_family_fields_escapes_the_protected_family_threshold(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: the team requires one approval for any deregistration in protected family
    `ap*` or more than 4 GiB of snapshots. The planner edits the plan file: drops each
    action's `family` and `size_gib` (recomputing the checksum) and applies it with
    `--accept-unsigned`. thresholds_crossed() reads family and size from the FILE, so the
    edited plan "needs no approval" and app-1.0.0 and its 8 GiB snapshot are deleted with
    nobody's approval. (--accept-unsigned promises every safety fact is re-checked live;
    the facts the approval thresholds use are not.) Safe outcome: the thresholds are judged
    on the live images/snapshots (or an unsigned plan always needs the approvals); apply
    refuses with exit 3 and a1 stays registered."""
    from amictl.policy.plan_model import Plan

    f = CliFleet(sandbox, APPROVAL_FLEET, tmp_path)
    pol, plan = tmp_path / "p.yaml", tmp_path / "plan.json"
    pol.write_text(APPROVAL_POLICY)
    code, out, err = f.run(
        "approval-config", "--required", "1", "--gib", "4", "--protected-family", "ap*"
    )
    assert code == 0, out + err
    code, out, err = f.run("plan", "--policy", str(pol), "--out", str(plan))
    assert code == 0, out + err
    assert f.json("approvals", str(plan))["needed"] is True
    body = json.loads(plan.read_text())
    for a in body["actions"]:
        a.pop("family", None)
        a.pop("size_gib", None)
    body.pop("signature", None)
    body["checksum"] = Plan.checksum_of(body)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(body))
    code, out, err = f.run("apply", str(edited), "--yes", "--accept-unsigned")
    ec2 = f.env.client("ec2")
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert f.ids["a1"] in left, f"app-1.0.0 deregistered with no approval (exit {code})"
    assert code == 3, out + err


TWO_CHANNELS = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
  - {alias: w3, name: web-2.0.0, age_days: 1, tags: {family: web}}
launch_templates:
  - {alias: lt, name: web-default, versions: [{image: w1, instance_type: t3.micro}],
     tags: {"amictl:family": web}}
auto_scaling_groups:
  - {alias: a, name: web-a, launch_template: lt, version: "$Default", desired: 2}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2}
  - {alias: stg, name: /amictl/channels/web/staging, image: w3}
"""


def test_a_rollout_confirmed_late_supersedes_one_started_meanwhile(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: two operators at once. B plans `rollout web --channel prod` (the prompt is
    open); meanwhile A runs `rollout web --channel staging` (no --wait: `started`, its
    refresh in progress). B confirms. Inside the lock, check_conflicts judges A's refreshes
    "all ended" from B's PLAN-TIME view (no active refresh then), closes A as `superseded`,
    and B makes prod's version the template's default before StartInstanceRefresh refuses
    A's refresh. Result: A can no longer be resumed or rolled back (`has ended`), web-a is
    mid-refresh to staging while its $Default now launches prod's image.
    Safe outcome: B re-reads the refreshes live and refuses before changing anything; A
    stays unfinished, and the template's default is A's version."""

    from amictl import rollout
    from amictl.errors import AmictlError
    from amictl.state.store import Store

    f = CliFleet(sandbox, TWO_CHANNELS, tmp_path)
    store = Store(f.vars["AMICTL_STATE"])
    conn = f.env.connector()
    plan_b = rollout.make_plan(conn, conn.targets(), "web", "prod", None, 50, 90, 0)
    sandbox.set_instance_refresh(asg="web-a", outcome="hang", at=0, count=1)
    asg = f.env.client("autoscaling")
    try:
        code, out, err = f("rollout", "web", "--channel", "staging", *FAST, "-o", "json")
        assert code == 0, out + err
        a_id = json.loads(out)["rollout_id"]
        (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-a"])[
            "AutoScalingGroups"
        ]
        tid = g["LaunchTemplate"]["LaunchTemplateId"]
        default_after_a = _lt_data(f, tid, "$Default")
        assert default_after_a["ImageId"] == f.ids["w3"]
        rollout.save_plan(store, plan_b)
        with pytest.raises(AmictlError):
            rollout.execute(conn, store, plan_b, rollout.Options(poll=0))
        listed = {r["rollout_id"]: r for r in f.json("rollout", "list")}
        default_now = _lt_data(f, tid, "$Default")
    finally:
        sandbox.set_instance_refresh(reset=True)
        with contextlib.suppress(Exception):  # already ended
            asg.cancel_instance_refresh(AutoScalingGroupName="web-a")
    assert default_now["ImageId"] == f.ids["w3"], (
        f"web-a's $Default now launches {default_now['ImageId']} (prod), not A's staging "
        f"image; rollout A is {listed[a_id]['status']}"
    )
    assert listed[a_id]["unfinished"] is True, f"rollout A is now {listed[a_id]['status']}"


def test_resume_finishes_rolling_out_an_image_revoked_meanwhile(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: `rollout web --channel prod` without --wait starts web-a's refresh to
    web-1.1.0. The image is then revoked (`amictl revoke AMI`: the channel goes back to
    web-1.0.0). `rollout --resume` carries on following the refresh and reports
    `succeeded`: web-a ends up running the revoked image, and its template's default is
    the revoked image's version. The docs promise rollout refuses a revoked image.
    Safe outcome: the resume re-checks the image, refuses to carry a revoked image on and
    rolls the rollout back (web-a launches and runs web-1.0.0 again), exit non-zero."""
    f = CliFleet(sandbox, ONE_DEFAULT, tmp_path)
    w1, w2 = f.ids["w1"], f.ids["w2"]
    code, out, err = f("rollout", "web", "--channel", "prod", *FAST, "-o", "json")
    assert code == 0, out + err
    rid = json.loads(out)["rollout_id"]
    code, out, err = f("revoke", w2, "--reason", "CVE-2026-9999", "--yes", "-o", "json")
    assert code == 0, out + err
    ssm = f.env.client("ssm")
    assert ssm.get_parameter(Name="/amictl/channels/web/prod")["Parameter"]["Value"] == w1
    assert _group_images(f, "web-a") == [w1, w1]  # the refresh has replaced nothing yet
    code, out, err = f("rollout", "--resume", rid, "--poll", "0", "-o", "json")
    runs = _group_images(f, "web-a")
    launches = _group_launches(f, "web-a")["ImageId"]
    assert w2 not in runs and launches != w2, (
        f"resume exit {code}: web-a runs {runs} and launches {launches}, the revoked {w2}"
    )
    assert code == 3 and "refusing to roll" in err, out + err  # says why


REVOKE_FLEET = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
  - {alias: w3, name: web-1.2.0, age_days: 10, source: w2, disabled: true, tags: {family: web}}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2}
"""


def _image(f: CliFleet, image: str) -> dict[str, Any]:
    (img,) = f.env.client("ec2").describe_images(
        ImageIds=[image], IncludeDisabled=True, IncludeDeprecated=True
    )["Images"]
    return dict(img)


def test_unrevoking_one_of_two_revocations_lifts_the_other(sandbox: Any, tmp_path: Path) -> None:
    """Attack: web-1.1.0 is revoked twice, for two reasons (two revocations: a CVE in
    its base, then a second one). Undoing the FIRST (`unrevoke ID1`) deletes the
    `amictl:revoked*` tags and the deprecation from the image although the second
    revocation still stands: launch/promote/rollout accept web-1.1.0 again.
    Safe outcome: an image another standing revocation names stays revoked (its tags,
    with that revocation's reason), or unrevoke ID1 refuses while ID2 stands."""
    f = CliFleet(sandbox, REVOKE_FLEET, tmp_path)
    w2 = f.ids["w2"]
    code, out, err = f("revoke", w2, "--reason", "CVE-1", "--yes", "-o", "json")
    assert code == 0, out + err
    first = json.loads(out)["revoke_id"]
    code, out, err = f("revoke", w2, "--reason", "CVE-2", "--yes", "-o", "json")
    assert code == 0, out + err
    second = json.loads(out)["revoke_id"]
    assert first != second
    code, out, err = f("unrevoke", first, "--yes", "-o", "json")
    tags = {t["Key"]: t["Value"] for t in _image(f, w2).get("Tags", [])}
    assert code == 3 or tags.get("amictl:revoked"), (
        f"unrevoke {first} exit {code}: web-1.1.0 no longer revoked though revocation "
        f"{second} stands (tags {tags})"
    )


SHARED_TEMPLATE = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
launch_templates:
  - {alias: lt, name: web-shared, default_version: 2, tags: {"amictl:family": web},
     versions: [{image: w1, instance_type: t3.micro}, {image: w1, instance_type: m5.large}]}
auto_scaling_groups:
  - {alias: p1, name: web-p1, launch_template: lt, version: "1", desired: 1}
  - {alias: p2, name: web-p2, launch_template: lt, version: "2", desired: 2}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2}
"""


def test_a_rollout_of_another_group_on_the_same_template_closes_a_running_one(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: rollout A (`--asg web-p2`, no --wait) is `started`, its refresh of web-p2 in
    progress. Rollout B of web-p1 -- another group on the SAME launch template -- is
    checked against A: they share the template, and "A's refreshes have all ended" is
    judged only on B's own groups (none of A's), so A is closed as `superseded` while
    web-p2's refresh still runs. A can no longer be followed or rolled back
    (`rollout --resume A`: "has ended"); if web-p2's refresh then fails, nothing of amictl
    brings the group back. Safe outcome: B is refused (exit 3) naming A, or A stays
    unfinished and resumable."""
    f = CliFleet(sandbox, SHARED_TEMPLATE, tmp_path)
    asg = f.env.client("autoscaling")
    sandbox.set_instance_refresh(asg="web-p2", outcome="hang", at=50, count=1)
    try:
        code, out, err = f("rollout", "web", "--channel", "prod", "--asg", "web-p2", *FAST,
                           "-o", "json")  # fmt: skip
        assert code == 0, out + err
        a_id = json.loads(out)["rollout_id"]
        code_b, out_b, err_b = f(
            "rollout", "web", "--channel", "prod", "--asg", "web-p1", *FAST, "-o", "json"
        )
        (r,) = asg.describe_instance_refreshes(AutoScalingGroupName="web-p2")["InstanceRefreshes"]
        listed = {x["rollout_id"]: x for x in f.json("rollout", "list")}
    finally:
        sandbox.set_instance_refresh(reset=True)
        with contextlib.suppress(Exception):  # already ended
            asg.cancel_instance_refresh(AutoScalingGroupName="web-p2")
    assert r["Status"] in ("Pending", "InProgress"), r["Status"]  # A's refresh still runs
    assert code_b == 3 or listed[a_id]["unfinished"], (
        f"rollout B exit {code_b}; rollout A is {listed[a_id]['status']} while its refresh "
        f"{r['InstanceRefreshId']} is {r['Status']}"
    )


def test_enabled_ignores_a_batch_environment_on_its_default_amazon_ami(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: a managed AWS Batch compute environment with no imageId (the usual case)
    launches the ECS-optimized Amazon Linux AMI, owned by `amazon`, on its next job wave.
    It is scaled to zero, so no running instance shows the image. The Batch finder only
    references an explicit `ami-` imageId / imageIdOverride, so `allowed-images set
    --from-channels --mode enabled` (no `--also amazon`) is not refused and Batch can no
    longer launch anything. (Image Builder recipes whose parentImage is an Image Builder
    ARN of an Amazon image are the same gap.) Safe outcome: refused with exit 3 naming the
    compute environment (its default image is Amazon's), state left as it was."""
    f = CliFleet(sandbox, BATCH_ONLY, tmp_path)
    ec2, batch, iam = f.env.client("ec2"), f.env.client("batch"), f.env.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_instance_profile(InstanceProfileName="ecsInstanceRole")
    arn = batch.create_compute_environment(
        computeEnvironmentName="ce-default-ami",
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 4,
            "instanceTypes": ["optimal"],
            "subnets": [ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
            "securityGroupIds": [
                ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
            ],
            "instanceRole": "ecsInstanceRole",
        },
    )["computeEnvironmentArn"]
    try:
        code, out, err = f.run(
            "allowed-images", "set", "--from-channels", "--mode", "enabled", "--yes"
        )
        state = ec2.get_allowed_images_settings().get("State")
    finally:
        batch.update_compute_environment(computeEnvironment="ce-default-ami", state="DISABLED")
        batch.delete_compute_environment(computeEnvironment="ce-default-ami")
    assert state != "enabled" and code == 3 and ("ce-default-ami" in err or arn in err), (
        code,
        out,
        err,
    )


SSM_ON_LATEST = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web}}
launch_templates:
  - {alias: lt, name: web-mixed-modes, default_version: 1, tags: {"amictl:family": web},
     versions: [{image: w1, instance_type: m5.large},
                {image_id: "resolve:ssm:/amictl/channels/web/prod", instance_type: t3.micro}]}
auto_scaling_groups:
  - {alias: p, name: web-pinned, launch_template: lt, version: "1", desired: 1}
  - {alias: s, name: web-ssm-latest, launch_template: lt, version: "$Latest", desired: 0}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2, data_type: "aws:ec2:image"}
"""


def test_a_channel_following_group_on_latest_is_moved_to_another_groups_version(
    sandbox: Any, tmp_path: Path
) -> None:
    """Attack: one family-tagged template; web-pinned launches version 1 (w1, m5.large),
    web-ssm-latest launches $Latest = version 2 (resolve:ssm the channel, t3.micro). The
    rollout counts web-ssm-latest as "follows the channel" (no new version, not a
    bystander), builds version 3 on version 1 for web-pinned -- which becomes $Latest --
    and refreshes web-ssm-latest with no desired configuration: it now launches version 3,
    web-pinned's data (m5.large, a literal image), no longer following the channel.
    Safe outcome: web-ssm-latest launches exactly its version 2 data (or is refused as a
    group the rollout would move), and its instances are t3.micro."""
    f = CliFleet(sandbox, SSM_ON_LATEST, tmp_path)
    f.env.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="web-ssm-latest", MaxSize=2, DesiredCapacity=2
    )
    before = _group_launches(f, "web-ssm-latest")
    assert before["ImageId"].startswith("resolve:ssm:")
    code, out, err = f("rollout", "web", "--channel", "prod", "--wait", *FAST, "-o", "json")
    after = _group_launches(f, "web-ssm-latest")
    assert after == before, f"rollout exit {code}: web-ssm-latest now launches {after}"
