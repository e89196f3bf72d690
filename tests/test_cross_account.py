"""Sandbox: an image shared with another account is visible to it and can be copied by it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import Env, _accounts


def test_shared_image_is_visible_and_copyable_by_the_receiving_account(sandbox):
    a, b = Env(sandbox, str(next(_accounts))), Env(sandbox, str(next(_accounts)))
    ids = a.load("images:\n  - {alias: x, tags: {family: f, version: '1'}}\n  - {alias: y}\n")[
        "aliases"
    ]
    ea, eb = a.client("ec2"), b.client("ec2")
    with pytest.raises(ClientError):
        eb.describe_images(ImageIds=[ids["x"]])
    ea.modify_image_attribute(ImageId=ids["x"], LaunchPermission={"Add": [{"UserId": b.account}]})
    assert [i["ImageId"] for i in eb.describe_images(ImageIds=[ids["x"]])["Images"]] == [ids["x"]]
    visible = {i["ImageId"] for i in eb.describe_images(ExecutableUsers=["self"])["Images"]}
    assert ids["x"] in visible and ids["y"] not in visible
    assert not eb.describe_images(Owners=["self"])["Images"]
    # copying needs read access to the snapshots too
    with pytest.raises(ClientError) as exc:
        eb.copy_image(SourceImageId=ids["x"], SourceRegion="us-east-1", Name="copy")
    assert "storage" in str(exc.value)
    src = ea.describe_images(ImageIds=[ids["x"]])["Images"][0]
    snap = src["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ea.modify_snapshot_attribute(
        SnapshotId=snap,
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=[b.account],
    )
    new = eb.copy_image(SourceImageId=ids["x"], SourceRegion="us-east-1", Name="copy")["ImageId"]
    img = eb.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in img] == [new] and img[0]["OwnerId"] == b.account
    copy_snap = img[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert copy_snap != snap
    owned = {s["SnapshotId"] for s in eb.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert copy_snap in owned
    # the source is untouched and still the owner's alone
    owned_a = {i["ImageId"] for i in ea.describe_images(Owners=["self"])["Images"]}
    assert owned_a == {ids["x"], ids["y"]}
