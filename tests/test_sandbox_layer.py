"""One test per row of shared/spec/sandbox.md, through real boto3 clients over HTTP."""

from __future__ import annotations

import datetime as dt

import botocore.exceptions
import pytest

from amictl.sandbox import patches

FLEET = """
images:
  - {alias: a, name: a-1, age_days: 400, tags: {family: a, version: "1"},
     snapshots: [{size_gib: 8}, {size_gib: 100, device: /dev/sdf}]}
  - {alias: b, name: b-1, reuse_snapshot_of: a}
instances:
  - {alias: i1, image: a, state: running}
"""


def code(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_describe_images_paginates_with_max_results(env):
    env.load("images:\n" + "".join(f"  - {{alias: p{i}}}\n" for i in range(23)))
    ec2 = env.client("ec2")
    calls = 0
    seen = []
    for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"], PaginationConfig={"PageSize": 5}
    ):
        calls += 1
        seen += [i["ImageId"] for i in page["Images"]]
        assert len(page["Images"]) <= 5
    assert len(seen) == len(set(seen)) == 23
    assert calls == 5
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_images(Owners=["self"], MaxResults=2000)
    assert code(e) == "InvalidParameterValue"


def test_describe_snapshots_paginates_and_honours_owner_ids(env):
    env.load("snapshots:\n" + "".join(f"  - {{alias: s{i}}}\n" for i in range(12)))
    ec2 = env.client("ec2")
    pages = list(
        ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], PaginationConfig={"PageSize": 5}
        )
    )
    assert [len(p["Snapshots"]) for p in pages] == [5, 5, 2]
    assert ec2.describe_snapshots(OwnerIds=["999999999999"])["Snapshots"] == []


def test_image_snapshot_link_is_real(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    a = ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]
    sizes = {m["DeviceName"]: m["Ebs"]["VolumeSize"] for m in a["BlockDeviceMappings"]}
    assert sizes == {"/dev/xvda": 8, "/dev/sdf": 100}
    snap_ids = [m["Ebs"]["SnapshotId"] for m in a["BlockDeviceMappings"]]
    snaps = {s["SnapshotId"]: s for s in ec2.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]}
    assert {s["VolumeSize"] for s in snaps.values()} == {8, 100}
    assert all(f"for {ids['a']}" in s["Description"] for s in snaps.values())
    # RegisterImage uses the given mappings
    new = ec2.register_image(
        Name="reg-1",
        RootDeviceName="/dev/xvda",
        Architecture="arm64",
        BootMode="uefi",
        EnaSupport=True,
        ImdsSupport="v2.0",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap_ids[0], "VolumeSize": 20}}
        ],
    )
    img = ec2.describe_images(ImageIds=[new["ImageId"]])["Images"][0]
    assert img["BlockDeviceMappings"][0]["Ebs"] == {
        **img["BlockDeviceMappings"][0]["Ebs"],
        "SnapshotId": snap_ids[0],
        "VolumeSize": 20,
    }
    assert (img["Architecture"], img["BootMode"], img["ImdsSupport"]) == ("arm64", "uefi", "v2.0")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.register_image(
            Name="reg-2",
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0000dead"}}
            ],
        )
    assert code(e) == "InvalidSnapshot.NotFound"


def test_create_image_makes_one_snapshot_per_volume_and_tags_them(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    new = ec2.create_image(
        InstanceId=ids["i1"],
        Name="from-instance",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "family", "Value": "x"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "family", "Value": "x"}]},
        ],
    )
    img = ec2.describe_images(ImageIds=[new["ImageId"]])["Images"][0]
    assert img["Tags"] == [{"Key": "family", "Value": "x"}]
    snap_ids = [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"]]
    assert snap_ids
    for s in ec2.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]:
        assert {"Key": "family", "Value": "x"} in s["Tags"]
        assert f"CreateImage({ids['i1']}) for {new['ImageId']}" in s["Description"]


def test_delete_snapshot_in_use_is_refused(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    a = ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]
    root = a["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_snapshot(SnapshotId=root)
    assert code(e) == "InvalidSnapshot.InUse"
    # b reuses a's root snapshot: still in use after a is gone
    ec2.deregister_image(ImageId=ids["a"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_snapshot(SnapshotId=root)
    assert code(e) == "InvalidSnapshot.InUse"
    ec2.deregister_image(ImageId=ids["b"])
    ec2.delete_snapshot(SnapshotId=root)


def test_copy_image_sets_source_fields_tags_encryption_and_new_snapshots(env):
    ids = env.load(FLEET.replace("regions", "") + "")["aliases"]
    ec2w = env.client("ec2", "us-east-1")
    new = ec2w.copy_image(
        SourceImageId=ids["a"],
        SourceRegion="us-east-1",
        Name="a-copy",
        CopyImageTags=True,
        Encrypted=True,
        KmsKeyId="arn:aws:kms:us-east-1:111111111111:key/k1",
    )
    img = ec2w.describe_images(ImageIds=[new["ImageId"]])["Images"][0]
    assert img["SourceImageId"] == ids["a"] and img["SourceImageRegion"] == "us-east-1"
    assert {"Key": "family", "Value": "a"} in img["Tags"]
    src = ec2w.describe_images(ImageIds=[ids["a"]])["Images"][0]
    new_snaps = {m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"]}
    old_snaps = {m["Ebs"]["SnapshotId"] for m in src["BlockDeviceMappings"]}
    assert new_snaps.isdisjoint(old_snaps) and len(new_snaps) == 2
    for s in ec2w.describe_snapshots(SnapshotIds=list(new_snaps))["Snapshots"]:
        assert s["Encrypted"] and s["KmsKeyId"].endswith("key/k1")


def test_image_deprecation(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, seconds=17)
    ec2.enable_image_deprecation(ImageId=ids["a"], DeprecateAt=at)
    got = ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]["DeprecationTime"]
    assert got.endswith(":00.000Z") and got.startswith(at.strftime("%Y-%m-%dT"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.enable_image_deprecation(
            ImageId=ids["a"], DeprecateAt=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        )
    assert code(e) == "InvalidParameterValue"
    ec2.disable_image_deprecation(ImageId=ids["a"])
    assert "DeprecationTime" not in ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]


def test_disable_image_semantics(env):
    ids = env.load(FLEET.replace("name: a-1,", "name: a-1, shared_with: ['210987654321'],"))[
        "aliases"
    ]
    ec2 = env.client("ec2")
    ec2.disable_image(ImageId=ids["a"])
    assert (
        ec2.describe_images(Owners=["self"], Filters=[{"Name": "image-id", "Values": [ids["a"]]}])[
            "Images"
        ]
        == []
    )
    got = ec2.describe_images(ImageIds=[ids["a"]], IncludeDisabled=True)["Images"][0]
    assert got["State"] == "disabled"
    assert (
        ec2.describe_image_attribute(ImageId=ids["a"], Attribute="launchPermission")[
            "LaunchPermissions"
        ]
        == []
    )
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=ids["a"], MinCount=1, MaxCount=1)
    assert code(e) == "InvalidAMIID.Unavailable"
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.modify_image_attribute(
            ImageId=ids["a"], LaunchPermission={"Add": [{"UserId": "210987654321"}]}
        )
    ec2.enable_image(ImageId=ids["a"])
    assert ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]["State"] == "available"


def test_deregistration_protection(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    ec2.enable_image_deregistration_protection(ImageId=ids["a"])
    assert (
        ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]["DeregistrationProtection"]
        == "enabled"
    )
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.deregister_image(ImageId=ids["a"])
    ec2.disable_image_deregistration_protection(ImageId=ids["a"])
    ec2.enable_image_deregistration_protection(ImageId=ids["a"], WithCooldown=True)
    ec2.disable_image_deregistration_protection(ImageId=ids["a"])
    state = ec2.describe_image_attribute(ImageId=ids["a"], Attribute="deregistrationProtection")
    assert state["DeregistrationProtection"]["Value"].startswith("disabled-until ")
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.deregister_image(ImageId=ids["a"])  # cooldown: still protected for 24 h


def test_last_launched_time(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    assert (
        ec2.describe_image_attribute(ImageId=ids["a"], Attribute="lastLaunchedTime")[
            "LastLaunchedTime"
        ]
        == {}
    )
    ec2.run_instances(ImageId=ids["a"], MinCount=1, MaxCount=1)
    v = ec2.describe_image_attribute(ImageId=ids["a"], Attribute="lastLaunchedTime")[
        "LastLaunchedTime"
    ]["Value"]
    assert patches.parse_time(v) > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]["LastLaunchedTime"] == v


def test_deregister_delete_associated_snapshots(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    a = ec2.describe_images(ImageIds=[ids["a"]])["Images"][0]
    root, data = (m["Ebs"]["SnapshotId"] for m in a["BlockDeviceMappings"])
    resp = ec2.deregister_image(ImageId=ids["a"], DeleteAssociatedSnapshots=True)
    results = {r["SnapshotId"]: r["ReturnCode"] for r in resp["DeleteSnapshotResults"]}
    assert results == {root: "skipped", data: "success"}  # b still uses the root snapshot
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert root in left and data not in left


@pytest.mark.parametrize(
    "attribute,key",
    [
        ("imdsSupport", "ImdsSupport"),
        ("tpmSupport", "TpmSupport"),
        ("deregistrationProtection", "DeregistrationProtection"),
        ("lastLaunchedTime", "LastLaunchedTime"),
        ("bootMode", "BootMode"),
    ],
)
def test_describe_image_attribute_values(env, attribute, key):
    ids = env.load(FLEET)["aliases"]
    resp = env.client("ec2").describe_image_attribute(ImageId=ids["a"], Attribute=attribute)
    assert key in resp and resp["ImageId"] == ids["a"]


def test_seeded_creation_date(env):
    ids = env.load(FLEET)["aliases"]
    created = patches.parse_time(
        env.client("ec2").describe_images(ImageIds=[ids["a"]])["Images"][0]["CreationDate"]
    )
    age = dt.datetime.now(dt.UTC) - created
    assert dt.timedelta(days=399) < age < dt.timedelta(days=401)


def test_server_errors_are_aws_error_documents(sandbox, env):
    ec2 = env.client("ec2")
    sandbox.set_faults(
        [{"service": "ec2", "action": "DescribeRegions", "code": "InternalError", "status": 500}]
    )
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.describe_regions()
        assert code(e) == "InternalError"
    finally:
        sandbox.clear_faults()
    # a moto crash also becomes an error document, not an HTML page
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.reset_image_attribute(ImageId="ami-12345678", Attribute="launchPermission")
    assert code(e) in ("NotImplemented", "InternalError", "InvalidAMIID.NotFound")


def test_run_command_outcome_can_be_set(sandbox, env):
    ids = env.load(FLEET)["aliases"]
    ssm = env.client("ssm")
    sandbox.set_run_command(
        key=ids["i1"],
        status="Failed",
        output="smoke test failed: nginx not running",
        response_code=3,
    )
    try:
        cmd = ssm.send_command(
            InstanceIds=[ids["i1"]],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["systemctl is-active nginx"]},
        )["Command"]
        inv = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=ids["i1"])
        assert inv["Status"] == "Failed" and inv["ResponseCode"] == 3
        assert "nginx not running" in inv["StandardOutputContent"]
    finally:
        sandbox.set_run_command(clear=True)


def test_launch_templates_and_versions_paginate(env):
    lts = "".join(
        f"  - {{alias: lt{i}, versions: [{{image: a}}, {{image: a}}, {{image: a}}]}}\n"
        for i in range(23)
    )
    env.load("images:\n  - {alias: a}\nlaunch_templates:\n" + lts)
    ec2 = env.client("ec2")
    assert len(ec2.describe_launch_templates()["LaunchTemplates"]) == 23  # moto alone stops at 15
    pages = list(
        ec2.get_paginator("describe_launch_templates").paginate(PaginationConfig={"PageSize": 10})
    )
    assert [len(p["LaunchTemplates"]) for p in pages] == [10, 10, 3]
    tid = pages[0]["LaunchTemplates"][0]["LaunchTemplateId"]
    vpages = list(
        ec2.get_paginator("describe_launch_template_versions").paginate(
            LaunchTemplateId=tid, PaginationConfig={"PageSize": 2}
        )
    )
    assert [v["VersionNumber"] for p in vpages for v in p["LaunchTemplateVersions"]] == [1, 2, 3]


def test_recycle_bin_rules_keep_and_restore(env):
    ids = env.load(FLEET)["aliases"]
    rbin = env.client("rbin")
    ec2 = env.client("ec2")
    assert rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"] == []
    rule = rbin.create_rule(
        ResourceType="EC2_IMAGE",
        RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"},
    )
    assert [r["Identifier"] for r in rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"]] == [
        rule["Identifier"]
    ]
    ec2.deregister_image(ImageId=ids["b"])
    binned = ec2.list_images_in_recycle_bin()["Images"]
    assert [i["ImageId"] for i in binned] == [ids["b"]]
    ec2.restore_image_from_recycle_bin(ImageId=ids["b"])
    assert ec2.describe_images(ImageIds=[ids["b"]])["Images"][0]["ImageId"] == ids["b"]
    rbin.delete_rule(Identifier=rule["Identifier"])
    assert rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"] == []
