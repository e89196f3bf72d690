"""launch: resolve FAMILY@VERSION / FAMILY@CHANNEL / AMI, refuse deprecated and disabled, tag."""

from __future__ import annotations

import json

import pytest

from cli_fleet import invoke

FLEET = """
images:
  - {alias: app1, name: app-1, tags: {family: app, version: "1"}}
  - {alias: app2, name: app-2, tags: {family: app, version: "2"}}
  - {alias: old, name: app-0, tags: {family: app, version: "0"}, deprecated_days_ago: 3}
  - {alias: dis, name: app-9, tags: {family: app, version: "9"}, disabled: true}
"""


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env = env
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return invoke([*args, *self.env.cli_args()])

    def json(self, *args: str):
        code, out, err = self(*args, "-o", "json")
        assert code == 0, out + err
        return json.loads(out)


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def tags_of(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_launch_by_family_at_version_tags_instances_and_volumes(env, run):
    ids = env.load(FLEET)["aliases"]
    res = run.json("launch", "app@2", "--type", "t3.micro", "--count", "2", "--tag", "owner=me")
    assert res["image_id"] == ids["app2"] and "version=2" in res["reason"]
    assert len(res["instance_ids"]) == 2
    ec2 = env.client("ec2")
    resv = ec2.describe_instances(InstanceIds=res["instance_ids"])["Reservations"]
    insts = [i for r in resv for i in r["Instances"]]
    assert {i["ImageId"] for i in insts} == {ids["app2"]}
    for i in insts:
        t = tags_of(i)
        assert t["family"] == "app" and t["version"] == "2"
        assert t["amictl:image"] == ids["app2"] and t["owner"] == "me"
    vols = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": res["instance_ids"]}]
    )["Volumes"]
    assert vols
    for v in vols:
        t = tags_of(v)
        assert t["family"] == "app" and t["version"] == "2"
        # never on volumes: a backup copies its volume's tags (issue 19, finding 3)
        assert "amictl:image" not in t


def test_launch_by_id_and_by_channel(env, run):
    ids = env.load(FLEET)["aliases"]
    res = run.json("launch", ids["app1"], "--type", "t3.micro")
    assert res["image_id"] == ids["app1"] and len(res["instance_ids"]) == 1
    ssm = env.client("ssm")
    ssm.put_parameter(Name="/amictl/channels/app/stable", Value=ids["app1"], Type="String")
    res = run.json("launch", "app@stable", "--type", "t3.micro")
    assert res["image_id"] == ids["app1"] and "/amictl/channels/app/stable" in res["reason"]
    code, _, _ = run("launch", "app@nope", "--type", "t3.micro")
    assert code == 1
    code, _, _ = run("launch", "app", "--type", "t3.micro")
    assert code == 2


def test_launch_refuses_deprecated_unless_allowed(env, run):
    ids = env.load(FLEET)["aliases"]
    code, _, _ = run("launch", "app@0", "--type", "t3.micro")
    assert code == 3
    ec2 = env.client("ec2")
    launched = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["ImageId"] == ids["old"]
    ]
    assert launched == []
    res = run.json("launch", "app@0", "--type", "t3.micro", "--allow-deprecated")
    assert res["image_id"] == ids["old"] and len(res["instance_ids"]) == 1


def test_launch_refuses_disabled(env, run):
    ids = env.load(FLEET)["aliases"]
    code, _, _ = run("launch", "app@9", "--type", "t3.micro")
    assert code == 3
    code, _, _ = run("launch", ids["dis"], "--type", "t3.micro")
    assert code == 3


def test_launch_dry_run_launches_nothing(env, run):
    env.load(FLEET)
    res = run.json("launch", "app@1", "--type", "t3.micro", "--dry-run")
    assert res["dry_run"] is True and res["instance_ids"] == []
    assert "DryRunOperation" in res["dry_run_result"]
    assert env.client("ec2").describe_instances()["Reservations"] == []


def test_launch_user_data_and_bad_tags(env, run, tmp_path):
    env.load(FLEET)
    ud = tmp_path / "ud.sh"
    ud.write_text("#!/bin/sh\necho hi\n")
    res = run.json("launch", "app@1", "--type", "t3.micro", "--user-data", str(ud))
    attr = env.client("ec2").describe_instance_attribute(
        InstanceId=res["instance_ids"][0], Attribute="userData"
    )
    assert attr["UserData"]["Value"]
    assert run("launch", "app@1", "--type", "t3.micro", "--tag", "novalue")[0] == 2
    big = tmp_path / "big"
    big.write_bytes(b"x" * (17 * 1024))
    assert run("launch", "app@1", "--type", "t3.micro", "--user-data", str(big))[0] == 2
