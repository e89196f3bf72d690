"""bake end to end in the sandbox: Run Command outcomes set per step through the control API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.creation import bake_journal
from amictl.creation.bake import BAKE_ID_TAG, bake
from amictl.creation.cleanup import cleanup
from amictl.creation.recipe import parse_recipe_text
from amictl.creation.runsteps import Waits
from amictl.errors import AmictlError, Interrupted
from amictl.state.store import Store
from cli_fleet import invoke

FLEET = """
images:
  - {alias: base1, name: base-al2023-1.0.0, tags: {family: base-al2023, version: "1.0.0"}, age_days: 20}
  - {alias: base2, name: base-al2023-1.1.0, tags: {family: base-al2023, version: "1.1.0"}, age_days: 2}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/base-al2023/prod, image: base1, data_type: "aws:ec2:image"}
"""

RECIPE = """\
format: 1
family: web
version: {bump: minor}
source: {image: base-al2023@prod}
builder: {instance_type: t3.micro, ready_timeout: 30s}
provision:
  - {name: patch, document: AWS-RunPatchBaseline, parameters: {Operation: Install}, timeout: 5m}
  - name: install
    shell: |
      dnf install -y nginx
    timeout: 2m
image:
  tags: {team: web}
  encrypted: true
  copy_to: [eu-west-1]
  share_with: ["210987654321"]
tests:
  steps:
    - {name: nginx-active, shell: systemctl is-active nginx, timeout: 1m}
promote: staging
"""


def tags_of(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


@pytest.fixture
def outcomes(sandbox):
    yield sandbox
    sandbox.set_run_command(clear=True)
    sandbox.set_ssm(reset=True)


def instances_of(env, bake_id: str) -> list[dict]:
    resv = env.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{BAKE_ID_TAG}", "Values": [bake_id]}]
    )["Reservations"]
    return [i for r in resv for i in r["Instances"]]


def channel(env, family: str, name: str) -> str | None:
    try:
        p = env.client("ssm").get_parameter(Name=f"/amictl/channels/{family}/{name}")
    except Exception:  # noqa: BLE001
        return None
    return p["Parameter"]["Value"]


def run_bake(env, tmp_path, text=RECIPE, **kw):
    recipe = parse_recipe_text(text, str(tmp_path / "web.recipe.yaml"))
    conn = env.connector()
    store = Store(f"sqlite:///{tmp_path}/state.db")
    events: list[dict] = []
    rec = bake(
        conn, conn.targets()[0], recipe, store, progress=events.append, waits=Waits.fast(), **kw
    )
    return rec, events, store


def test_passing_bake_tags_lineage_tests_and_promotes(env, tmp_path, outcomes):
    ids = env.load(FLEET)["aliases"]
    outcomes.set_ssm(managed_after=0.2)  # the agent shows up a little after launch
    outcomes.set_run_command(
        "comment:* provision patch", status="Success", output="patched 3", polls=2
    )
    rec, events, store = run_bake(env, tmp_path)
    assert rec["status"] == "succeeded", rec
    assert rec["source"]["image_id"] == ids["base1"]
    assert rec["version"] == "0.1.0"
    assert [s["name"] for s in rec["steps"]] == ["patch", "install", "nginx-active"]
    assert rec["steps"][0]["output"] == "patched 3"
    # streamed statuses: the patch step was seen InProgress before it succeeded
    seen = [e["status"] for e in events if e["event"] == "step-status" and e["step"] == "patch"]
    assert "InProgress" in seen and seen[-1] == "Success"
    ec2 = env.client("ec2")
    img = ec2.describe_images(ImageIds=[rec["image_id"]])["Images"][0]
    t = tags_of(img)
    assert t["family"] == "web" and t["version"] == "0.1.0" and t["team"] == "web"
    assert t["amictl:bake-status"] == "tested"
    assert t["amictl:source-image"] == ids["base1"]
    assert t["amictl:recipe-sha256"] == rec["recipe"]["sha256"]
    assert t["amictl:steps"] == "p:patch,p:install,t:nginx-active"
    assert channel(env, "web", "staging") == rec["image_id"]
    assert all(m["Ebs"]["Encrypted"] for m in img["BlockDeviceMappings"] if "Ebs" in m)
    # copied once tested: the copy carries the lineage and the tested status
    (copy,) = rec["copies"]
    eu = env.client("ec2", "eu-west-1").describe_images(ImageIds=[copy["image_id"]])["Images"][0]
    assert tags_of(eu)["amictl:bake-status"] == "tested"
    assert tags_of(eu)["amictl:recipe-sha256"] == rec["recipe"]["sha256"]
    perms = env.client("ec2").describe_image_attribute(
        ImageId=rec["image_id"], Attribute="launchPermission"
    )["LaunchPermissions"]
    assert perms == [{"UserId": "210987654321"}]
    # builder and test instances: both launched, both terminated
    insts = instances_of(env, rec["bake_id"])
    assert {tags_of(i)["amictl:bake-role"] for i in insts} == {"builder", "test"}
    assert {i["State"]["Name"] for i in insts} == {"terminated"}
    test_inst = next(i for i in insts if tags_of(i)["amictl:bake-role"] == "test")
    assert test_inst["ImageId"] == rec["image_id"]
    row = bake_journal.get(store, rec["bake_id"])
    assert row["status"] == "succeeded" and row["image_id"] == rec["image_id"]


def test_failing_test_step_never_promotes_and_reports_output(env, tmp_path, outcomes):
    env.load(FLEET)
    outcomes.set_run_command(
        "comment:* test nginx-active", status="Failed", response_code=3, output="inactive"
    )
    rec, _events, _store = run_bake(env, tmp_path)
    assert rec["status"] == "failed"
    fs = rec["failed_step"]
    assert fs["phase"] == "test" and fs["name"] == "nginx-active"
    assert fs["status"] == "Failed" and fs["response_code"] == 3 and fs["output"] == "inactive"
    t = tags_of(env.client("ec2").describe_images(ImageIds=[rec["image_id"]])["Images"][0])
    assert t["amictl:bake-status"] == "failed"
    assert t["amictl:failed-step"].startswith("test:nginx-active")
    assert channel(env, "web", "staging") is None
    assert {i["State"]["Name"] for i in instances_of(env, rec["bake_id"])} == {"terminated"}
    assert rec["copies"] == []  # an untested image is never copied
    assert not env.client("ec2", "eu-west-1").describe_images(Owners=["self"])["Images"]


def test_failing_or_timed_out_provision_step_makes_no_image(env, tmp_path, outcomes):
    env.load(FLEET)
    outcomes.set_run_command(
        "comment:* provision install", status="TimedOut", output="still downloading"
    )
    rec, _e, _s = run_bake(env, tmp_path)
    assert rec["status"] == "failed" and rec["image_id"] is None
    assert rec["failed_step"]["name"] == "install"
    assert rec["failed_step"]["status"] == "TimedOut"
    assert rec["failed_step"]["output"] == "still downloading"
    assert [s["name"] for s in rec["steps"]] == ["patch", "install"]
    assert {i["State"]["Name"] for i in instances_of(env, rec["bake_id"])} == {"terminated"}
    # a step that never ends is cancelled at its own timeout and reported timed out
    outcomes.set_run_command(clear=True)
    outcomes.set_run_command("comment:* provision install", hang=True)
    rec, _e, _s = run_bake(env, tmp_path, RECIPE.replace("timeout: 2m", "timeout: 1s"))
    assert rec["status"] == "failed" and rec["failed_step"]["status"] == "TimedOut"
    assert channel(env, "web", "staging") is None


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env = env
        self.environ = {**env.cli_env(tmp_path), "AMICTL_BAKE_POLL": "0.05"}
        for k, v in self.environ.items():
            monkeypatch.setenv(k, v)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return invoke([*args, *self.env.cli_args()])

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "amictl.cli.main", *args, *self.env.cli_args()],
            env={**os.environ, **self.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def write_recipe(tmp_path: Path, text: str = RECIPE) -> str:
    p = tmp_path / "web.recipe.yaml"
    p.write_text(text)
    return str(p)


def test_cli_dry_run_json_and_failure_exit_code(env, run, tmp_path, outcomes):
    ids = env.load(FLEET)["aliases"]
    path = write_recipe(tmp_path)
    code, out, err = run("bake", path, "--dry-run", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["source"]["image_id"] == ids["base1"] and data["version"] == "0.1.0"
    assert [s["name"] for s in data["steps"]] == ["patch", "install", "nginx-active"]
    assert not env.client("ec2").describe_instances()["Reservations"]  # nothing launched
    outcomes.set_run_command("comment:* test nginx-active", status="Failed", output="inactive")
    code, out, err = run("bake", path, "-o", "json")
    assert code == 1
    rec = json.loads(out)
    assert rec["status"] == "failed" and rec["failed_step"]["output"] == "inactive"
    assert "nothing was promoted" in err


def _wait_for_command(env, comment_part: str, deadline: float = 30) -> None:
    ssm = env.client("ssm")
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if any(comment_part in (c.get("Comment") or "") for c in ssm.list_commands()["Commands"]):
            return
        time.sleep(0.1)
    raise AssertionError(f"no command {comment_part!r} was sent")


def _bake_instances(env) -> list[dict]:
    resv = env.client("ec2").describe_instances(
        Filters=[{"Name": "tag-key", "Values": [BAKE_ID_TAG]}]
    )["Reservations"]
    return [i for r in resv for i in r["Instances"]]


def test_ctrl_c_terminates_the_builder_and_exits_130(env, run, tmp_path, outcomes):
    env.load(FLEET)
    outcomes.set_run_command("comment:* provision install", hang=True)
    proc = run.popen("bake", write_recipe(tmp_path))
    try:
        _wait_for_command(env, "provision install")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    insts = _bake_instances(env)
    assert len(insts) == 1 and insts[0]["State"]["Name"] == "terminated"
    rows = bake_journal.history(Store(f"sqlite:///{tmp_path}/state.db"))
    assert rows[0]["status"] == "interrupted"
    assert channel(env, "web", "staging") is None


def test_sigkilled_bake_leaves_instances_that_cleanup_removes(env, run, tmp_path, outcomes):
    env.load(FLEET)
    outcomes.set_run_command("comment:* test nginx-active", hang=True)
    proc = run.popen("bake", write_recipe(tmp_path))
    try:
        _wait_for_command(env, "test nginx-active")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    insts = {tags_of(i)["amictl:bake-role"]: i for i in _bake_instances(env)}
    assert insts["builder"]["State"]["Name"] == "terminated"  # done with before the tests
    assert insts["test"]["State"]["Name"] == "running"  # left behind
    image_id = insts["test"]["ImageId"]
    code, out, err = run("bake", "--cleanup", "-o", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["instance_id"], r["image_id"], r["action"]) for r in rows] == [
        (insts["test"]["InstanceId"], None, "terminated"),
        (None, image_id, "tagged abandoned"),
    ]
    assert "process is gone" in rows[0]["reason"]
    assert {i["State"]["Name"] for i in _bake_instances(env)} == {"terminated"}
    img = env.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]
    assert tags_of(img)["amictl:bake-status"] == "abandoned"
    store = Store(f"sqlite:///{tmp_path}/state.db")
    assert bake_journal.history(store)[0]["status"] == "cleaned"
    code, out, _err = run("bake", "--cleanup", "-o", "json")  # nothing left the second time
    assert code == 0 and json.loads(out) == []
    assert channel(env, "web", "staging") is None


def test_cleanup_by_tag_spares_live_bakes_and_takes_expired_unknown_ones(env, tmp_path):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")

    def tagged(bake_id: str, deadline: str) -> str:
        return ec2.run_instances(
            ImageId=ids["base1"],
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": BAKE_ID_TAG, "Value": bake_id},
                        {"Key": "amictl:bake-deadline", "Value": deadline},
                    ],
                }
            ],
        )["Instances"][0]["InstanceId"]

    expired = tagged("bake-elsewhere-1", "2020-01-01T00:00:00Z")
    future = tagged("bake-elsewhere-2", "2999-01-01T00:00:00Z")
    store = Store(f"sqlite:///{tmp_path}/state.db")
    bake_journal.start(
        store,
        {
            "bake_id": "bake-live",
            "started_at": "x",
            "account": env.account,
            "region": "us-east-1",
            "family": "web",
        },
    )
    live = tagged("bake-live", "2020-01-01T00:00:00Z")
    conn = env.connector()
    rows = cleanup(conn, conn.targets(), store)
    assert [r["instance_id"] for r in rows] == [expired]
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=[expired, future, live])["Reservations"]
        for i in r["Instances"]
    }
    assert states == {expired: "terminated", future: "running", live: "running"}


def test_if_stale_skips_when_nothing_changed_and_bakes_when_the_base_moved(
    env, run, tmp_path, outcomes
):
    ids = env.load(FLEET)["aliases"]
    path = write_recipe(tmp_path)
    code, out, err = run("bake", path, "--if-stale", "-o", "json")
    assert code == 0, err
    first = json.loads(out)
    assert first["status"] == "succeeded"  # never baked: stale
    code, out, err = run("bake", path, "--if-stale", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["status"] == "skipped"
    code, out, err = run("bake", path, "--if-stale", "--max-age", "30d", "-o", "json")
    assert json.loads(out)["status"] == "skipped"
    env.client("ssm").put_parameter(
        Name="/amictl/channels/base-al2023/prod",
        Value=ids["base2"],
        Type="String",
        Overwrite=True,
    )
    code, out, err = run("bake", path, "--if-stale", "-o", "json")
    assert code == 0, err
    second = json.loads(out)
    assert second["status"] == "succeeded" and second["source"]["image_id"] == ids["base2"]
    assert second["version"] == "0.2.0"
    assert "source" in err and "moved" in err
    # versions and show display what the bakes recorded
    code, out, err = run("versions", "web", "-o", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["source_image"] for r in rows] == [ids["base1"], ids["base2"]]
    assert {r["recipe_sha256"] for r in rows} == {first["recipe"]["sha256"]}
    code, out, err = run("versions", "web", "--from-state")
    assert code == 0 and first["recipe"]["sha256"][:12] in out and ids["base2"] in out
    code, out, err = run("show", second["image_id"], "--from-state", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)["bake"]
    assert shown["source_image"] == ids["base2"] and shown["status"] == "tested"
    assert (
        shown["recipe_sha256"] == first["recipe"]["sha256"]
        and shown["source"] == "base-al2023@prod"
    )
    code, out, err = run("show", second["image_id"], "--from-state")
    assert code == 0 and "baked by amictl bake" in out and "p:patch,p:install" in out


def test_iam_policy_bake_and_stale():
    res = CliRunner().invoke(cli, ["iam-policy", "bake"])
    actions = {a for st in json.loads(res.stdout)["Statement"] for a in st["Action"]}
    assert {
        "ssm:SendCommand",
        "ssm:GetCommandInvocation",
        "ssm:DescribeInstanceInformation",
        "ssm:CancelCommand",
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:CreateImage",
        "ssm:PutParameter",
        "iam:PassRole",
    } <= actions
    res = CliRunner().invoke(cli, ["iam-policy", "stale"])
    actions = {a for st in json.loads(res.stdout)["Statement"] for a in st["Action"]}
    assert "ec2:DescribeImages" in actions and "ssm:SendCommand" not in actions


def test_sandbox_managed_nodes_and_send_command_refusal(env, outcomes):
    ids = env.load(FLEET)["aliases"]
    ec2, ssm = env.client("ec2"), env.client("ssm")
    iids = [
        i["InstanceId"]
        for i in ec2.run_instances(
            ImageId=ids["base1"], MinCount=7, MaxCount=7, InstanceType="t3.micro"
        )["Instances"]
    ]
    pages = list(
        ssm.get_paginator("describe_instance_information").paginate(
            Filters=[{"Key": "InstanceIds", "Values": iids[:6]}], PaginationConfig={"PageSize": 5}
        )
    )
    listed = [i["InstanceId"] for p in pages for i in p["InstanceInformationList"]]
    assert len(pages) == 2 and sorted(listed) == sorted(iids[:6])
    outcomes.set_ssm(unmanaged=[iids[2]])
    with pytest.raises(ssm.exceptions.ClientError) as e:
        ssm.send_command(
            InstanceIds=[iids[2]],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["true"]},
        )
    assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iids[2]]}])[
        "InstanceInformationList"
    ]
    assert info == []


def test_builder_never_managed_fails_and_is_terminated(env, tmp_path, outcomes):
    env.load(FLEET)
    outcomes.set_ssm(unmanaged=["*"])
    with pytest.raises(AmictlError, match="did not become an SSM managed node"):
        run_bake(env, tmp_path, RECIPE.replace("ready_timeout: 30s", "ready_timeout: 1s"))
    store = Store(f"sqlite:///{tmp_path}/state.db")
    row = bake_journal.history(store)[0]
    assert row["status"] == "failed"
    insts = instances_of(env, row["bake_id"])
    assert [i["State"]["Name"] for i in insts] == ["terminated"]


def test_ctrl_c_during_tests_terminates_the_test_instance(env, tmp_path, outcomes):
    env.load(FLEET)
    outcomes.set_run_command("comment:* test nginx-active", hang=True)
    from amictl import interrupts

    def stop_when_testing(e: dict) -> None:
        if e["event"] == "step-status" and e.get("phase") == "test":
            interrupts.request_stop()

    recipe = parse_recipe_text(RECIPE, str(tmp_path / "web.recipe.yaml"))
    conn = env.connector()
    store = Store(f"sqlite:///{tmp_path}/state.db")
    try:
        with pytest.raises(Interrupted) as e:
            bake(
                conn,
                conn.targets()[0],
                recipe,
                store,
                progress=stop_when_testing,
                waits=Waits.fast(),
            )
    finally:
        interrupts.reset()
    rec = e.value.result
    assert rec["status"] == "interrupted"
    insts = instances_of(env, rec["bake_id"])
    assert {tags_of(i)["amictl:bake-role"] for i in insts} == {"builder", "test"}
    assert {i["State"]["Name"] for i in insts} == {"terminated"}
    t = tags_of(env.client("ec2").describe_images(ImageIds=[rec["image_id"]])["Images"][0])
    assert t["amictl:bake-status"] == "abandoned"
    assert channel(env, "web", "staging") is None


def test_demo_bakes_one_that_promotes_and_one_that_does_not(env, sandbox, tmp_path):
    from types import SimpleNamespace

    from rich.console import Console

    from amictl.cli import demo_bake

    amazon = (
        "  - {alias: amazon, name: al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64, "
        'owner: "137112412989", owner_alias: amazon, public: true}\n'
    )
    ids = env.load(FLEET.replace("ssm_parameters:", amazon + "ssm_parameters:"))["aliases"]
    con = Console(record=True, width=200)
    ctx = SimpleNamespace(
        con=con, conn=env.connector(), store=Store(f"sqlite:///{tmp_path}/state.db")
    )
    demo_bake.run_bakes(ctx, sandbox)
    text = con.export_text()
    assert f"source {ids['amazon']} (catalog al2023" in text
    assert "succeeded" in text and "promoted 0.1.0 to channel staging" in text
    assert "test step fips-enabled Failed (exit 1), output: 'fips_enabled=0'" in text
    assert "skipped, nothing changed" in text
    staging = channel(env, "web-service", "staging")
    assert staging and channel(env, "hardened-web", "prod") is None
    states = {i["State"]["Name"] for i in _bake_instances(env)}
    assert states == {"terminated"}


def test_recipe_change_is_stale_and_a_deprecated_source_is_refused(env, tmp_path):
    from amictl.creation.bake import BAKE_STATUS_TAG, RECIPE_HASH_TAG
    from amictl.creation.stale import stale_reason
    from amictl.errors import SafetyError

    deprecated = "  - {alias: old, name: base-0.9, deprecated_days_ago: 1}\nssm_parameters:"
    ids = env.load(FLEET.replace("ssm_parameters:", deprecated))["aliases"]
    same = parse_recipe_text(RECIPE, "web.recipe.yaml")
    ec2 = env.client("ec2")
    # what a successful bake of this recipe from base1 leaves on its image
    ec2.create_tags(
        Resources=[ids["base2"]],
        Tags=[
            {"Key": "family", "Value": "web"},
            {"Key": BAKE_STATUS_TAG, "Value": "tested"},
            {"Key": RECIPE_HASH_TAG, "Value": same.sha256},
            {"Key": "amictl:source-image", "Value": ids["base1"]},
        ],
    )
    conn = env.connector()
    target = conn.targets()[0]
    assert stale_reason(conn, target, same, ids["base1"], 30) is None
    changed = parse_recipe_text(RECIPE.replace("team: web", "team: web2"), "web.recipe.yaml")
    assert "recipe changed" in (stale_reason(conn, target, changed, ids["base1"], 30) or "")
    assert "moved" in (stale_reason(conn, target, same, ids["old"], 30) or "")
    assert "days old" in (stale_reason(conn, target, same, ids["base1"], 1) or "")
    with pytest.raises(SafetyError, match="deprecated"):
        run_bake(env, tmp_path, RECIPE.replace("base-al2023@prod", ids["old"]))
    assert _bake_instances(env) == []  # refused before any launch


def test_a_bake_whose_instances_cannot_be_terminated_exits_4(env, run, sandbox, tmp_path, outcomes):
    """The image is good, but instances still run (and bill): CI must notice (exit 4)."""
    env.load(FLEET)
    path = write_recipe(tmp_path)
    sandbox.set_faults(
        [
            {
                "service": "ec2",
                "action": "TerminateInstances",
                "code": "UnauthorizedOperation",
                "status": 403,
                "rate": 1.0,
            }
        ]
    )
    try:
        code, out, err = run("bake", path, "-o", "json")
    finally:
        sandbox.clear_faults()
    rec = json.loads(out)
    assert code == 4, err
    assert rec["status"] == "succeeded" and rec["not_terminated"]
    assert "bake --cleanup" in err
    live = [i for i in _bake_instances(env) if i["State"]["Name"] != "terminated"]
    assert {i["InstanceId"] for i in live} == set(rec["not_terminated"])
