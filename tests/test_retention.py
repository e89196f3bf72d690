"""Retention AWS enforces (issue 29): snapshot locks and stored-image tasks in the sandbox,
read by the inventory and decided as reasons to keep by the one decision (plan and apply)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

from cli_fleet import CliFleet

FLEET = """
images:
  - {alias: a1, name: app-1.0.0, age_days: 100, tags: {family: app, version: 1.0.0},
     snapshots: [{size_gib: 8}]}
  - {alias: a2, name: app-2.0.0, age_days: 10, tags: {family: app, version: 2.0.0},
     snapshots: [{size_gib: 8}]}
"""
POLICY = """format: 1
name: ret
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


@pytest.fixture
def fleet(sandbox, tmp_path):
    f = CliFleet(sandbox, FLEET, tmp_path)
    (tmp_path / "p.yaml").write_text(POLICY)
    f.policy = str(tmp_path / "p.yaml")  # type: ignore[attr-defined]
    return f


def snap_of(ec2, image_id: str) -> str:
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return str(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


def locks(ec2) -> dict[str, dict]:
    return {s["SnapshotId"]: s for s in ec2.describe_locked_snapshots()["Snapshots"]}


# ------------------------------------------------------------------ the sandbox


def test_sandbox_snapshot_locks_as_aws(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    s1, s2 = snap_of(ec2, ids["a1"]), snap_of(ec2, ids["a2"])
    ec2.lock_snapshot(SnapshotId=s1, LockMode="governance", LockDuration=1)
    out = ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=30, CoolOffPeriod=2)
    assert out["LockState"] == "compliance-cooloff"
    now = dt.datetime.now(dt.UTC)
    got = locks(ec2)
    assert got[s1]["LockState"] == "governance"
    assert got[s2]["CoolOffPeriodExpiresOn"] > now + dt.timedelta(hours=1)
    assert got[s2]["LockExpiresOn"] > now + dt.timedelta(days=29)
    by_state = ec2.describe_locked_snapshots(
        Filters=[{"Name": "lock-state", "Values": ["governance"]}]
    )
    assert [s["SnapshotId"] for s in by_state["Snapshots"]] == [s1]
    ec2.deregister_image(ImageId=ids["a1"])
    with pytest.raises(ClientError, match="SnapshotLocked"):
        ec2.delete_snapshot(SnapshotId=s1)
    with pytest.raises(ClientError, match="CoolOffPeriod applies to compliance"):
        ec2.lock_snapshot(SnapshotId=s1, LockMode="governance", LockDuration=1, CoolOffPeriod=1)
    with pytest.raises(ClientError, match="exactly one"):
        ec2.lock_snapshot(SnapshotId=s1, LockMode="governance")
    ec2.unlock_snapshot(SnapshotId=s1)  # governance: whoever may unlock it can
    ec2.delete_snapshot(SnapshotId=s1)
    ec2.unlock_snapshot(SnapshotId=s2)  # compliance, still cooling off: can be unlocked
    assert s2 not in locks(ec2)
    ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=30)
    with pytest.raises(ClientError, match="cannot be unlocked"):
        ec2.unlock_snapshot(SnapshotId=s2)
    with pytest.raises(ClientError, match="only be extended"):
        ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=2)
    with pytest.raises(ClientError, match="cannot change"):
        ec2.lock_snapshot(SnapshotId=s2, LockMode="governance", LockDuration=60)
    ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=60)  # extended
    resp = ec2.deregister_image(ImageId=ids["a2"], DeleteAssociatedSnapshots=True)
    assert {r["SnapshotId"]: r["ReturnCode"] for r in resp["DeleteSnapshotResults"]}[s2] == (
        "client-error"
    )
    assert ec2.describe_snapshots(SnapshotIds=[s2])["Snapshots"]  # the lock kept it


def test_sandbox_store_and_restore_an_image_to_a_launchable_image(env):
    ids = env.load(FLEET)["aliases"]
    ec2, s3 = env.client("ec2"), env.client("s3")
    s3.create_bucket(Bucket=f"vault-{env.account}")
    with pytest.raises(ClientError, match="does not exist"):
        ec2.create_store_image_task(ImageId=ids["a1"], Bucket="nope-" + env.account)
    key = ec2.create_store_image_task(ImageId=ids["a1"], Bucket=f"vault-{env.account}")["ObjectKey"]
    tasks = ec2.describe_store_image_tasks()["StoreImageTaskResults"]
    assert [(t["AmiId"], t["StoreTaskState"]) for t in tasks] == [(ids["a1"], "Completed")]
    stored = json.loads(s3.get_object(Bucket=f"vault-{env.account}", Key=key)["Body"].read())
    assert stored["ImageId"] == ids["a1"]
    ec2.deregister_image(ImageId=ids["a1"])
    new = ec2.create_restore_image_task(
        Bucket=f"vault-{env.account}", ObjectKey=key, Name="app-1.0.0-restored"
    )["ImageId"]
    img = ec2.describe_images(ImageIds=[new])["Images"][0]
    assert img["State"] == "available" and img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 8
    run = ec2.run_instances(ImageId=new, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert run["Instances"][0]["ImageId"] == new


# ------------------------------------------------------------------ the one decision


def test_a_compliance_locked_snapshot_is_shown_with_its_expiry_and_never_attempted(fleet):
    ec2 = fleet.env.client("ec2")
    a1 = fleet.ids["a1"]
    snap = snap_of(ec2, a1)
    # a plan made before the lock: apply re-decides live and never tries the snapshot
    path = fleet.tmp / "plan.json"
    code, out, err = fleet.run("plan", "--policy", fleet.policy, "--out", str(path))
    assert code == 0, out + err
    doomed = [a for a in json.loads(path.read_text())["actions"] if a["type"] == "deregister"]
    assert [a["image_id"] for a in doomed] == [a1]
    ec2.lock_snapshot(SnapshotId=snap, LockMode="compliance", LockDuration=30)
    until = locks(ec2)[snap]["LockExpiresOn"].strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = fleet.run("explain", a1, "--policy", fleet.policy)
    assert code == 0, out + err
    assert f"locked in compliance mode until {until}" in " ".join(out.split())
    plan = fleet.json("plan", "--policy", fleet.policy)  # a new plan does not retire it
    assert not [a for a in plan["actions"] if a.get("image_id") == a1 and a["type"] != "mark"]
    fleet.env.sandbox.reset_call_counts()
    code, out, err = fleet.run("apply", str(path), "--yes")
    calls = fleet.env.sandbox.aws_model_state()["calls"]
    assert calls.get("ec2.DeleteSnapshot", 0) == 0, calls
    assert calls.get("ec2.DeregisterImage", 0) == 0, calls
    assert ec2.describe_images(ImageIds=[a1])["Images"]  # AWS's own state
    assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"]


def test_an_image_being_stored_to_s3_is_kept(fleet):
    ec2, s3 = fleet.env.client("ec2"), fleet.env.client("s3")
    a1 = fleet.ids["a1"]
    s3.create_bucket(Bucket=f"keep-{fleet.env.account}")
    fleet.env.sandbox.set_retention(store_seconds=3600)
    try:
        ec2.create_store_image_task(ImageId=a1, Bucket=f"keep-{fleet.env.account}")
        code, out, err = fleet.run("explain", a1, "--policy", fleet.policy)
    finally:
        fleet.env.sandbox.set_retention(store_seconds=0)
    assert code == 0, out + err
    assert "CreateStoreImageTask in progress" in out


# ------------------------------------------------------------------ retain, audit, restore

RETAIN_FLEET = (
    FLEET
    + """  - {alias: a3, name: app-3.0.0, age_days: 5, tags: {family: app, version: 3.0.0},
     snapshots: [{size_gib: 8}]}
"""
)
RETAIN_POLICY = (
    POLICY
    + """retain:
  - name: sox
    select: {channels: [prod]}
    lock: {mode: compliance, duration: 30d, cool_off: 1h}
"""
)


def test_retain_locks_every_version_ever_in_prod_and_audit_finds_the_gaps(sandbox, tmp_path):
    f = CliFleet(sandbox, RETAIN_FLEET, tmp_path)
    pol = tmp_path / "r.yaml"
    pol.write_text(RETAIN_POLICY)
    ec2, ssm, rbin = f.env.client("ec2"), f.env.client("ssm"), f.env.client("rbin")
    a1, a2 = f.ids["a1"], f.ids["a2"]
    for value in (a1, a2):  # a1 was in prod, a2 is: a3 never was
        ssm.put_parameter(
            Name="/amictl/channels/app/prod",
            Value=value,
            Type="String",
            DataType="aws:ec2:image",
            Overwrite=True,
        )
    rule = rbin.create_rule(
        ResourceType="EBS_SNAPSHOT",
        RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"},
    )["Identifier"]
    found = f.json("audit", "--policy", str(pol))["findings"]
    gaps = sorted(x["resource"] for x in found if x["check"] == "retention-gap")
    assert gaps == sorted([a1, a2])
    assert [x["resource"] for x in found if x["check"] == "recycle-bin-rule-unlocked"] == [rule]
    # the one decision keeps a version whose retention is not in place yet
    code, out, err = f.run("explain", a1, "--policy", str(pol))
    assert code == 0 and "retain rule sox" in out, out + err
    dry = f.json("retain", "--policy", str(pol), "--dry-run")
    assert sorted(s["image_id"] for s in dry) == sorted([a1, a2])
    assert ec2.describe_locked_snapshots()["Snapshots"] == []  # a dry run changes nothing
    done = f.json("retain", "--policy", str(pol))
    assert {s["status"] for s in done} == {"done"}
    locked = {s["SnapshotId"]: s for s in ec2.describe_locked_snapshots()["Snapshots"]}
    assert set(locked) == {snap_of(ec2, a1), snap_of(ec2, a2)}
    assert {s["LockState"] for s in locked.values()} == {"compliance-cooloff"}
    assert f.json("retain", "--policy", str(pol)) == []  # in place: nothing to do
    rbin.lock_rule(
        Identifier=rule,
        LockConfiguration={"UnlockDelay": {"UnlockDelayValue": 7, "UnlockDelayUnit": "DAYS"}},
    )
    with pytest.raises(ClientError, match="ConflictException"):
        rbin.delete_rule(Identifier=rule)  # the sandbox: a locked rule stays
    found = f.json("audit", "--policy", str(pol))["findings"]
    assert not [x for x in found if x["check"] in ("retention-gap", "recycle-bin-rule-unlocked")]
    unlocked = rbin.unlock_rule(Identifier=rule)
    assert unlocked["LockState"] == "pending_unlock"
    with pytest.raises(ClientError, match="ConflictException"):
        rbin.delete_rule(Identifier=rule)  # still within its unlock delay


def test_retain_stores_to_s3_and_restore_brings_back_a_launchable_image(sandbox, tmp_path):
    f = CliFleet(sandbox, FLEET, tmp_path)
    bucket = f"vault-{f.env.account}"
    f.env.client("s3").create_bucket(Bucket=bucket)
    pol = tmp_path / "s.yaml"
    pol.write_text(
        POLICY + f"retain:\n  - {{name: keep-all, select: {{families: [app]}}, "
        f"store: {{bucket: {bucket}}}}}\n"
    )
    steps = f.json("retain", "--policy", str(pol))
    assert sorted(s["image_id"] for s in steps) == sorted([f.ids["a1"], f.ids["a2"]])
    ec2 = f.env.client("ec2")
    ec2.deregister_image(ImageId=f.ids["a1"])
    out = f.json(
        "restore", "--bucket", bucket, "--key", f"{f.ids['a1']}.bin", "--name", "app-1-back"
    )
    new = out["image_id"]
    run = ec2.run_instances(ImageId=new, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert run["Instances"][0]["ImageId"] == new
    assert ec2.describe_images(ImageIds=[new])["Images"][0]["Name"] == "app-1-back"


def test_bad_retain_rules_name_the_file_line_and_key(tmp_path):
    from amictl.errors import InputError
    from amictl.policy import parse_policy_text

    text = (
        POLICY
        + "retain:\n  - name: x\n    select: {channels: [prod]}\n"
        + ("    lock: {mode: governance, duration: 30d, cool_off: 1h}\n    store: {bucket: b}\n")
    )
    with pytest.raises(InputError) as exc:
        parse_policy_text(text, "p.yaml")
    msg = str(exc.value)
    assert "exactly one of lock or store" in msg and "cooling-off period is for compliance" in msg
    assert "p.yaml:9" in msg or "p.yaml:10" in msg
