"""Instance-store-backed images (sandbox, inventory, the bundle retirement leaves) and the
volume options and tags of `create from-snapshot` (issue 21)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amictl.creation.volumes import parse_tags, parse_volume
from amictl.errors import InputError
from amictl.inventory.instance_store import bundle_left, describe_bundle
from amictl.model import Image
from cli_fleet import CliFleet

FLEET = """
images:
  - {alias: old-is, name: legacy-1, age_days: 900, image_location: "legacy-bundles/legacy/1/image.manifest.xml",
     tags: {family: legacy, version: "1"}}
  - {alias: ebs, name: web-1, age_days: 30, tags: {family: web, version: "1"},
     snapshots: [{size_gib: 8}, {size_gib: 20}]}
"""


@pytest.fixture
def fleet(sandbox: Any, tmp_path: Path) -> CliFleet:
    return CliFleet(sandbox, FLEET, tmp_path)


def test_sandbox_and_inventory_know_instance_store_images(fleet: CliFleet) -> None:
    ec2 = fleet.env.client("ec2")
    img = ec2.describe_images(ImageIds=[fleet.ids["old-is"]])["Images"][0]
    assert img["RootDeviceType"] == "instance-store"
    assert img["ImageLocation"] == "legacy-bundles/legacy/1/image.manifest.xml"
    assert not any("Ebs" in m for m in img.get("BlockDeviceMappings", []))
    ebs = ec2.describe_images(ImageIds=[fleet.ids["ebs"]])["Images"][0]
    assert ebs["RootDeviceType"] == "ebs"
    # RegisterImage with a manifest and no EBS root: instance-store, as AWS
    new = ec2.register_image(
        Name="legacy-2", ImageLocation="legacy-bundles/legacy/2/image.manifest.xml"
    )["ImageId"]
    reg = ec2.describe_images(ImageIds=[new])["Images"][0]
    assert reg["RootDeviceType"] == "instance-store" and reg["RootDeviceName"] == "/dev/sda1"
    with pytest.raises(ClientError, match="InvalidManifest"):
        ec2.register_image(Name="bad", ImageLocation="not a manifest")
    ec2.deregister_image(ImageId=new)
    # the inventory: the image, no snapshots of its own, and its storage when the model has it
    rows = fleet.json("ls")
    row = next(r for r in rows if r["image_id"] == fleet.ids["old-is"])
    assert row["size_gib"] == 0
    snaps = fleet.json("snapshots")
    assert all(fleet.ids["old-is"] not in json.dumps(s) for s in snaps)
    if "root_device_type" in Image.__dataclass_fields__:  # once model.Image carries it
        from amictl.state.store import Store

        inv = Store(fleet.vars["AMICTL_STATE"]).latest_inventory()[1]  # type: ignore[index]
        got = inv.by_id[fleet.ids["old-is"]]
        assert got.root_device_type == "instance-store"  # type: ignore[attr-defined]
        assert got.image_location == "legacy-bundles/legacy/1/image.manifest.xml"  # type: ignore[attr-defined]


def test_retiring_an_instance_store_image_reports_the_bundle_it_leaves(fleet: CliFleet) -> None:
    conn = fleet.env.connector()
    (target,) = conn.targets()
    left = bundle_left(conn, target, fleet.ids["old-is"])
    assert left is not None
    assert left["manifest_uri"] == "s3://legacy-bundles/legacy/1/image.manifest.xml"
    assert left["prefix_uri"] == "s3://legacy-bundles/legacy/1/"
    assert "never deletes S3 objects" in left["message"]
    assert bundle_left(conn, target, fleet.ids["ebs"]) is None  # EBS: snapshots, no bundle
    fleet.env.client("ec2").deregister_image(ImageId=fleet.ids["old-is"])
    assert bundle_left(conn, target, fleet.ids["old-is"]) is None  # gone
    assert describe_bundle("ami-1", "ebs", "123/x") is None


def _snap_ids(fleet: CliFleet) -> list[str]:
    img = fleet.env.client("ec2").describe_images(ImageIds=[fleet.ids["ebs"]])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"] if "Ebs" in m]


def test_create_from_snapshot_takes_volume_options_and_tags(fleet: CliFleet) -> None:
    root, data = _snap_ids(fleet)
    out = fleet.json(
        "create",
        "from-snapshot",
        root,
        data,
        "--family",
        "web",
        "--version",
        "2",
        "--volume",
        "1:type=gp3,size=16,iops=4000,throughput=250",
        "--volume",
        "/dev/sdf:type=io2,iops=3000,kms-key=alias/team",
        "--tag",
        "team=web",
        "--tag",
        "cost-center=42",
    )
    ec2 = fleet.env.client("ec2")
    img = ec2.describe_images(ImageIds=[out["image_id"]])["Images"][0]
    by_dev = {m["DeviceName"]: m["Ebs"] for m in img["BlockDeviceMappings"]}
    assert by_dev["/dev/xvda"]["VolumeSize"] == 16 and by_dev["/dev/xvda"]["Iops"] == 4000
    assert by_dev["/dev/xvda"]["Throughput"] == 250 and by_dev["/dev/xvda"]["SnapshotId"] == root
    sdf = by_dev["/dev/sdf"]
    assert sdf["VolumeType"] == "io2" and sdf["Iops"] == 3000 and sdf["Encrypted"] is True
    assert sdf["SnapshotId"] != data  # registered over an encrypted copy
    copy = ec2.describe_snapshots(SnapshotIds=[sdf["SnapshotId"]])["Snapshots"][0]
    assert copy["Encrypted"] and copy["KmsKeyId"] == "alias/team"
    tags = {t["Key"]: t["Value"] for t in img["Tags"]}
    assert tags["team"] == "web" and tags["cost-center"] == "42" and tags["family"] == "web"
    copy_tags = {t["Key"]: t["Value"] for t in copy.get("Tags", [])}
    assert copy_tags.get("team") == "web"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--volume", "1:type=gp2,iops=3000"], "iops is not supported for gp2"),
        (["--volume", "1:type=io1"], "need iops"),
        (["--volume", "1:size=4"], "smaller than its snapshot"),
        (["--volume", "1:type=gp3,throughput=2000"], "125-1000"),
        (["--volume", "1:type=st1,size=200,throughput=200"], "gp3 volumes only"),
        (["--volume", "3:type=gp3"], "there are 2 snapshots"),
        (["--volume", "1:colour=red"], "expected one of"),
        (["--volume", "1:kms-key=k,encrypted=false"], "kms-key needs encrypted=true"),
        (["--tag", "amictl:owner=me"], "are reserved for amictl"),
        (["--tag", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_create_from_snapshot_refuses_bad_volume_options(
    fleet: CliFleet, args: list[str], fragment: str
) -> None:
    root, data = _snap_ids(fleet)
    code, out, err = fleet(
        "create", "from-snapshot", root, data, "--family", "web", "--version", "3", *args
    )
    assert code == 2, out + err
    assert fragment in err
    names = [i["Name"] for i in fleet.env.client("ec2").describe_images(Owners=["self"])["Images"]]
    assert "web-3" not in names  # nothing registered


def test_volume_and_tag_parsing() -> None:
    sel, opts = parse_volume("2:kms-key=arn:aws:kms:us-east-1:1:key/x")
    assert sel == "2" and opts.encrypted and opts.kms_key == "arn:aws:kms:us-east-1:1:key/x"
    assert parse_tags(["a=b=c"]) == {"a": "b=c"}
    with pytest.raises(InputError):
        parse_tags(["AWS:x=1"])


POLICY = """
format: 1
name: legacy-cleanup
rules:
  - name: legacy
    select: {families: ["legacy"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


def test_plan_and_apply_retire_an_instance_store_image(sandbox: Any, tmp_path: Path) -> None:
    fleet = CliFleet(
        sandbox,
        FLEET
        + """  - {alias: new-is, name: legacy-2, age_days: 100, tags: {family: legacy, version: "2"},
     image_location: "legacy-bundles/legacy/2/image.manifest.xml"}
""",
        tmp_path,
    )
    conn = fleet.env.connector()
    (target,) = conn.targets()
    before = bundle_left(conn, target, fleet.ids["old-is"])  # what apply's re-check will report
    assert before is not None and before["bucket"] == "legacy-bundles"
    (tmp_path / "p.yaml").write_text(POLICY)
    code, out, err = fleet(
        "plan", "-p", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "p.json")
    )
    assert code == 0, out + err
    plan = json.loads((tmp_path / "p.json").read_text())
    acts = {(a["type"], a.get("image_id")) for a in plan["actions"]}
    assert ("deregister", fleet.ids["old-is"]) in acts
    assert not any(a["type"] == "delete-snapshot" for a in plan["actions"])  # it has none
    code, out, err = fleet("apply", str(tmp_path / "p.json"), "--yes", "-o", "json")
    assert code == 0, out + err
    left = {
        i["ImageId"] for i in fleet.env.client("ec2").describe_images(Owners=["self"])["Images"]
    }
    assert fleet.ids["old-is"] not in left and fleet.ids["new-is"] in left
