"""Hostile review of issue 19 (one decision for plan and apply), on the sandbox.

Each test asserts the SAFE behaviour. The attacks that still get through fail; the ones
that are stopped pass (a short docstring says which is which). Plans are edited and
resealed with the public checksum (``Plan.checksum_of``), as anyone with the file can
(the CLI then needs ``--accept-unsigned``, whose note promises that "every safety fact is
still re-checked live").
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from amictl.policy.plan_model import Plan
from cli_fleet import invoke
from conftest import Env
from test_keep_live import (
    MARK,
    fleet,
    images,
    make_plan,
    once,
    planned,
    policy,
    run_apply,
    snap_of,
    snaps,
    tags,
)

TWO = ["us-east-1", "eu-west-1"]
THREE = ["us-east-1", "eu-west-1", "us-west-2"]


def tag_fv(env: Env, region: str, image_id: str, version: str, fam: str = "f") -> None:
    env.client("ec2", region).create_tags(
        Resources=[image_id],
        Tags=[{"Key": "family", "Value": fam}, {"Key": "version", "Value": version}],
    )


def copy_to(env: Env, src: str, src_region: str, region: str, name: str) -> str:
    return str(
        env.client("ec2", region).copy_image(SourceImageId=src, SourceRegion=src_region, Name=name)[
            "ImageId"
        ]
    )


def reseal(body: dict[str, Any]) -> Plan:
    body = {k: v for k, v in body.items() if k not in ("checksum", "signature")}
    body["checksum"] = Plan.checksum_of(body)
    return Plan.from_dict(body)


def retire_too(body: dict[str, Any], like: str, image_id: str) -> None:
    """Append a mark + deregister of ``image_id`` modelled on those planned for ``like``."""
    mark = next(a for a in body["actions"] if a["type"] == "mark" and a["image_id"] == like)
    dereg = next(a for a in body["actions"] if a["type"] == "deregister" and a["image_id"] == like)
    body["actions"].append({**copy.deepcopy(mark), "id": "x1", "image_id": image_id})
    body["actions"].append(
        {**copy.deepcopy(dereg), "id": "x2", "image_id": image_id, "after": ["x1"]}
    )


# ======================================================== attacks that SUCCEED (fail now)


def test_a_malformed_version_does_not_outrank_newer_releases(env, tmp_path):
    """ATTACK (odd versions). versions.py says a version that is not SemVer-shaped ranks
    "after every well-formed one of the same LEADING NUMBER", but version_key puts every
    malformed version (tuple starting with 1) above EVERY well-formed one (tuple starting
    with 0). An old image tagged ``1.4.0_hotfix`` becomes the family's newest: with
    ``keep: latest 1`` the plan and apply agree to deregister 2.0.0, the real newest."""
    ids = env.load(fleet(["1.4.0_hotfix", "1.5.0", "2.0.0"]))["aliases"]
    p = make_plan(env, policy())
    run_apply(env, p, tmp_path)
    live = images(env)
    assert ids["f3"] in live, "the newest release 2.0.0 was deregistered"


def test_a_failed_ami_does_not_count_among_the_newest(env, tmp_path):
    """ATTACK (failed bakes). keep.decide.usable_ranks drops only images whose
    ``amictl:bake-status`` tag says failed/abandoned/building; an image whose AMI state is
    ``failed`` (CreateImage failed: it can never launch) or ``pending`` still ranks. A
    failed v3 is "the newest": keep latest 1 retires v2, the last image that launches."""
    ids = env.load(
        fleet(["1", "2"]) + "  - {alias: bad, name: f-3, age_days: 1, state: failed, "
        "tags: {family: f, version: '3'}}\n"
    )["aliases"]
    p = make_plan(env, policy())
    run_apply(env, p, tmp_path)
    live = images(env)
    assert ids["f2"] in live, "the last launchable version was deregistered"


def test_a_pending_newest_does_not_push_the_last_good_version_out(env, tmp_path):
    """ATTACK (same root as the failed AMI). An image still ``pending`` (a CreateImage made
    outside amictl's bake, so no amictl:bake-status tag) ranks as the newest: keep
    latest 1 retires v2 before anyone knows whether v3 will ever be available."""
    ids = env.load(
        fleet(["1", "2"]) + "  - {alias: wip, name: f-3, age_days: 0, state: pending, "
        "tags: {family: f, version: '3'}}\n"
    )["aliases"]
    p = make_plan(env, policy())
    run_apply(env, p, tmp_path)
    assert ids["f2"] in images(env), "the last available version was deregistered"


def test_a_disabled_newest_does_not_count_among_the_newest(env, tmp_path):
    """ATTACK (judgment call; same root as the failed AMI). A newest version someone
    disabled (a known-bad build pulled by security) still counts toward keep-latest-N, so
    the last version anyone can launch is retired: the family ends with nothing usable."""
    ids = env.load(
        fleet(["1", "2"]) + "  - {alias: pulled, name: f-3, age_days: 1, disabled: true, "
        "tags: {family: f, version: '3'}}\n"
    )["aliases"]
    p = make_plan(env, policy())
    run_apply(env, p, tmp_path)
    assert ids["f2"] in images(env), "the last launchable version was deregistered"


def test_a_copy_of_a_copy_made_after_the_plan_keeps_the_first_source(env, tmp_path):
    """ATTACK (copies in other regions, after the plan). apply.live.LiveReader._with_copies
    merges a region only if it holds an image whose source is LOCAL to the region being
    decided; ``local`` is computed once, before any merge. f1 (us-east-1) is copied to
    eu-west-1 (c1, not the newest there) and c1 to us-west-2 (gc, newest there: kept).
    A fresh plan keeps c1 and f1 as ancestors of gc; apply merges eu-west-1 but never
    us-west-2, so c1 looks unkept and f1 is deregistered. Fix: in _with_copies, iterate
    to a fixed point (add each merged region's image ids to ``local`` and re-check the
    remaining regions), or read every region's listing and use keep's own descendant walk."""
    text = f"regions: {THREE}\n" + fleet(["1", "2"])
    ids = env.load(text)["aliases"]
    p = make_plan(env, policy(), THREE)
    assert planned(p, "deregister") == {ids["f1"]}
    c1 = copy_to(env, ids["f1"], "us-east-1", "eu-west-1", "f-1")
    tag_fv(env, "eu-west-1", c1, "1")
    c2 = copy_to(env, ids["f2"], "us-east-1", "eu-west-1", "f-2")
    tag_fv(env, "eu-west-1", c2, "2")
    gc = copy_to(env, c1, "eu-west-1", "us-west-2", "f-1")
    tag_fv(env, "us-west-2", gc, "1")
    fresh = make_plan(env, policy(), THREE)
    assert ids["f1"] not in planned(fresh, "deregister"), "a fresh plan keeps it (ancestor)"
    res = run_apply(env, p, tmp_path, regions=THREE)
    assert ids["f1"] in images(env), res.to_dict()


def test_an_edited_plan_cannot_hide_a_copy_by_narrowing_its_regions(env, tmp_path):
    """ATTACK (edited, resealed plan). The regions apply searches for copies and children
    come from the PLAN FILE (apply.live.plan_regions reads ``plan.inventory.regions``),
    which is not part of the "policy" that --accept-unsigned takes as reviewed. f2 is
    kept as the source of its copy in eu-west-1; an edited plan adds a mark + deregister
    of f2 and sets ``inventory.regions`` to [us-east-1]: apply never looks at eu-west-1
    and deregisters f2 (the unedited-regions twin below is stopped). Fix: plan_regions
    should search every region the account has images in (or at least every enabled
    region, as a fresh ``amictl plan`` without --region would), not a list from the file."""
    ids = env.load(f"regions: {TWO}\n" + fleet(["1", "2", "3"]))["aliases"]
    c2 = copy_to(env, ids["f2"], "us-east-1", "eu-west-1", "f-2")
    tag_fv(env, "eu-west-1", c2, "2")
    p = make_plan(env, policy(), TWO)
    assert planned(p, "deregister") == {ids["f1"]}, "f2 is kept as the source of c2"
    body = p.to_dict()
    retire_too(body, ids["f1"], ids["f2"])
    body["inventory"]["regions"] = ["us-east-1"]
    res = run_apply(env, reseal(body), tmp_path, regions=TWO)
    assert ids["f2"] in images(env), res.to_dict()


@pytest.mark.xfail(
    strict=True,
    reason="intended (issue 19 item 2, docs/policy.md): the CreateImage/CopyImage description is "
    "evidence amictl accepts for images deregistered outside it; one forged with CreateSnapshot "
    "passes. Use snapshots.orphaned.action: report or archive, or a hold, where that matters",
)
def test_a_hand_written_description_is_not_aws_evidence(env, tmp_path):
    """ATTACK (snapshot provenance). The issue asks for provenance "only by evidence AWS
    writes", but model.made_for_image trusts the Description, which CreateSnapshot and
    CopySnapshot let ANYONE write (DR/backup scripts that copy AMI snapshots commonly keep
    the source description). A volume backup whose description reads like CreateImage's
    is taken as "made for" an image no longer registered and deleted by
    ``snapshots.orphaned {only_from_images: true}``. Fix (keep/snapshots.snapshot_origin):
    for orphans, believe a description only when the state store recorded that image's
    block device mappings holding this snapshot (or the image is registered and lists
    it); otherwise treat it as a volume backup."""
    ids = env.load(
        fleet(["1"]) + "snapshots:\n  - {alias: dr, age_days: 30, description: 'Created by "
        "CreateImage(i-0123456789abcdef0) for ami-0123456789abcdef0 from vol-0123456789abcdef0'}\n"
    )["aliases"]
    p = make_plan(env, policy())
    run_apply(env, p, tmp_path)
    assert ids["dr"] in snaps(env), "a volume backup was deleted as an image's orphan"


def test_re_publishing_the_current_release_does_not_drop_the_rollback_target(
    env, tmp_path, monkeypatch
):
    """ATTACK (odd channel histories). The rollback target is read from SSM's parameter
    history, which keeps only the last 100 versions. A CI job that re-writes the channel's
    CURRENT value on every run (same value, Overwrite) pushes the previous release out of
    the history after 100 runs: retirement no longer keeps it (inventory.releases sees a
    one-release channel) and `rollback` has nowhere to go. Fix: don't derive the keep
    from a 100-entry window alone: record each promotion/rollback in the state store
    (channels/ops.promote/rollback) and keep the union in collectors._channel_history, or
    label the previous release's parameter version (a labelled version is never dropped)."""
    ids = env.load(fleet(["1.1.0", "1.2.0", "1.3.0"]))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    assert invoke(["promote", "f", "1.1.0", "--channel", "prod", *env.cli_args()])[0] == 0
    assert invoke(["promote", "f", "1.2.0", "--channel", "prod", *env.cli_args()])[0] == 0
    ssm = env.client("ssm")
    for _ in range(100):
        ssm.put_parameter(
            Name="/amictl/channels/f/prod",
            Value=ids["f2"],
            Type="String",
            DataType="aws:ec2:image",
            Overwrite=True,
        )
    # SSM's window lost it, amictl's record of its promotions did not: `plan` keeps it ...
    pol = tmp_path / "p1.yaml"
    pol.write_text(policy())
    code, out, err = invoke(["plan", "-p", str(pol), "-o", "json", *env.cli_args()])
    assert code == 0, err
    deregs = {a["image_id"] for a in json.loads(out)["actions"] if a["type"] == "deregister"}
    assert ids["f1"] not in deregs, "the rollback target is retired"
    # ... and so does apply's live view, whatever plan it is given (one made without the record)
    import os

    from amictl.apply.executor import ApplyOptions, execute, prepare
    from amictl.state.store import Store

    p = make_plan(env, policy())
    assert ids["f1"] in planned(p, "deregister")
    store = Store(os.environ["AMICTL_STATE"])
    conn = env.connector()
    o = ApplyOptions(max_destroy=100, max_share=1.0, allow_whole_family=True, workers=1)
    res = execute(conn, store, prepare(conn, p, o, store), o)
    assert ids["f1"] in set(images(env)), res.to_dict()


# ========================================================= attacks that are STOPPED (pass)


def test_stopped_an_edited_plan_with_its_regions_intact_keeps_the_copys_source(env, tmp_path):
    """Stopped: the same edit without narrowing the regions: the copy is found live."""
    ids = env.load(f"regions: {TWO}\n" + fleet(["1", "2", "3"]))["aliases"]
    c2 = copy_to(env, ids["f2"], "us-east-1", "eu-west-1", "f-2")
    tag_fv(env, "eu-west-1", c2, "2")
    p = make_plan(env, policy(), TWO)
    body = p.to_dict()
    retire_too(body, ids["f1"], ids["f2"])
    res = run_apply(env, reseal(body), tmp_path, regions=TWO)
    assert ids["f2"] in images(env)
    assert ids["f1"] not in images(env)
    assert "x2" in res.skipped and "ancestor" in res.skipped["x1"] + res.skipped["x2"]


def test_stopped_an_image_registered_from_the_snapshot_mid_apply_keeps_it(env, tmp_path):
    """Stopped: after the mark, before the wave that deregisters the image (and would delete
    its snapshot with it, DeleteAssociatedSnapshots), someone registers a new image from the
    snapshot: that wave's live view lists it, so the image goes alone and the snapshot
    stays. (There is no moment between a deregister-with-snapshots and its deletes.)"""
    ids = env.load(fleet(["1", "2"]))["aliases"]
    sid = snap_of(env, ids["f1"])
    p = make_plan(env, policy())
    assert any(a.snapshot_id == sid for a in p.actions)
    ec2 = env.client("ec2")

    def reuse() -> None:
        ec2.register_image(
            Name="rebuilt-from-snapshot",
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}],
        )

    res = run_apply(env, p, tmp_path, once(reuse, when="mark"))
    assert ids["f1"] not in images(env)
    assert sid in snaps(env), res.to_dict()


def test_stopped_a_snapshot_shared_mid_apply_is_not_deleted(env, tmp_path):
    """Stopped: the snapshot is shared with another account after the image's mark, before
    the wave that deregisters it: that wave reads createVolumePermission, so the image is
    deregistered without its snapshots and the snapshot's own delete is skipped."""
    ids = env.load(fleet(["1", "2"]))["aliases"]
    sid = snap_of(env, ids["f1"])
    p = make_plan(env, policy())
    ec2 = env.client("ec2")

    def share() -> None:
        ec2.modify_snapshot_attribute(
            SnapshotId=sid,
            Attribute="createVolumePermission",
            OperationType="add",
            UserIds=["123456789012"],
        )

    res = run_apply(env, p, tmp_path, once(share, when="mark"))
    assert ids["f1"] not in images(env)
    assert sid in snaps(env), res.to_dict()


def test_stopped_an_edited_rule_name_does_not_change_the_decision(env, tmp_path):
    """Stopped: a resealed plan whose policy gains a rule that keeps nothing (selecting
    nothing) and whose deregister of the newest image names that rule: the live decision
    finds the image governed by the first rule and skips."""
    ids = env.load(fleet(["1", "2"]))["aliases"]
    p = make_plan(env, policy())
    body = p.to_dict()
    rules = body["policy"]["rules"]
    lax = copy.deepcopy(rules[0])
    lax["name"] = "lax"
    lax["keep"] = {**lax.get("keep", {}), "latest": None}
    rules.append(lax)
    retire_too(body, ids["f1"], ids["f2"])
    for a in body["actions"]:
        if a["id"] in ("x1", "x2"):
            a["rule"] = "lax"
    res = run_apply(env, reseal(body), tmp_path)
    assert ids["f2"] in images(env), res.to_dict()


def test_stopped_a_hand_written_channel_value_is_a_release_whose_predecessor_stays(env, tmp_path):
    """Stopped: a channel moved by hand (put-parameter, no amictl description) still
    pushes a release: the value it replaced is the rollback target and is kept."""
    ids = env.load(fleet(["1", "2", "3"]))["aliases"]
    ssm = env.client("ssm")
    name = "/amictl/channels/f/prod"
    ssm.put_parameter(Name=name, Value=ids["f1"], Type="String", DataType="aws:ec2:image")
    ssm.put_parameter(
        Name=name,
        Value=ids["f2"],
        Type="String",
        DataType="aws:ec2:image",
        Overwrite=True,
        Description="moved by hand",
    )
    p = make_plan(env, policy())
    run_apply(env, p, tmp_path)
    live = images(env)
    assert ids["f1"] in live and ids["f2"] in live


def test_stopped_a_forged_foreign_mark_is_left_alone(env, tmp_path):
    """Stopped: an image marked by another policy (amictl:retired-by: other) is left to
    it by p1 (no stage advanced, no restore), even when p1's plan is edited to retire it."""
    ids = env.load(fleet(["1", "2", "3"]))["aliases"]
    p = make_plan(env, policy(keep="{latest: 2}"))
    env.client("ec2").create_tags(
        Resources=[ids["f1"]],
        Tags=[
            {"Key": MARK, "Value": "2020-01-01T00:00:00Z"},
            {"Key": "amictl:retired-by", "Value": "other"},
        ],
    )
    res = run_apply(env, p, tmp_path)
    img = images(env)[ids["f1"]]
    assert tags(img)["amictl:retired-by"] == "other"
    assert any("left to it" in m for m in res.skipped.values()), res.to_dict()


def test_stopped_a_copy_in_an_unreadable_region_blocks_its_source(env, sandbox, tmp_path):
    """Stopped: a copy is made after the plan in eu-west-1, and DescribeImages there is
    refused during the apply: apply cannot see whether the copy keeps its source, so the
    source is not deregistered."""
    ids = env.load(f"regions: {TWO}\n" + fleet(["1", "2"]))["aliases"]
    p = make_plan(env, policy(), TWO)
    assert planned(p, "deregister") == {ids["f1"]}
    c1 = copy_to(env, ids["f1"], "us-east-1", "eu-west-1", "f-1")
    tag_fv(env, "eu-west-1", c1, "1")
    sandbox.set_faults(
        [
            {
                "service": "ec2",
                "region": "eu-west-1",
                "action": "DescribeImages",
                "code": "UnauthorizedOperation",
                "status": 403,
            }
        ]
    )
    try:
        res = run_apply(env, p, tmp_path, regions=TWO)
    finally:
        sandbox.clear_faults()
    assert ids["f1"] in images(env), res.to_dict()
    assert any("could not be read" in m for m in res.skipped.values()), res.to_dict()


def test_stopped_a_rollback_mid_apply_keeps_the_new_rollback_target(env, tmp_path, monkeypatch):
    """Stopped: channel prod went 1.0 -> 1.1 -> 1.2, so the plan keeps 1.1 (one step back)
    and retires 1.0. An operator rolls prod back to 1.1 while the apply runs (after the
    mark): 1.0 is now the rollback target, and the deregister decided live keeps it."""
    ids = env.load(fleet(["1.0.0", "1.1.0", "1.2.0", "1.3.0"]))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        assert invoke(["promote", "f", v, "--channel", "prod", *env.cli_args()])[0] == 0
    p = make_plan(env, policy())
    assert planned(p, "deregister") == {ids["f1"]}

    def roll() -> None:
        assert invoke(["rollback", "f", "--channel", "prod", *env.cli_args()])[0] == 0

    res = run_apply(env, p, tmp_path, once(roll, "mark"))
    assert ids["f1"] in images(env), res.to_dict()


def test_stopped_garbage_dependencies_never_run(env, tmp_path):
    """Stopped: a resealed plan whose deregister depends on itself (a cycle) and whose
    snapshot delete depends on an action id that does not exist: nothing of them runs."""
    ids = env.load(fleet(["1", "2"]))["aliases"]
    p = make_plan(env, policy())
    body = p.to_dict()
    for a in body["actions"]:
        if a["type"] == "deregister":
            a["after"] = [a["id"]]
        if a["type"] == "delete-snapshot":
            a["after"] = ["nope"]
    try:
        res = run_apply(env, reseal(body), tmp_path)
    except Exception:  # noqa: BLE001 - refusing the file is fine too
        res = None
    assert ids["f1"] in images(env), res and res.to_dict()
    assert snap_of(env, ids["f1"]) in snaps(env)
