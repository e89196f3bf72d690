"""amictl create from-instance / from-snapshot, end to end against the sandbox."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from amictl.aws.session import Target
from amictl.creation import next_version
from amictl.creation.create import wait_image
from amictl.errors import AmictlError
from cli_fleet import invoke

FLEET = """
images:
  - {alias: base, name: base-1, tags: {family: base, version: "1"},
     snapshots: [{size_gib: 8}]}
  - {alias: web1, name: web-1.2.0, tags: {family: web, version: "1.2.0"}}
  - {alias: web2, name: web-1.10.3, tags: {family: web, version: "1.10.3"}}
"""


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env = env
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return invoke([*args, *self.env.cli_args(), "--region", "us-east-1"])


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def launch(env, image_id: str, extra_volume: bool = True) -> str:
    ec2 = env.client("ec2")
    kw = {}
    if extra_volume:
        kw["BlockDeviceMappings"] = [
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3"}}
        ]
    r = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro", **kw)
    return str(r["Instances"][0]["InstanceId"])


def tags_of(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def test_next_version_bumps_the_highest_semantic_version():
    assert next_version(["1.2.0", "1.10.3", "1.9"], "patch") == "1.10.4"
    assert next_version(["1.2.0", "1.10.3"], "minor") == "1.11.0"
    assert next_version(["1.2.0", "1.10.3", "nightly"], "major") == "2.0.0"
    assert next_version(["3"], "patch") == "3.0.1"
    assert next_version([], "major") == "1.0.0"
    assert next_version([], "minor") == "0.1.0"


def test_sandbox_create_image_snapshots_every_attached_ebs_volume(env):
    """The instance gets the image's root volume and the extra one; CreateImage keeps both."""
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    iid = launch(env, ids["base"])
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert {m["DeviceName"] for m in inst["BlockDeviceMappings"]} == {"/dev/xvda", "/dev/sdf"}
    new = ec2.create_image(InstanceId=iid, Name="multi-1")
    img = ec2.describe_images(ImageIds=[new["ImageId"]])["Images"][0]
    got = {
        m["DeviceName"]: (m["Ebs"]["VolumeSize"], m["Ebs"]["VolumeType"])
        for m in img["BlockDeviceMappings"]
    }
    assert got == {"/dev/xvda": (8, "gp3"), "/dev/sdf": (50, "gp3")}
    assert img["RootDeviceName"] == "/dev/xvda"
    snap_ids = [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"]]
    snaps = ec2.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]
    assert sorted(s["VolumeSize"] for s in snaps) == [8, 50]
    # without extra mappings: the image's own volumes, root included
    plain = launch(env, ids["base"], extra_volume=False)
    inst = ec2.describe_instances(InstanceIds=[plain])["Reservations"][0]["Instances"][0]
    assert [m["DeviceName"] for m in inst["BlockDeviceMappings"]] == ["/dev/xvda"]
    # a requested mapping of the root device overrides its size
    r = ec2.run_instances(
        ImageId=ids["base"],
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30}}],
    )
    vol = r["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Size"] == 30


def test_from_instance_with_explicit_version_tags_image_and_every_snapshot(env, run):
    ids = env.load(FLEET)["aliases"]
    iid = launch(env, ids["base"])
    code, out, _ = run("create", "from-instance", iid, "--family", "app", "--version", "2.0.0",
                       "-o", "json")  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert data["name"] == "app-2.0.0" and data["version"] == "2.0.0"
    ec2 = env.client("ec2")
    img = ec2.describe_images(ImageIds=[data["image_id"]])["Images"][0]
    assert img["Name"] == "app-2.0.0"
    want = {
        "family": "app",
        "version": "2.0.0",
        "amictl:source-instance": iid,
        "amictl:source-image": ids["base"],  # lineage parent
    }
    tags = tags_of(img)
    assert want.items() <= tags.items()
    assert tags["amictl:created-by"].startswith(f"arn:aws:sts::{env.account}:assumed-role/")
    snap_ids = [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"]]
    assert len(snap_ids) == 2 and sorted(data["snapshot_ids"]) == sorted(snap_ids)
    for s in ec2.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert tags_of(s) == tags


def test_from_instance_bump_uses_the_family_versions_in_the_account(env, run):
    ids = env.load(FLEET)["aliases"]
    iid = launch(env, ids["base"], extra_volume=False)
    code, out, _ = run("create", "from-instance", iid, "--family", "web", "--bump", "patch",
                       "-o", "json")  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["name"] == "web-1.10.4"
    code, out, _ = run("create", "from-instance", iid, "--family", "web", "--bump", "minor",
                       "-o", "json")  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["version"] == "1.11.0"


def test_duplicate_family_version_is_refused_exit_2(env, run):
    ids = env.load(FLEET)["aliases"]
    iid = launch(env, ids["base"], extra_volume=False)
    before = len(env.client("ec2").describe_images(Owners=["self"])["Images"])
    code, _, err = run("create", "from-instance", iid, "--family", "web", "--version", "1.2.0")
    assert code == 2
    assert "already exists" in err
    code, _, _ = run("create", "from-instance", iid, "--family", "web")  # neither flag
    assert code == 2
    code, _, _ = run("create", "from-instance", iid, "--family", "Web!", "--version", "1")
    assert code == 2
    code, _, _ = run("create", "from-instance", "i-0123456789abcdef0", "--family", "x",
                     "--version", "1")  # fmt: skip
    assert code == 2
    assert len(env.client("ec2").describe_images(Owners=["self"])["Images"]) == before


def test_from_snapshot_two_snapshots_with_options(env, run):
    env.load("snapshots:\n  - {alias: root, size_gib: 10}\n  - {alias: data, size_gib: 100}\n")
    ec2 = env.client("ec2")
    snaps = {s["VolumeSize"]: s["SnapshotId"] for s in ec2.describe_snapshots(
        OwnerIds=["self"])["Snapshots"]}  # fmt: skip
    root, data = snaps[10], snaps[100]
    code, out, err = run(
        "create", "from-snapshot", root, data, "--family", "db", "--version", "3.1",
        "--arch", "arm64", "--root-device", "/dev/xvda", "--boot-mode", "uefi",
        "--no-ena", "--imds", "v2.0", "--tpm", "v2.0", "--wait", "-o", "json",
    )  # fmt: skip
    assert code == 0, out + err
    created = json.loads(out)
    assert created["state"] == "available"
    img = ec2.describe_images(ImageIds=[created["image_id"]])["Images"][0]
    assert img["Name"] == "db-3.1"
    assert img["Architecture"] == "arm64" and img["BootMode"] == "uefi"
    assert img["EnaSupport"] is False
    assert img["ImdsSupport"] == "v2.0" and img["TpmSupport"] == "v2.0"
    assert img["RootDeviceName"] == "/dev/xvda"
    bdm = {m["DeviceName"]: m["Ebs"] for m in img["BlockDeviceMappings"]}
    assert bdm["/dev/xvda"]["SnapshotId"] == root and bdm["/dev/xvda"]["VolumeSize"] == 10
    assert bdm["/dev/sdf"]["SnapshotId"] == data and bdm["/dev/sdf"]["VolumeSize"] == 100
    tags = tags_of(img)
    assert tags["family"] == "db" and tags["version"] == "3.1"
    assert tags["amictl:source-snapshots"] == f"{root},{data}"
    for s in ec2.describe_snapshots(SnapshotIds=[root, data])["Snapshots"]:
        assert tags_of(s) == tags
    # the same version again is refused; tpm without uefi is bad input
    code, _, _ = run("create", "from-snapshot", root, "--family", "db", "--version", "3.1")
    assert code == 2
    code, _, _ = run("create", "from-snapshot", root, "--family", "db", "--version", "3.2",
                     "--tpm", "v2.0")  # fmt: skip
    assert code == 2
    code, _, _ = run("create", "from-snapshot", "snap-0123456789abcdef0", "--family", "db",
                     "--version", "3.3")  # fmt: skip
    assert code == 2


def test_from_instance_wait_prints_progress_on_stderr_only(env, run):
    ids = env.load(FLEET)["aliases"]
    iid = launch(env, ids["base"], extra_volume=False)
    code, out, err = run("create", "from-instance", iid, "--family", "app", "--version", "1",
                         "--no-reboot", "--wait", "-o", "json")  # fmt: skip
    assert code == 0, out + err
    assert json.loads(out)["state"] == "available"
    assert "waiting for ami-" in err and "available" in err


def test_a_failed_image_is_a_clear_error():
    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stub = Stubber(ec2)
    stub.add_response(
        "describe_images",
        {
            "Images": [
                {
                    "ImageId": "ami-0123456789abcdef0",
                    "State": "failed",
                    "StateReason": {"Code": "Client.Error", "Message": "snapshot creation failed"},
                }
            ]
        },
        {"ImageIds": ["ami-0123456789abcdef0"]},
    )
    with stub, pytest.raises(AmictlError) as e:
        wait_image(ec2, Target("123456789012", "us-east-1"), "ami-0123456789abcdef0", delay=1)
    assert "ami-0123456789abcdef0 failed" in e.value.message
    assert "snapshot creation failed" in e.value.message
    assert e.value.exit_code == 1


def test_iam_policy_for_create(run):
    code, out, _ = run("iam-policy", "create")
    assert code == 0, out
    actions = {a for st in json.loads(out)["Statement"] for a in st["Action"]}
    assert {"ec2:CreateImage", "ec2:RegisterImage", "ec2:CreateTags"} <= actions
    assert "ec2:DeregisterImage" not in actions
