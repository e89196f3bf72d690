"""copy / share / unshare / sharing end to end, and the sandbox's Image Block Public Access."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.errors import AmictlError
from amictl.state.store import Store
from cli_fleet import invoke

FLEET = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: web1, name: web-1, tags: {family: web, version: "1", team: a},
     snapshots: [{size_gib: 8}, {size_gib: 20, device: /dev/sdf}]}
  - {alias: web2, name: web-2, tags: {family: web, version: "2"}, shared_with: ["210987654321"]}
  - {alias: pub, name: pub-1, tags: {family: pub, version: "1"}, public: true}
  - {alias: eu1, name: web-1, region: eu-west-1, tags: {family: web, version: "1"}}
"""
OTHER = "210987654321"
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env, self.tmp = env, tmp_path
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


def launch_perms(ec2, image_id):
    return ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
        "LaunchPermissions"
    ]


# ---------------------------------------------------------------- sandbox behaviours


def test_sandbox_image_block_public_access_state_per_region(env):
    ec2 = env.client("ec2")
    eu = env.client("ec2", "eu-west-1")
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    resp = ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    assert resp["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert (
        ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"]
        == "block-new-sharing"
    )
    assert eu.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    assert ec2.disable_image_block_public_access()["ImageBlockPublicAccessState"] == "unblocked"
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"


def test_sandbox_block_public_access_refuses_group_all_only(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.modify_image_attribute(
            ImageId=ids["web1"], LaunchPermission={"Add": [{"Group": "all"}]}
        )
    assert e.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert launch_perms(ec2, ids["web1"]) == []
    # sharing with an account still works; an already public image stays public
    ec2.modify_image_attribute(ImageId=ids["web1"], LaunchPermission={"Add": [{"UserId": OTHER}]})
    assert launch_perms(ec2, ids["web1"]) == [{"UserId": OTHER}]
    assert ec2.describe_images(ImageIds=[ids["pub"]])["Images"][0]["Public"] is True
    ec2.disable_image_block_public_access()
    ec2.modify_image_attribute(ImageId=ids["web1"], LaunchPermission={"Add": [{"Group": "all"}]})
    assert {"Group": "all"} in launch_perms(ec2, ids["web1"])


# ---------------------------------------------------------------- copy


def test_copy_to_second_region(env, run):
    ids = env.load(FLEET)["aliases"]
    rows = run.json("copy", ids["web2"], "--to-region", "eu-west-1", "--wait")
    assert len(rows) == 1
    row = rows[0]
    assert row["region"] == "eu-west-1" and row["snapshots_tagged"] is True
    eu = env.client("ec2", "eu-west-1")
    img = eu.describe_images(ImageIds=[row["image_id"]])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in img["Tags"]}
    assert img["Name"] == "web-2"
    assert img["SourceImageId"] == ids["web2"] and img["SourceImageRegion"] == "us-east-1"
    assert tags["amictl:source-image"] == ids["web2"]
    assert tags["amictl:source-region"] == "us-east-1"
    assert tags["family"] == "web" and tags["version"] == "2"  # CopyImageTags
    snap_ids = [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"]]
    assert snap_ids and set(snap_ids) == set(row["snapshots"])
    for s in eu.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        st = {t["Key"]: t["Value"] for t in s["Tags"]}
        assert st["family"] == "web" and st["version"] == "2"
        assert st["amictl:source-image"] == ids["web2"]


def test_copy_encrypted_with_kms_key(env, run):
    ids = env.load(FLEET)["aliases"]
    key = "arn:aws:kms:eu-west-1:111111111111:key/abcd"
    row = run.json("copy", ids["web2"], "--to-region", "eu-west-1", "--kms-key", key)[0]
    eu = env.client("ec2", "eu-west-1")
    img = eu.describe_images(ImageIds=[row["image_id"]])["Images"][0]
    assert all(m["Ebs"]["Encrypted"] for m in img["BlockDeviceMappings"])


def test_copy_refuses_existing_family_version(env, run):
    ids = env.load(FLEET)["aliases"]
    eu = env.client("ec2", "eu-west-1")
    before = len(eu.describe_images(Owners=["self"])["Images"])
    code, _ = run("copy", ids["web1"], "--to-region", "eu-west-1")
    assert code == 2
    assert len(eu.describe_images(Owners=["self"])["Images"]) == before
    code, _ = run("copy", ids["web2"], "--to-region", "mars-east-1")
    assert code == 2


# ---------------------------------------------------------------- share / unshare


def test_share_and_unshare_an_account(env, run):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    res = run.json("share", ids["web1"], "--account", OTHER, "--allow-copy")
    assert res["accounts"] == [OTHER] and len(res["snapshots"]) == 2
    assert launch_perms(ec2, ids["web1"]) == [{"UserId": OTHER}]
    for sid in res["snapshots"]:
        perms = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
        assert {"UserId": OTHER} in perms["CreateVolumePermissions"]
    run.json("share", ids["web1"], "--org", ORG)
    assert {"OrganizationArn": ORG} in launch_perms(ec2, ids["web1"])
    run.json("unshare", ids["web1"], "--account", OTHER, "--org", ORG, "--poll", "1")
    assert launch_perms(ec2, ids["web1"]) == []
    for sid in res["snapshots"]:
        perms = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
        assert perms["CreateVolumePermissions"] == []


def test_share_bad_input(env, run):
    ids = env.load(FLEET)["aliases"]
    assert run("share", ids["web1"], "--account", "12345")[0] == 2
    assert run("share", ids["web1"], "--org", "o-123")[0] == 2
    assert run("share", ids["web1"])[0] == 2
    assert run("share", "not-an-ami", "--account", OTHER)[0] == 2


def test_public_share_needs_yes(env, run):
    ids = env.load(FLEET)["aliases"]
    code, _ = run("share", ids["web1"], "--public")
    assert code == 2
    assert launch_perms(env.client("ec2"), ids["web1"]) == []


def test_public_share_refused_under_block_public_access(env, run):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    res = CliRunner().invoke(cli, ["share", ids["web1"], "--public", "--yes", *env.cli_args()])
    assert isinstance(res.exception, AmictlError) and res.exception.exit_code == 3
    assert "disable-image-block-public-access" in (res.exception.hint or "")
    assert launch_perms(ec2, ids["web1"]) == []


def test_public_share_is_journaled(env, run, tmp_path):
    ids = env.load(FLEET)["aliases"]
    res = run.json("share", ids["web1"], "--public", "--yes")
    assert res["public"] is True and res["journal"].startswith("share-")
    assert {"Group": "all"} in launch_perms(env.client("ec2"), ids["web1"])
    mine = Store(f"sqlite:///{tmp_path}/state.db").journal_rows(plan_checksum=res["journal"])
    assert [r["status"] for r in mine] == ["intended", "done"]
    assert mine[0]["resource"] == ids["web1"] and mine[0]["type"] == "make-public"
    run.json("unshare", ids["web1"], "--public", "--poll", "1")
    assert launch_perms(env.client("ec2"), ids["web1"]) == []


# ---------------------------------------------------------------- sharing


def test_sharing_lists_who_can_launch_what(env, run):
    ids = env.load(FLEET)["aliases"]
    run.json("share", ids["web1"], "--org", ORG)
    rows = {r["image_id"]: r for r in run.json("sharing")}
    assert set(rows) == {ids["web1"], ids["web2"], ids["pub"]}
    assert rows[ids["web2"]]["accounts"] == [OTHER]
    assert rows[ids["web1"]]["organizations"] == [ORG]
    assert rows[ids["pub"]]["public"] is True and rows[ids["pub"]]["who"] == ["public"]
    one = run.json("sharing", ids["web2"])
    assert [r["image_id"] for r in one] == [ids["web2"]]
    assert run("sharing", "ami-0000000000000000a")[0] == 1
