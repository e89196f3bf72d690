"""Issue 8: apply trusts nothing but the live account. One test per hole that was found."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from amictl.apply.trust import sign_limits
from amictl.cli.main import cli
from amictl.errors import AmictlError
from amictl.policy.plan_model import Plan
from amictl.state.store import Store
from test_apply import POLICY, Cli, fleet, live_images, live_snapshots


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def invoke(*args: str) -> tuple[int, str]:
    """The exit code as amictl.cli.main.main maps it, and everything printed."""
    res = CliRunner().invoke(cli, list(args))
    exc = res.exception
    if isinstance(exc, AmictlError):
        return exc.exit_code, f"{res.output}error: {exc.message}\nhint: {exc.hint}"
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return res.exit_code, res.output


def reseal(path: Path, body: dict) -> None:
    """What an attacker can do: edit, recompute the checksum (the signature no longer fits)."""
    body["checksum"] = Plan.checksum_of(body)
    path.write_text(json.dumps(body))


def deregister_ids(plan: dict) -> set[str]:
    return {a["image_id"] for a in plan["actions"] if a["type"] == "deregister"}


# 1. A policy's holds travel in the plan; apply never reads the policy file.
def test_policy_holds_apply_although_the_policy_file_changed_or_moved(env, run, tmp_path):
    ids = env.load(fleet(3))["aliases"]
    (run.tmp / "policy.yaml").write_text(POLICY.replace("- tag: legal-hold", "- tag: pinned"))
    p = run.plan()
    assert ids["f1"] in deregister_ids(p)
    assert p["policy"]["holds"] == [{"tag": "pinned"}]
    env.client("ec2").create_tags(Resources=[ids["f1"]], Tags=[{"Key": "pinned", "Value": "true"}])
    # the policy file is edited, then removed; apply runs from another directory
    (run.tmp / "policy.yaml").write_text("# edited\n" + POLICY)
    (run.tmp / "policy.yaml").unlink()
    cwd = os.getcwd()
    os.chdir(tmp_path.parent)
    try:
        code, out = run.apply()
    finally:
        os.chdir(cwd)
    assert code == 0, out
    res = json.loads(out)
    assert ids["f1"] in live_images(env)
    assert any("pinned" in why for why in res["skipped"].values())
    assert ids["f2"] not in live_images(env)


# 2. `expect` cannot vouch for safety: an edited, resealed plan still cannot touch an image
#    that is in use or shared.
def test_edited_expect_cannot_permit_in_use_or_shared(env, run):
    more = (
        "  - {alias: used, age_days: 500, tags: {family: u, version: '1'}}\n"
        "  - {alias: shared, age_days: 500, shared_with: ['210987654321'], "
        "tags: {family: s, version: '1'}}\n"
    )
    ids = env.load(
        fleet(3, more=more)
        + "launch_templates:\n  - {alias: lt, versions: [{image: f3}, {image: used}]}\n"
    )["aliases"]
    p = run.plan()
    victims = [a for a in p["actions"] if a["type"] == "deregister"]
    assert len(victims) >= 2
    for a, target in zip(victims, ("used", "shared"), strict=False):
        a["image_id"] = ids[target]
        a["expect"] = {"in_use": True, "shared": True, "protected": False, "state": "available"}
        a["unsafe"] = True
    marks = {a["id"]: a for a in p["actions"] if a["type"] == "mark"}
    for a in victims:
        for dep in a.get("after", []):
            if dep in marks:
                marks[dep]["image_id"] = a["image_id"]
    reseal(run.tmp / "plan.json", p)
    # resealed: the checksum matches, but this store did not sign it
    assert run.apply("--force-unsafe", "--allow-whole-family")[0] == 3
    # taken as reviewed: the live re-check is the last line, and it holds
    code, out = run.apply("--force-unsafe", "--allow-whole-family", "--accept-unsigned")
    assert code == 0, out
    assert {ids["used"], ids["shared"]} <= live_images(env)


# 3. A plan made for the future is a preview: refused, and marks carry the real time.
def test_future_plan_is_refused_and_marks_use_the_real_time(env, run):
    ids = env.load(fleet(3))["aliases"]
    (run.tmp / "policy.yaml").write_text(
        POLICY.replace("retire: {deregister: 0d", "retire: {deregister: 30d")
    )
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run.plan("--now", future)
    code, _ = run.apply()
    assert code == 3
    assert ids["f1"] in live_images(env)
    # a plan dated in the past marks with the real time: no stage comes due early
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    p = run.plan("--now", past)
    assert run.apply()[0] == 0
    tags = env.client("ec2").describe_images(ImageIds=[ids["f1"]])["Images"][0]["Tags"]
    since = dt.datetime.fromisoformat(
        next(t["Value"] for t in tags if t["Key"] == "amictl:retire-since").replace("Z", "+00:00")
    )
    assert abs((dt.datetime.now(dt.UTC) - since).total_seconds()) < 300
    assert deregister_ids(p) == set()
    assert not deregister_ids(run.plan())  # 30 days have not passed


# 4. Holds protect snapshots (orphaned, and those of a deregistered image).
def test_holds_protect_snapshots(env, run):
    text = (
        fleet(3)
        + "  - {alias: held-orphan, age_days: 90, made_for_deleted_image: true, tags: {legal-hold: 'true'}}\n"
    )
    ids = env.load(text)["aliases"]
    ec2 = env.client("ec2")
    f1 = ec2.describe_images(ImageIds=[ids["f1"]])["Images"][0]
    held_snap = f1["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.create_tags(Resources=[held_snap], Tags=[{"Key": "legal-hold", "Value": "yes"}])
    p = run.plan()
    planned = {a.get("snapshot_id") for a in p["actions"]}
    assert ids["held-orphan"] not in planned and held_snap not in planned
    assert ids["f1"] not in deregister_ids(p)  # a held snapshot holds its image
    # an edited plan that deletes them anyway is refused live
    p["actions"].append(
        {
            "id": "a900",
            "type": "delete-snapshot",
            "account": env.account,
            "region": "us-east-1",
            "snapshot_id": ids["held-orphan"],
            "rule": "snapshots.orphaned",
            "reasons": [],
        }
    )
    reseal(run.tmp / "plan.json", p)
    assert run.apply("--accept-unsigned")[0] == 0
    assert {ids["held-orphan"], held_snap} <= live_snapshots(env)


# 5. Marks belong to a policy: another policy never restores (or advances) them.
def test_policies_do_not_undo_each_other(env, run):
    staged = POLICY.replace(
        "retire: {deregister: 0d", "retire: {deprecate: 0d, disable: 0d, deregister: 30d"
    )
    b = "".join(
        f"  - {{alias: b{i}, age_days: {300 - i}, tags: {{family: b, version: '{i}'}}}}\n"
        for i in (1, 2)
    )
    ids = env.load(fleet(3, fam="a", more=b))["aliases"]
    (run.tmp / "policy.yaml").write_text(
        "name: policy-a\n" + staged.replace('families: ["*"]', 'families: ["a"]')
    )
    run.plan()
    assert run.apply()[0] == 0
    img = env.client("ec2").describe_images(ImageIds=[ids["a1"]], IncludeDisabled=True)["Images"][0]
    assert img["State"] == "disabled"
    (run.tmp / "policy.yaml").write_text(
        "name: policy-b\n" + POLICY.replace('families: ["*"]', 'families: ["b"]')
    )
    p = run.plan()
    assert not [a for a in p["actions"] if a.get("image_id") in (ids["a1"], ids["a2"])]
    # a plan edited to enable/unmark them anyway is refused live
    p["actions"] = [
        {
            "id": "a1",
            "type": "enable",
            "account": env.account,
            "region": "us-east-1",
            "image_id": ids["a1"],
            "rule": "old",
            "reasons": [],
        },
        {
            "id": "a2",
            "type": "unmark",
            "account": env.account,
            "region": "us-east-1",
            "image_id": ids["a1"],
            "rule": "old",
            "reasons": [],
        },
    ]
    reseal(run.tmp / "plan.json", p)
    code, out = run.apply("--accept-unsigned")
    assert code == 0 and set(json.loads(out)["skipped"]) == {"a1", "a2"}
    img = env.client("ec2").describe_images(ImageIds=[ids["a1"]], IncludeDisabled=True)["Images"][0]
    assert img["State"] == "disabled"
    assert {t["Key"]: t["Value"] for t in img["Tags"]}["amictl:retired-by"] == "policy-a"


# 7. Resume: only the latest interrupted run; skipped/failed are final; limits journaled.
def test_resume_selects_only_an_interrupted_latest_run(env, run, sandbox):
    ids = env.load(fleet(4))["aliases"]
    p = run.plan()
    # f1 gets a reference after the plan: its deregistration is skipped (final)
    env.client("ec2").create_launch_template(
        LaunchTemplateName="late", LaunchTemplateData={"ImageId": ids["f1"]}
    )
    code, out = run.apply("--max-destroy", "7")
    assert code == 0 and json.loads(out)["skipped"]
    env.client("ec2").delete_launch_template(LaunchTemplateName="late")
    code, out = run("apply", "--resume", "-o", "json")
    assert code == 0 and json.loads(out)["resumed"] is None  # a finished run is not resumed
    assert ids["f1"] in live_images(env)
    # an interrupted run (simulated: the run row says so, actions never started) resumes
    # with the limits of the original apply
    store = Store(os.environ["AMICTL_STATE"])
    ids2 = env.load(fleet(3, fam="g"))["aliases"]
    p2 = run.plan()
    plan2 = Plan.from_dict(p2)
    store.save_plan(plan2.checksum, p2)
    limits = {"max_destroy": 1, "workers": 2}
    rid = store.start_apply_run(
        plan2.checksum,
        limits,
        plan_signature=p2["signature"],
        limits_signature=sign_limits(store.plan_key(), plan2.checksum, limits),
    )
    store.end_apply_run(rid, "interrupted")
    code, out = run("apply", "--resume", "--yes", "-o", "json")
    assert code == 3  # max_destroy 1 from the original apply; the plan deregisters 2
    code, out = run("apply", "--resume", "--yes", "--max-destroy", "5", "-o", "json")
    assert code == 0, out
    assert ids2["g1"] not in live_images(env)
    code, out = run("apply", "--resume", "-o", "json")
    assert json.loads(out)["resumed"] is None
    first = store.journal_rows(plan_checksum=p["checksum"], limit=10**6)
    assert all(r["status"] != "intended" or r["action_id"] != "a2" for r in first[-1:])
    assert len(store.journal_rows(plan_checksum=p["checksum"], limit=10**6)) == len(first)


# 8. Blast radius: routine plans pass; each refusal names its one flag; no --force.
def test_blast_radius_routine_passes_and_each_refusal_names_its_flag(env, run):
    b = "".join(
        f"  - {{alias: b{i}, age_days: {300 - i}, tags: {{family: b, version: '{i}'}}}}\n"
        for i in range(1, 4)
    )
    env.load(fleet(5, fam="a", more=b))
    (run.tmp / "policy.yaml").write_text(POLICY.replace("keep: {latest: 1}", "keep: {latest: 2}"))
    run.plan()
    code, out = run.apply()
    assert code == 0, out  # keep-latest-2 over families of 3 and 5: no override
    code, _ = run.apply("--force")
    assert code == 2
    env.load(
        "images:\n"
        + "".join(
            f"  - {{alias: c{i}, age_days: {300 - i}, tags: {{family: c{i % 12}, version: '{i}'}}}}\n"
            for i in range(24)
        )
    )
    # 12 of the account's 32 images (37%): past the 25% share
    (run.tmp / "policy.yaml").write_text(POLICY.replace('families: ["*"]', 'families: ["c*"]'))
    run.plan()
    code, output = invoke("apply", str(run.tmp / "plan.json"), "--yes", *env.cli_args())
    assert code == 3 and "--max-share" in output
    (run.tmp / "policy.yaml").write_text(
        POLICY.replace("keep: {latest: 1}", "keep: {}").replace(
            'families: ["*"]', 'families: ["a"]'
        )
    )
    run.plan()
    code, output = invoke("apply", str(run.tmp / "plan.json"), "--yes", *env.cli_args())
    assert code == 3 and "--allow-whole-family" in output


# 9. Recycle Bin status is shown before anything changes.
def test_recycle_bin_status_comes_before_the_deletions(env, run):
    env.load(fleet(2))
    run.plan()
    res = CliRunner().invoke(
        cli, ["apply", str(run.tmp / "plan.json"), "--yes", "--no-progress", *env.cli_args()]
    )
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "NOT recoverable" in out
    assert out.index("Recovery if this goes wrong") < out.index("NOT recoverable")
    first_call = re.search(r"done\s+a\d+\s+deregister", out)
    assert first_call and out.index("NOT recoverable") < first_call.start()


# 10. Plan files shaped wrong: exit 2 naming the key, never a traceback.
def test_bad_plan_files_exit_2(env, run):
    env.load(fleet(2))
    good = run.plan()
    path = run.tmp / "plan.json"
    cases = [
        "[]",
        "null",
        "\x00\x01binary",
        json.dumps({**good, "actions": "x"}),
        json.dumps({**good, "created_at": "yesterday"}),
        json.dumps({**good, "actions": [{**good["actions"][0], "size_gib": "big"}]}),
        json.dumps({**good, "actions": [{**good["actions"][0], "region": "mars-1"}]}),
        json.dumps({**good, "actions": [{**good["actions"][0], "after": ["nope"]}]}),
        json.dumps({**good, "policy": {"path": "x"}}),
        '{"format": 1, "actions": [',
    ]
    for text in cases:
        path.write_text(text)
        code, output = invoke("apply", str(path), "--yes", *env.cli_args())
        assert code == 2, (text[:60], output)
        assert "Traceback" not in output
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert invoke("apply", str(path), "--yes", *env.cli_args())[0] == 2


def test_disk_full_mid_apply_exits_4_and_releases_the_lock(env, run, monkeypatch):
    from sqlalchemy.exc import OperationalError

    env.load(fleet(4))
    run.plan()
    calls = {"n": 0}
    orig = Store.journal_write

    def full(self, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 3:
            raise OperationalError("INSERT", {}, Exception("database or disk is full"))
        return orig(self, **kw)

    monkeypatch.setattr(Store, "journal_write", full)
    code, _ = run.apply()
    assert code == 4
    monkeypatch.setattr(Store, "journal_write", orig)
    store = Store(os.environ["AMICTL_STATE"])
    with store.lock([f"{env.account}/us-east-1"], owner="next"):  # released
        pass
    code, out = run.apply()  # the same plan finishes; nothing is done twice
    assert code == 0, out


# 11. The journal says what happened: "not found" is its own result; prefixes; --since.
def test_journal_not_found_prefix_and_since(env, run):
    env.load(fleet(3))
    p = run.plan()
    for a in p["actions"]:
        a["region"] = "eu-west-1"
    reseal(run.tmp / "plan.json", p)
    code, out = run.apply("--accept-unsigned")
    assert code == 0, out
    res = json.loads(out)
    assert not res["done"]
    snaps = [a["id"] for a in p["actions"] if a["type"] == "delete-snapshot"]
    assert snaps and all(a in res["not_found"] or a in res["skipped"] for a in snaps)
    code, out = run("journal", "--plan", p["checksum"][:12], "-o", "json")
    rows = json.loads(out)
    assert code == 0 and rows and all(r["status"] != "done" for r in rows)
    assert {r["status"] for r in rows} <= {"not-found", "skipped", "intended"}
    assert run("journal", "--since", "garbage")[0] == 2
    assert run("journal", "--plan", "zz")[0] == 2
    code, out = run("journal", "--since", "24h", "-o", "json")
    assert code == 0 and json.loads(out)


# 1b/2b. The plan's policy is trusted only when this state store signed the plan.
def test_edited_or_foreign_plans_are_refused_unless_accepted(env, run, tmp_path, monkeypatch):
    ids = env.load(fleet(3))["aliases"]
    (run.tmp / "policy.yaml").write_text(POLICY.replace("- tag: legal-hold", "- tag: keep-me"))
    env.client("ec2").create_tags(Resources=[ids["f1"]], Tags=[{"Key": "keep-me", "Value": "1"}])
    p = run.plan()
    assert p["signature"].startswith("hmac-sha256:")
    assert ids["f1"] not in deregister_ids(p)
    # an attacker drops the policy's own hold and retargets a deregistration at f1
    p["policy"]["holds"] = []
    victim = next(a for a in p["actions"] if a["type"] == "deregister")
    for a in p["actions"]:
        if a.get("image_id") == victim["image_id"]:
            a["image_id"] = ids["f1"]
    reseal(run.tmp / "plan.json", p)
    code, out = run.apply()
    assert code == 3
    assert ids["f1"] in live_images(env)
    # the same untouched plan applied with another state store: not signed by it
    run.plan()
    monkeypatch.setenv("AMICTL_STATE", f"sqlite:///{tmp_path}/other.db")
    assert run.apply()[0] == 3


# 5b. The policy that marked an image restores it: undeprecate and enable, then unmark.
def test_the_marking_policy_restores_its_images(env, run):
    ids = env.load(fleet(3))["aliases"]
    (run.tmp / "policy.yaml").write_text(
        POLICY.replace(
            "retire: {deregister: 0d", "retire: {deprecate: 0d, disable: 0d, deregister: 30d"
        )
    )
    run.plan()
    assert run.apply()[0] == 0
    ec2 = env.client("ec2")
    img = ec2.describe_images(ImageIds=[ids["f1"]], IncludeDisabled=True)["Images"][0]
    assert img["State"] == "disabled" and img.get("DeprecationTime")
    ec2.create_tags(Resources=[ids["f1"]], Tags=[{"Key": "legal-hold", "Value": "true"}])
    p = run.plan()
    restore = [a for a in p["actions"] if a["image_id"] == ids["f1"]]
    assert [a["type"] for a in restore] == ["undeprecate", "enable", "unmark"]
    code, out = run.apply()
    assert code == 0, out
    img = ec2.describe_images(ImageIds=[ids["f1"]], IncludeDisabled=True)["Images"][0]
    tags = {t["Key"] for t in img.get("Tags", [])}
    assert img["State"] == "available" and not img.get("DeprecationTime")
    assert not tags & {"amictl:retire-since", "amictl:retired-by"}
