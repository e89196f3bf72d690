"""Fewer calls, same truth (issue 14): launch permissions only where a plan needs them,
cached in the state store, never trusted by apply; show/refs scan one region."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from amictl.inventory import scan
from amictl.policy import parse_policy_text, plan
from cli_fleet import invoke

POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""
MARK_ONLY = POLICY.replace("deregister: 0d", "deregister: 30d")

FLEET = """regions: [us-east-1, eu-west-1]
images:
  - {alias: a1, age_days: 300, tags: {family: a, version: '1'}}
  - {alias: a2, age_days: 200, tags: {family: a, version: '2'}, shared_with: ['210987654321']}
  - {alias: a3, age_days: 100, tags: {family: a, version: '3'}}
  - {alias: a4, age_days: 90, tags: {family: a, version: '4'}}
  - {alias: b1, age_days: 300, tags: {family: b, version: '1'}}
  - {alias: b2, age_days: 100, tags: {family: b, version: '2'}}
  - {alias: e1, age_days: 300, region: eu-west-1, tags: {family: e, version: '1'}}
  - {alias: e2, age_days: 100, region: eu-west-1, tags: {family: e, version: '2'}}
instances:
  - {alias: i1, image: a3}
"""


class Cli:
    def __init__(self, env, tmp_path, monkeypatch) -> None:
        self.env, self.tmp = env, tmp_path
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)
        (tmp_path / "policy.yaml").write_text(POLICY)
        (tmp_path / "mark.yaml").write_text(MARK_ONLY)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return invoke([*args, *self.env.cli_args()])

    def plan(self, *extra: str, policy: str = "policy.yaml") -> tuple[dict, dict[str, int]]:
        """The saved plan and the API calls per operation `-v` printed."""
        out = self.tmp / "plan.json"
        code, stdout, stderr = self(
            "plan", "-p", str(self.tmp / policy), "--out", str(out), "-o", "json", "-v", *extra
        )
        assert code == 0, stderr
        short = json.loads(stdout)  # --out: the summary only on stdout
        assert set(short) == {"out", "checksum", "summary"}
        calls = {
            m.group(2): int(m.group(1))
            for m in re.finditer(r"^\s+(\d+)\s+([\w-]+\.\w+)\s*$", stderr, re.M)
        }
        return json.loads(out.read_text()), calls


@pytest.fixture
def run(env, tmp_path, monkeypatch) -> Cli:
    return Cli(env, tmp_path, monkeypatch)


def test_plan_reads_sharing_only_where_needed_and_matches_a_full_read(run, env) -> None:
    ids = env.load(FLEET)["aliases"]
    env.sandbox.reset_call_counts()
    body, calls = run.plan("--region", "us-east-1,eu-west-1")
    # -v prints what the endpoint served, operation by operation (the bench counts there)
    assert env.sandbox.aws_model_state()["calls"] == calls
    # would be retired: a1, a2 (before its sharing is read), b1, e1; a3 in use, the newest kept
    assert calls["ec2.DescribeImageAttribute"] == 4
    # EC2's, Auto Scaling's and SSM's own reads, then one listing per region of each other
    # service that launches from AMI ids (issue 26: Spot, fleets, EMR, Batch, CloudFormation,
    # Beanstalk, Image Builder), none of which has anything to page through here
    own = ("ec2.DescribeSpot", "ec2.DescribeFleets")
    core = {
        k: v
        for k, v in calls.items()
        if k.split(".")[0] in ("ec2", "autoscaling", "ssm", "sts") and not k.startswith(own)
    }
    assert sum(core.values()) < 40
    assert all(v <= 2 for k, v in calls.items() if k not in core), calls
    # the same actions as a plan on an inventory with every launch permission read
    inv = scan(env.connector(regions=["us-east-1", "eu-west-1"]))
    full = plan(inv, parse_policy_text(POLICY), dt.datetime.now(dt.UTC))
    got = sorted((a["type"], a.get("image_id"), a.get("expect")) for a in body["actions"])
    want = sorted((a.type, a.image_id, dict(a.expect) or None) for a in full.actions)
    assert got == want
    deregistered = {a["image_id"] for a in body["actions"] if a["type"] == "deregister"}
    assert deregistered == {ids["a1"], ids["b1"], ids["e1"]}
    # a mark-only plan needs no launch permission at all
    _body, calls = run.plan("--refresh", policy="mark.yaml")
    assert "ec2.DescribeImageAttribute" not in calls


def test_cached_sharing_is_reused_marked_and_apply_rechecks_it_live(run, env) -> None:
    ids = env.load(FLEET)["aliases"]
    _first, calls = run.plan()
    assert calls["ec2.DescribeImageAttribute"] == 3  # a1, a2, b1
    body, calls = run.plan()
    assert "ec2.DescribeImageAttribute" not in calls  # all from the state store
    why = {d["image_id"]: " ".join(d["reasons"]) for d in body["decisions"]}
    assert "launch permissions cached: read" in why[ids["b1"]]
    _body, calls = run.plan("--refresh")
    assert calls["ec2.DescribeImageAttribute"] == 3
    # b1's sharing changes after the cached read: the plan still says private ...
    env.client("ec2").modify_image_attribute(
        ImageId=ids["b1"],
        LaunchPermission={"Add": [{"UserId": "210987654321"}]},
    )
    body, calls = run.plan()
    assert "ec2.DescribeImageAttribute" not in calls
    b1 = [
        a for a in body["actions"] if a.get("image_id") == ids["b1"] and a["type"] == "deregister"
    ]
    assert b1 and b1[0]["expect"]["shared"] is False
    # ... and apply, which re-reads every image live, skips it
    code, stdout, _ = run("apply", str(run.tmp / "plan.json"), "--yes", "-o", "json")
    assert code in (0, 4)
    text = json.dumps(json.loads(stdout))
    # the live decision keeps it: shared now (the plan had it private)
    assert "kept: shared: 210987654321" in text, text[:2000]
    images = env.client("ec2").describe_images(ImageIds=[ids["b1"]])["Images"]
    assert images and images[0]["State"] == "available"  # still there
    gone = env.client("ec2").describe_images(Owners=["self"])["Images"]
    assert ids["a1"] not in {i["ImageId"] for i in gone}  # the private one was retired


def test_show_and_refs_scan_only_the_images_region(run, env) -> None:
    ids = env.load(FLEET)["aliases"]
    code, stdout, stderr = run(
        "show", ids["e1"], "--region", "us-east-1,eu-west-1", "-o", "json", "-v"
    )
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["region"] == "eu-west-1"
    assert data["family_versions"] and {v["image_id"] for v in data["family_versions"]} == {
        ids["e1"],
        ids["e2"],
    }
    assert re.search(r"^\s+1\s+ec2\.DescribeSnapshots\s*$", stderr, re.M), stderr
    code, stdout, stderr = run("refs", ids["a3"], "--region", "eu-west-1,us-east-1", "-o", "json")
    assert code == 0, stderr
    assert [r["kind"] for r in json.loads(stdout)] == ["instance"]
    code, _, _ = run("show", "ami-0123456789abcdef0", "--region", "us-east-1,eu-west-1")
    assert code == 2
