"""Round 7 attacks (hostile3): kept parsed pages (aws/pagememo.py), the sandbox's read
cache (sandbox/readcache.py), botocore sessions without boto3 (aws/session.py) and
revoke's LAUNCHING_HERE. Each test tries to break a promise end to end and checks AWS's
own state. Every attack here got through once and is fixed: the tests pass."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import requests

from amictl.aws.fastparse import page_memo
from amictl.aws.session import AwsConfig, Connector
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
from cli_fleet import CliFleet, invoke, run_or_traceback
from conftest import Env

FLEET = """regions: [us-east-1]
images:
  - {alias: a, name: app-1, age_days: 10, tags: {family: app, version: "1"},
     snapshots: [{size_gib: 8}]}
  - {alias: z, name: zzz-1, age_days: 10, tags: {family: zzz, version: "1"},
     snapshots: [{size_gib: 8}]}
"""

POLICY = """format: 1
name: p
rules:
  - name: unused
    select: {families: ["*"]}
    keep: {in_use: true, latest: 1}
    retire: {deregister: 0d, snapshots: keep}
retain:
  - name: keep-app
    select: {families: [app]}
    lock: {mode: governance, duration: 30d}
"""


_run = run_or_traceback


def _kept(f: CliFleet, shape: str = "DescribeImagesResult") -> list[Path]:
    return sorted((f.tmp / "amictl" / "pages").glob(f"{shape}-*.json"))


def _snap(ec2: Any, image_id: str) -> str:
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return str(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


# ---------------------------------------------------------------- 1. kept pages


def test_retain_never_acts_on_a_forged_kept_page(sandbox: Any, tmp_path: Path) -> None:
    """`inventory` keeps the DescribeImages page; someone who can write the state directory
    points app-1's root volume at zzz-1's snapshot in it. `retain` must lock app-1's own
    snapshot (the rule selects family app), never zzz-1's: it parses every page itself."""
    f = CliFleet(sandbox, FLEET, tmp_path)
    pol = tmp_path / "p.yml"
    pol.write_text(POLICY)
    ec2 = f.env.client("ec2")
    mine, other = _snap(ec2, f.ids["a"]), _snap(ec2, f.ids["z"])
    assert f.json("retain", "--policy", str(pol), "--dry-run")[0]["resource"] == mine
    assert f("inventory")[0] == 0  # the inventory command keeps its pages
    forged = 0
    for kept in _kept(f):
        text = kept.read_text()
        if f.ids["a"] in text:
            kept.write_text(text.replace(mine, other))
            forged += 1
    assert forged
    f.json("retain", "--policy", str(pol))
    locked = {s["SnapshotId"] for s in ec2.describe_locked_snapshots()["Snapshots"]}
    assert locked == {mine}  # broken: {other}, the snapshot no rule selects, is locked


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("[" * 200_000, id="deeply-nested-json"),
        pytest.param(
            '{"Images": [{"ImageId": "ami-1", "ScanResults": {"FindingScanDate": "1e300"}}]}',
            id="time-out-of-range",
        ),
    ],
)
def test_a_garbage_kept_page_is_a_miss_not_a_failed_scan(
    sandbox: Any, tmp_path: Path, payload: str
) -> None:
    f = CliFleet(sandbox, FLEET, tmp_path)
    assert _run(f, "inventory", "-o", "json")[0] == 0
    for kept in _kept(f):
        kept.write_text(payload)
    code, text = _run(f, "inventory", "-o", "json")
    assert code == 0, text
    out = json.JSONDecoder().raw_decode(text)[0]
    assert out["incomplete"] == [], out["incomplete"]  # broken: images, RuntimeError


def test_a_fifo_in_the_pages_directory_never_hangs_inventory(sandbox: Any, tmp_path: Path) -> None:
    f = CliFleet(sandbox, FLEET, tmp_path)
    assert _run(f, "inventory", "-o", "json")[0] == 0
    (kept,) = _kept(f)
    kept.unlink()
    os.mkfifo(kept)
    done: list[Any] = []
    t = threading.Thread(target=lambda: done.append(_run(f, "inventory")), daemon=True)
    t.start()
    writer, deadline = None, time.monotonic() + 20
    while writer is None and t.is_alive() and time.monotonic() < deadline:
        try:  # succeeds once a reader has the FIFO open: the scan is reading it
            writer = os.open(kept, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.05)
    t.join(2)  # no byte ever comes: a reader still in read() waits for ever
    hung = t.is_alive()
    if writer is not None:
        os.close(writer)  # EOF: let it go
    t.join(30)
    assert not hung and done and done[0][0] == 0


def test_plan_then_apply_in_one_process_never_trusts_a_forged_page(
    sandbox: Any, tmp_path: Path
) -> None:
    """`apply -p POLICY` plans (page memo on) and applies in ONE process. The kept
    DescribeImages page is forged to say app-2, the family's newest (kept by latest: 1),
    is version 0: the plan is fooled into retiring it; apply's own connector reads live
    and keeps it."""
    newer = '  - {alias: a2, name: app-2, age_days: 1, tags: {family: app, version: "2"}}\n'
    f = CliFleet(sandbox, FLEET + newer, tmp_path)
    pol = tmp_path / "p.yml"
    pol.write_text(POLICY.split("retain:")[0])  # no retain rule: it would keep app

    def retired() -> set[str]:
        code, text = _run(f, "plan", "-p", str(pol), "-o", "json")
        assert code == 0, text
        acts = json.JSONDecoder().raw_decode(text)[0]["actions"]
        return {a["image_id"] for a in acts if a["type"] == "deregister"}

    assert f.ids["a2"] not in retired()
    for kept in _kept(f):
        page = json.loads(kept.read_text())
        for img in page.get("Images", []):
            if img["ImageId"] == f.ids["a2"]:
                img["Tags"] = [{"Key": "family", "Value": "app"}, {"Key": "version", "Value": "0"}]
        kept.write_text(json.dumps(page))
    code, text = _run(f, "apply", "-p", str(pol), "--yes", "-o", "json")
    assert code == 0, text
    out = json.JSONDecoder().raw_decode(text)[0]
    assert not out["done"] and "version 2 is #1" in out["skipped"]["a1"], out  # live: v2
    live = f.env.client("ec2").describe_images(ImageIds=[f.ids["a2"]])["Images"]
    assert [i["State"] for i in live] == ["available"]


def test_a_page_key_ignores_the_request_id_and_nothing_else(tmp_path: Path) -> None:
    """Only the first ``<requestId>`` element goes out of the key: an image name spelling
    one (escaped in XML) or a second element in the body still tells two pages apart."""
    memo = page_memo(tmp_path)
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeImagesResponse xmlns="http://'
        b'ec2.amazonaws.com/doc/2016-11-15/"><requestId>%s</requestId><imagesSet><item>'
        b"<name>%s</name></item></imagesSet>%s</DescribeImagesResponse>"
    )
    ec2 = botocore.session.get_session().get_service_model("ec2")
    shape = ec2.operation_model("DescribeImages").output_shape
    k1, rid = memo.key(shape, head % (b"r1", b"app", b""))
    assert rid == "r1" and memo.key(shape, head % (b"r2", b"app", b""))[0] == k1
    forged = b"&lt;requestId&gt;r1&lt;/requestId&gt;app"
    assert memo.key(shape, head % (b"r1", forged, b""))[0] != k1
    second = b"<requestId>r9</requestId>"
    assert memo.key(shape, head % (b"r1", b"app", second))[0] != k1
    snapshots = ec2.operation_model("DescribeSnapshots").output_shape
    assert memo.key(snapshots, head % (b"r1", b"app", b""))[0] != k1


# ---------------------------------------------------------------- 2. sandbox read cache


def test_a_write_smuggled_as_a_read_never_leaves_a_stale_describe(env: Env) -> None:
    env.load("regions: [us-east-1]\nimages: [{alias: a, name: app-1, age_days: 1}]\n")
    ec2 = env.client("ec2")
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    def plain_state() -> str:  # the same request each time: the sandbox may keep its answer
        res = ec2.describe_instances()["Reservations"]
        return next(
            i["State"]["Name"] for r in res for i in r["Instances"] if i["InstanceId"] == iid
        )

    assert plain_state() == "running"
    key = env.creds()["aws_access_key_id"]
    r = requests.post(
        f"{env.sandbox.endpoint}/?Action=TerminateInstances&InstanceId.1={iid}&Version=2016-11-15",
        data=b"Action=DescribeInstances&Version=2016-11-15",
        headers={
            "Content-Type": "text/plain",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/20261207/us-east-1/ec2/"
            "aws4_request, SignedHeaders=host, Signature=0",
            "X-Amz-Security-Token": env.creds()["aws_session_token"],
        },
        timeout=30,
    )
    assert r.status_code == 200 and b"TerminateInstancesResponse" in r.content, r.text
    fresh = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert fresh["State"]["Name"] in ("shutting-down", "terminated")  # moto did write
    assert plain_state() == fresh["State"]["Name"]  # broken: the kept answer says running


# ---------------------------------------------------------------- 3. sessions without boto3


def _aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").write_text("[profile west]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text(
        f"[west]\naws_access_key_id = {SANDBOX_ACCESS_KEY}\n"
        f"aws_secret_access_key = {SANDBOX_SECRET_KEY}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for var in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(var, raising=False)


def test_profiles_regions_and_a_missing_profile_behave_as_with_boto3(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aws_files(tmp_path, monkeypatch)
    conn = Connector(AwsConfig(profile="west", endpoint_url=sandbox.endpoint))
    assert conn.home_region() == "eu-west-1"  # the profile's region
    assert conn.identity()["account"]  # the profile's keys reach the endpoint
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")  # the env var wins, as with boto3
    assert Connector(AwsConfig(profile="west")).home_region() == "us-west-2"
    args = ["inventory", "--profile", "ghost", "--endpoint-url", sandbox.endpoint]
    code, out, err = invoke(args, {"AMICTL_STATE": f"sqlite:///{tmp_path}/s.db"})
    assert code == 1 and "(ghost) could not be found" in err, out + err  # AwsError, no traceback


def test_a_missing_env_profile_with_role_arns_is_a_clear_error(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--profile west given, AWS_PROFILE names no profile: the assumed-role sessions are
    made with profile=None, so botocore falls back to AWS_PROFILE there. Whatever happens,
    a clear error or a scan, never a traceback."""
    _aws_files(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_PROFILE", "ghost")
    args = ["inventory", "--profile", "west", "--region", "us-east-1", *env.cli_args()]
    try:
        code, out, err = invoke(args, {"AMICTL_STATE": f"sqlite:///{tmp_path}/s.db"})
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"traceback: {type(exc).__name__}: {exc}")
    assert code == 0 or "ghost" in err, out + err


# 4. revoke: infrastructure code names an image, not the account it is deployed to, so
# it does not keep a revoked image allowed in a consumer account (docs/cli.md, revoke).
