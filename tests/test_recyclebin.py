"""Recycle Bin: coverage, ensure, the bin, restore (library and CLI), and the sandbox's rbin."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
from click.testing import CliRunner

from amictl import recyclebin
from amictl.aws.session import Target
from amictl.cli.main import cli
from amictl.errors import InputError
from amictl.recyclebin import NotInRecycleBin, ResourceCoverage, Rule
from cli_fleet import invoke

FLEET = """
images:
  - {alias: a, name: app-1, tags: {env: prod, team: x},
     snapshots: [{size_gib: 8}, {size_gib: 20, device: /dev/sdf}]}
  - {alias: b, name: app-2, snapshots: [{size_gib: 8}]}
snapshots:
  - {alias: backup, age_days: 10}
"""


def target(env, region: str = "us-east-1") -> Target:
    return Target(env.account, region, env.role_arn)


def image_snapshots(ec2, image_id: str) -> list[str]:
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"] if "Ebs" in m]


def delete_image(ec2, image_id: str) -> list[str]:
    """Deregister the image, then delete its snapshots (as `amictl apply` does)."""
    snaps = image_snapshots(ec2, image_id)
    ec2.deregister_image(ImageId=image_id)
    for s in snaps:
        ec2.delete_snapshot(SnapshotId=s)
    return snaps


def rule(rbin, rtype: str, days: int, **kw) -> str:
    return rbin.create_rule(
        ResourceType=rtype,
        RetentionPeriod={"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"},
        **kw,
    )["Identifier"]


def tags(**kv: str) -> list[dict[str, str]]:
    return [{"ResourceTagKey": k, "ResourceTagValue": v} for k, v in kv.items()]


# ---------------------------------------------------------------- coverage


def test_coverage_none(env):
    cov = recyclebin.coverage(env.connector(), target(env))
    assert (cov.images.recoverable, cov.images.scope, cov.images.days) == (False, "none", None)
    assert cov.snapshots.recoverable is False and cov.recoverable is False
    assert cov.describe() == (
        "images NOT recoverable (no rule); snapshots NOT recoverable (no rule)"
    )
    assert cov.recoverable_for("image", {"env": "prod"}) is False
    d = cov.to_dict()
    assert d["account"] == env.account and d["images"]["scope"] == "none"
    json.dumps(d)


def test_coverage_region_wide_takes_the_longest_rule(env):
    rbin = env.client("rbin")
    rule(rbin, "EC2_IMAGE", 7)
    rule(rbin, "EC2_IMAGE", 14)
    rule(rbin, "EBS_SNAPSHOT", 30, ExcludeResourceTags=tags(scratch="yes"))
    cov = recyclebin.coverage(env.connector(), target(env))
    assert (cov.images.recoverable, cov.images.scope, cov.images.days) == (True, "region", 14)
    assert len(cov.images.rules) == 2 and all(r.status == "available" for r in cov.images.rules)
    assert cov.snapshots.days == 30 and cov.snapshots.exclude_tags == (("scratch", "yes"),)
    assert cov.recoverable is True
    assert cov.describe() == (
        "images recoverable for 14 days (region-wide rule); snapshots recoverable for 30 days "
        "(region-wide rule, except those tagged scratch=yes)"
    )
    assert cov.recoverable_for("EBS_SNAPSHOT", {"scratch": "yes"}) is False
    assert cov.recoverable_for("snapshot", {"scratch": "no"}) is True
    assert cov.retention_for("image", {}) == 14


def test_coverage_tag_scoped(env):
    rbin = env.client("rbin")
    rule(rbin, "EC2_IMAGE", 10, ResourceTags=tags(env="prod", team="x"))
    cov = recyclebin.coverage(env.connector(), target(env))
    im = cov.images
    assert (im.recoverable, im.scope, im.days) == (False, "tagged", None)
    assert im.tags == (("env", "prod"), ("team", "x"))
    assert im.describe() == "images recoverable only if tagged env=prod or team=x (10 days)"
    # AWS: a resource with at least one of the rule's tag pairs is kept
    assert cov.recoverable_for("image", {"team": "x"}) is True
    assert cov.recoverable_for("image", {"env": "prod", "team": "y"}) is True
    assert cov.recoverable_for("image", {"env": "dev"}) is False
    assert cov.retention_for("image", {"team": "x"}) == 10
    assert cov.snapshots.scope == "none"


def test_coverage_unknown_when_rules_cannot_be_listed(env, sandbox):
    sandbox.set_faults(
        [
            {
                "service": "rbin",
                "region": "ap-south-1",
                "code": "AccessDeniedException",
                "status": 403,
            }
        ]
    )
    try:
        cov = recyclebin.coverage(env.connector(["ap-south-1"]), target(env, "ap-south-1"))
    finally:
        sandbox.clear_faults()
    assert cov.images.recoverable is None and cov.images.scope == "unknown"
    assert cov.images.error_code and cov.recoverable is None
    assert "recoverability unknown" in cov.describe()
    assert cov.recoverable_for("image") is None


def test_a_rule_that_cannot_be_read_makes_the_scope_unknown():
    ok = Rule("r1", "EC2_IMAGE", 7, resource_tags=(("env", "prod"),))
    hidden = Rule("r2", "EC2_IMAGE", 30, detail_error="AccessDeniedException")
    rc = ResourceCoverage.from_rules("EC2_IMAGE", [ok, hidden])
    assert (rc.recoverable, rc.scope, rc.error_code) == (None, "unknown", "AccessDeniedException")
    assert rc.recoverable_for({"env": "prod"}) is True  # the readable rule keeps it
    assert rc.recoverable_for({}) is None
    region = Rule("r3", "EC2_IMAGE", 3)
    rc = ResourceCoverage.from_rules("EC2_IMAGE", [hidden, region])
    assert (rc.recoverable, rc.scope, rc.days) == (True, "region", 3)
    pending = Rule("r4", "EBS_SNAPSHOT", 3, status="pending")
    rc = ResourceCoverage.from_rules("EBS_SNAPSHOT", [pending])
    assert rc.recoverable is False and "pending" in rc.describe()


# ---------------------------------------------------------------- ensure


def test_ensure_creates_then_reuses(env):
    conn, t = env.connector(), target(env)
    first = recyclebin.ensure(conn, t, 7)
    assert [(r["resource_type"], r["status"], r["scope"]) for r in first] == [
        ("EC2_IMAGE", "created", "region"),
        ("EBS_SNAPSHOT", "created", "region"),
    ]
    assert all("amictl" in r["description"] and r["retention_days"] == 7 for r in first)
    again = recyclebin.ensure(conn, t, 7)
    assert [r["status"] for r in again] == ["exists", "exists"]
    assert [r["rule_id"] for r in again] == [r["rule_id"] for r in first]
    # a shorter or tag-scoped request is already kept by the 7-day region-wide rules
    assert {r["status"] for r in recyclebin.ensure(conn, t, 3, {"env": "prod"})} == {"exists"}
    rbin = env.client("rbin")
    assert len(rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"]) == 1
    # a longer retention is a new rule (the longest wins)
    longer = recyclebin.ensure(conn, t, 30)
    assert [r["status"] for r in longer] == ["created", "created"]
    assert recyclebin.coverage(conn, t).images.days == 30


def test_ensure_tag_scoped(env):
    conn, t = env.connector(), target(env)
    rows = recyclebin.ensure(conn, t, 14, {"team": "x", "env": "prod"})
    assert [(r["status"], r["scope"], r["tags"]) for r in rows] == [
        ("created", "tagged", ["env=prod", "team=x"])
    ] * 2
    detail = env.client("rbin").get_rule(Identifier=rows[0]["rule_id"])
    assert detail["ResourceTags"] == tags(env="prod", team="x")
    assert "if tagged env=prod or team=x" in detail["Description"]
    assert [r["status"] for r in recyclebin.ensure(conn, t, 14, {"team": "x"})] == ["exists"] * 2
    cov = recyclebin.coverage(conn, t)
    assert cov.images.scope == "tagged" and cov.recoverable_for("image", {"team": "x"})
    # region-wide is a different request: it creates
    assert [r["status"] for r in recyclebin.ensure(conn, t, 14)] == ["created"] * 2


@pytest.mark.parametrize("days", [0, 366, -1, 7.5, True])
def test_ensure_refuses_bad_retention(env, days):
    with pytest.raises(InputError):
        recyclebin.ensure(env.connector(), target(env), days)


# ---------------------------------------------------------------- bin and restore


def test_deleted_image_lands_in_the_bin_and_restore_brings_it_back(env):
    ids = env.load(FLEET)["aliases"]
    conn, t, ec2 = env.connector(), target(env), env.client("ec2")
    recyclebin.ensure(conn, t, 7)
    snaps = delete_image(ec2, ids["a"])
    rows = recyclebin.list_bin(conn, t)
    assert [(r["type"], r["id"]) for r in rows if r["type"] == "image"] == [("image", ids["a"])]
    binned = {r["id"]: r for r in rows if r["type"] == "snapshot"}
    assert set(binned) == set(snaps)
    assert {r["image_id"] for r in binned.values()} == {ids["a"]}
    img = rows[0]
    assert img["name"] == "app-1" and 6.9 <= img["days_left"] <= 7
    assert img["recycle_bin_enter_time"] < img["retention_end_time"]

    res = recyclebin.restore(conn, t, ids["a"])
    assert res["restored"][-1] == ids["a"] and set(res["snapshots_restored"]) == set(snaps)
    assert res["missing_snapshots"] == [] and res["warnings"] == []
    assert res["state"] == "available"
    assert ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]["State"] == "available"
    assert len(ec2.describe_snapshots(SnapshotIds=snaps)["Snapshots"]) == 2
    assert recyclebin.list_bin(conn, t) == []
    with pytest.raises(NotInRecycleBin, match="not deleted"):
        recyclebin.restore(conn, t, ids["a"])


def test_restore_reports_snapshots_gone_for_good(env):
    ids = env.load(FLEET)["aliases"]
    conn, t, ec2 = env.connector(), target(env), env.client("ec2")
    rule(env.client("rbin"), "EC2_IMAGE", 7)  # images only: the snapshots are not kept
    snaps = delete_image(ec2, ids["b"])
    res = recyclebin.restore(conn, t, ids["b"])
    assert res["restored"] == [ids["b"]] and res["missing_snapshots"] == snaps
    assert "cannot launch" in res["warnings"][0]


def test_restore_a_snapshot(env):
    ids = env.load(FLEET)["aliases"]
    conn, t, ec2 = env.connector(), target(env), env.client("ec2")
    recyclebin.ensure(conn, t, 3)
    ec2.delete_snapshot(SnapshotId=ids["backup"])
    assert [r["id"] for r in recyclebin.list_bin(conn, t)] == [ids["backup"]]
    res = recyclebin.restore(conn, t, ids["backup"])
    assert res["type"] == "snapshot" and res["restored"] == [ids["backup"]]
    assert ec2.describe_snapshots(SnapshotIds=[ids["backup"]])["Snapshots"]


def test_restore_errors(env):
    ids = env.load(FLEET)["aliases"]
    conn, t = env.connector(), target(env)
    for bad in ("ami-xyz", "i-0123456789abcdef0", "", "snap-", "ami-0123456789ABCDEF0"):
        with pytest.raises(InputError):
            recyclebin.restore(conn, t, bad)
    with pytest.raises(NotInRecycleBin, match="not in the Recycle Bin") as e:
        recyclebin.restore(conn, t, "ami-0123456789abcdef0")
    assert e.value.exit_code == 1 and e.value.hint
    with pytest.raises(NotInRecycleBin, match="not deleted"):
        recyclebin.restore(conn, t, ids["b"])
    with pytest.raises(NotInRecycleBin):
        recyclebin.restore(conn, t, "snap-0123456789abcdef0")


def test_iam_permissions_are_registered():
    from amictl.iam import COMMANDS, permissions

    assert "recycle-bin" in COMMANDS
    perms = permissions("recycle-bin")
    for a in (
        "rbin:CreateRule",
        "rbin:ListRules",
        "rbin:GetRule",
        "ec2:ListImagesInRecycleBin",
        "ec2:ListSnapshotsInRecycleBin",
        "ec2:RestoreImageFromRecycleBin",
        "ec2:RestoreSnapshotFromRecycleBin",
        "sts:GetCallerIdentity",
    ):
        assert a in perms
    assert "ec2:DeregisterImage" not in perms
    res = CliRunner().invoke(cli, ["iam-policy", "recycle-bin"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    write = next(s for s in doc["Statement"] if s["Sid"] == "AmictlWrite")["Action"]
    assert "rbin:CreateRule" in write and "ec2:RestoreImageFromRecycleBin" in write


# ---------------------------------------------------------------- CLI


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env = env
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)

    def __call__(self, *args: str) -> tuple[int, str]:
        code, out, _err = invoke([*args, *self.env.cli_args()])
        return code, out

    def json(self, *args: str):
        code, out = self(*args, "-o", "json")
        assert code == 0, out
        return json.loads(out)


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def test_cli_status_ensure_ls_restore(env, run):
    ids = env.load(FLEET)["aliases"]
    status = run.json("recycle-bin", "status")
    assert [(s["account"], s["region"], s["recoverable"]) for s in status] == [
        (env.account, "us-east-1", False)
    ]
    rows = run.json("recycle-bin", "ensure", "--retention", "2w")
    assert [(r["status"], r["retention_days"]) for r in rows] == [("created", 14)] * 2
    assert [r["status"] for r in run.json("recycle-bin", "ensure", "--retention", "14d")] == [
        "exists"
    ] * 2
    status = run.json("recycle-bin", "status")
    assert status[0]["images"]["days"] == 14 and status[0]["snapshots"]["scope"] == "region"
    code, out = run("recycle-bin", "status")
    assert code == 0 and "14 days (region-wide)" in out

    snaps = delete_image(env.client("ec2"), ids["a"])
    listed = run.json("recycle-bin", "ls")
    assert {r["id"] for r in listed} == {ids["a"], *snaps}
    code, out = run("recycle-bin", "ls")
    assert code == 0 and ids["a"] in out

    res = run.json("recycle-bin", "restore", ids["a"])
    assert res["restored"][-1] == ids["a"] and res["missing_snapshots"] == []
    assert run.json("recycle-bin", "ls") == []
    code, _ = run("recycle-bin", "restore", ids["a"])
    assert code == 1  # registered again: nothing to restore


def test_cli_tag_scoped_and_many_regions(env, run):
    rows = run.json(
        "recycle-bin",
        "ensure",
        "--retention",
        "7d",
        "--tag",
        "team=x",
        "--region",
        "us-east-1,eu-west-1",
    )
    assert {(r["region"], r["scope"], tuple(r["tags"])) for r in rows} == {
        ("us-east-1", "tagged", ("team=x",)),
        ("eu-west-1", "tagged", ("team=x",)),
    }
    status = run.json("recycle-bin", "status", "--region", "us-east-1,eu-west-1")
    assert {s["region"]: s["images"]["scope"] for s in status} == {
        "us-east-1": "tagged",
        "eu-west-1": "tagged",
    }


@pytest.mark.parametrize(
    "args",
    [
        ["ensure", "--retention", "36h"],
        ["ensure", "--retention", "0d"],
        ["ensure", "--retention", "400d"],
        ["ensure", "--retention", "seven"],
        ["ensure", "--retention", "7d", "--tag", "novalue"],
        ["ensure"],
        ["restore", "not-an-id"],
    ],
)
def test_cli_bad_input_exits_2(run, args):
    code, _ = run("recycle-bin", *args)
    assert code == 2


def test_cli_restore_unknown_id_exits_1(run):
    code, _ = run("recycle-bin", "restore", "ami-0123456789abcdef0")
    assert code == 1


# ---------------------------------------------------------------- the sandbox's rbin (boto3 over HTTP)


def test_sandbox_list_rules_paginates_and_summarises(env):
    rbin = env.client("rbin")
    made = [rule(rbin, "EBS_SNAPSHOT", d) for d in range(1, 6)]
    pages = list(
        rbin.get_paginator("list_rules").paginate(
            ResourceType="EBS_SNAPSHOT", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["Rules"]) for p in pages] == [2, 2, 1]
    assert [r["Identifier"] for p in pages for r in p["Rules"]] == made
    # like AWS, a summary has no tags and no status: GetRule has them
    assert "ResourceTags" not in pages[0]["Rules"][0] and "Status" not in pages[0]["Rules"][0]
    assert rbin.get_rule(Identifier=made[0])["Status"] == "available"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        rbin.create_rule(
            ResourceType="EC2_IMAGE",
            RetentionPeriod={"RetentionPeriodValue": 1, "RetentionPeriodUnit": "DAYS"},
            ResourceTags=tags(a="1"),
            ExcludeResourceTags=tags(b="2"),
        )
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_sandbox_tag_level_rule_keeps_resources_with_any_of_its_tags(env):
    ids = env.load(
        """
images:
  - {alias: one, tags: {team: x}, snapshots: [{size_gib: 8, tags: {env: prod}}]}
  - {alias: none, tags: {team: y}, snapshots: [{size_gib: 8}]}
"""
    )["aliases"]
    rbin, ec2 = env.client("rbin"), env.client("ec2")
    for rtype in ("EC2_IMAGE", "EBS_SNAPSHOT"):
        rule(rbin, rtype, 2, ResourceTags=tags(env="prod", team="x"))
    one, none = delete_image(ec2, ids["one"]), delete_image(ec2, ids["none"])
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [ids["one"]]
    assert [s["SnapshotId"] for s in ec2.list_snapshots_in_recycle_bin()["Snapshots"]] == one
    assert none[0] not in {
        s["SnapshotId"] for s in ec2.list_snapshots_in_recycle_bin()["Snapshots"]
    }


def test_sandbox_region_rule_exclusion_tags(env):
    ids = env.load("images:\n  - {alias: keep}\n  - {alias: skip, tags: {scratch: 'yes'}}\n")[
        "aliases"
    ]
    rbin, ec2 = env.client("rbin"), env.client("ec2")
    rule(rbin, "EC2_IMAGE", 2, ExcludeResourceTags=tags(scratch="yes"))
    ec2.deregister_image(ImageId=ids["keep"])
    ec2.deregister_image(ImageId=ids["skip"])
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [ids["keep"]]


# ---------------------------------------------------------------- demo steps


def test_demo_steps(env):
    from types import SimpleNamespace

    from rich.console import Console

    from amictl.cli import demo_recyclebin

    ids = env.load(FLEET)["aliases"]
    con = Console(record=True, width=160)
    ctx = SimpleNamespace(
        con=con, conn=env.connector(["us-east-1", "eu-west-1"]), store=None, aliases=ids
    )
    rows = demo_recyclebin.ensure_rule(ctx, title="Recycle Bin")
    assert {(r["region"], r["status"], r["retention_days"]) for r in rows} == {
        ("us-east-1", "created", 7),
        ("eu-west-1", "created", 7),
    }
    assert [r["status"] for r in demo_recyclebin.ensure_rule(ctx)] == ["exists"] * 4
    delete_image(env.client("ec2"), ids["a"])
    res = demo_recyclebin.show_restore(ctx, ids["a"])
    assert res is not None and res["restored"][-1] == ids["a"]
    text = con.export_text()
    assert "images recoverable for 7 days (region-wide rule)" in text
    assert f"{ids['a']} (app-1) is registered again: state available, 2 of 2 snapshots" in text
    assert demo_recyclebin.show_restore(ctx, ids["a"]) is None  # not in the bin any more
