"""Issue 19: every reason to keep, decided live by the planner's own function.

One test per finding of the hostile review (each failed on the code before this change):
a reason to keep that becomes true between plan and apply, or between two actions of the
same apply (``execute(between_batches=...)``, not timing), stops the action.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from amictl.apply.executor import ApplyOptions, execute, prepare
from amictl.inventory import scan
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_model import Action, Plan
from amictl.state.store import Store
from cli_fleet import invoke
from conftest import Env

MARK = "amictl:retire-since"
BY = "amictl:retired-by"


def policy(keep: str = "{latest: 1}", retire: str = "{deregister: 0d, snapshots: delete}") -> str:
    return f"""format: 1
name: p1
rules:
  - name: old
    select: {{families: ["*"]}}
    keep: {keep}
    retire: {retire}
snapshots:
  orphaned: {{only_from_images: true, older_than: 1d, action: delete}}
"""


def fleet(versions: list[str], fam: str = "f", extra: str = "") -> str:
    n = len(versions)
    imgs = "".join(
        f"  - {{alias: {fam}{i}, name: {fam}-{v}, age_days: {100 + n - i}, "
        f"tags: {{family: {fam}, version: '{v}'}}, snapshots: [{{size_gib: 8}}]}}\n"
        for i, v in enumerate(versions, 1)
    )
    return "images:\n" + imgs + extra


def make_plan(env: Env, text: str, regions: list[str] | None = None) -> Plan:
    conn = env.connector(regions)
    return plan(scan(conn), parse_policy_text(text, "p1.yaml"), dt.datetime.now(dt.UTC))


def run_apply(
    env: Env,
    p: Plan,
    tmp_path: Any,
    hook: Callable[[list[Action]], None] | None = None,
    regions: list[str] | None = None,
    **opts: Any,
) -> Any:
    store = Store(f"sqlite:///{tmp_path}/state-{env.account}.db")
    o = ApplyOptions(max_destroy=1000, max_share=1.0, allow_whole_family=True, workers=1, **opts)
    conn = env.connector(regions)
    extra = {"between_batches": hook} if hook is not None else {}
    return execute(conn, store, prepare(conn, p, o, store), o, **extra)


def images(env: Env, region: str = "us-east-1") -> dict[str, dict[str, Any]]:
    ec2 = env.client("ec2", region)
    return {
        i["ImageId"]: i
        for i in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    }


def snaps(env: Env) -> set[str]:
    return {
        s["SnapshotId"]
        for s in env.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }


def snap_of(env: Env, image_id: str) -> str:
    img = images(env)[image_id]
    return str(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


def planned(p: Plan, type_: str) -> set[str]:
    return {a.image_id or "" for a in p.actions if a.type == type_}


def tags(img: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in img.get("Tags", [])}


def once(fn: Callable[[], None], when: str = "deregister") -> Callable[[list[Action]], None]:
    """A between-batches hook that runs ``fn`` after the first batch holding a ``when``."""
    fired: list[bool] = []

    def hook(batch: list[Action]) -> None:
        if not fired and any(a.type == when for a in batch):
            fired.append(True)
            fn()

    return hook


# ---------------------------------------------------------------- finding 1


def test_references_that_appear_during_an_apply_stop_the_next_deregister(env, tmp_path):
    ids = env.load(fleet(["1", "2", "3", "4", "5"]))["aliases"]
    p = make_plan(env, policy())
    assert planned(p, "deregister") == {ids[f"f{i}"] for i in (1, 2, 3, 4)}
    ssm = env.client("ssm")
    first: list[str] = []

    def hook(batch: list[Action]) -> None:
        done = [a.image_id for a in batch if a.type == "deregister"]
        if first or not done:
            return
        first.append(done[0] or "")
        left = sorted({ids[f"f{i}"] for i in (1, 2, 3, 4)} - set(first))
        # a promotion, an SSM parameter and a launch configuration, each naming one
        ssm.put_parameter(
            Name="/amictl/channels/f/prod", Value=left[0], Type="String", DataType="aws:ec2:image"
        )
        ssm.put_parameter(Name="/team/golden", Value=left[1], Type="String")
        env.client("autoscaling").create_launch_configuration(
            LaunchConfigurationName="mid-apply", ImageId=left[2], InstanceType="t3.micro"
        )

    run_apply(env, p, tmp_path, hook)
    live = images(env)
    assert first and first[0] not in live
    kept = {ids[f"f{i}"] for i in (1, 2, 3, 4)} - set(first)
    assert kept <= set(live), "an image referenced mid-apply was deregistered"
    assert {snap_of(env, i) for i in kept} <= snaps(env)


def test_a_launch_template_made_mid_apply_stops_the_next_disable(env, tmp_path):
    ids = env.load(fleet(["1", "2", "3", "4"]))["aliases"]
    p = make_plan(env, policy(retire="{deprecate: 0d, disable: 0d}"))
    targets = {ids[f"f{i}"] for i in (1, 2, 3)}
    assert planned(p, "disable") == targets
    ec2 = env.client("ec2")
    first: list[str] = []

    def hook(batch: list[Action]) -> None:
        done = [a.image_id or "" for a in batch if a.type == "disable"]
        if done and not first:
            first.append(done[0])
            for n, other in enumerate(sorted(targets - set(first))):
                ec2.create_launch_template(
                    LaunchTemplateName=f"mid-{n}", LaunchTemplateData={"ImageId": other}
                )

    res = run_apply(env, p, tmp_path, hook)
    live = images(env)
    assert live[first[0]]["State"] == "disabled"
    for other in targets - set(first):
        assert live[other]["State"] == "available", res.to_dict()
        assert MARK not in tags(live[other]), "a kept image keeps no retirement mark"


# ---------------------------------------------------------------- finding 2


def test_keep_latest_n_is_counted_on_the_live_family(env, tmp_path):
    ids = env.load(fleet(["1", "2", "3", "4", "5"]))["aliases"]
    p = make_plan(env, policy(keep="{latest: 2}"))
    assert planned(p, "deregister") == {ids["f1"], ids["f2"], ids["f3"]}
    env.client("ec2").deregister_image(ImageId=ids["f5"])  # another team, another tool
    run_apply(env, p, tmp_path)
    live = images(env)
    assert ids["f3"] in live and ids["f4"] in live, "keep latest 2 left fewer than 2"
    assert ids["f1"] not in live and ids["f2"] not in live


def test_an_edited_plan_cannot_deregister_the_newest_of_a_family(env, tmp_path):
    ids = env.load(fleet(["1", "2", "3"]))["aliases"]
    p = make_plan(env, policy())
    body = p.to_dict()
    body["actions"].append(
        {
            **[a for a in body["actions"] if a["type"] == "mark"][0],
            "id": "x1",
            "image_id": ids["f3"],
        }
    )
    body["actions"].append(
        {
            **[a for a in body["actions"] if a["type"] == "deregister"][0],
            "id": "x2",
            "image_id": ids["f3"],
            "after": ["x1"],
        }
    )
    body.pop("checksum")
    body["checksum"] = Plan.checksum_of(body)
    res = run_apply(env, Plan.from_dict(body), tmp_path)
    assert ids["f3"] in images(env)
    assert "x2" in res.skipped and "x1" in res.skipped
    assert MARK not in tags(images(env)[ids["f3"]])


# ---------------------------------------------------------------- finding 3


def test_a_volume_backup_is_never_a_snapshot_made_for_an_image(env, tmp_path, monkeypatch):
    ids = env.load(fleet(["1", "2"]))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    code, out, err = invoke(
        ["launch", ids["f1"], "--type", "t3.micro", "-o", "json", *env.cli_args()]
    )
    assert code == 0, err
    iid = json.loads(out)["instance_ids"][0]
    ec2 = env.client("ec2")
    vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
    for v in vols["Volumes"]:
        assert "amictl:image" not in {t["Key"] for t in v.get("Tags", [])}
    # A backup tool copies the volume's tags, whatever they are (here: an old amictl's).
    backup = ec2.create_snapshot(
        VolumeId=vols["Volumes"][0]["VolumeId"],
        Description="nightly backup",
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": "amictl:image", "Value": ids["f1"]}]}
        ],
    )["SnapshotId"]
    ec2.terminate_instances(InstanceIds=[iid])
    p = make_plan(env, policy())
    assert ids["f1"] in planned(p, "deregister")
    assert backup not in {a.snapshot_id for a in p.actions}
    # an edited plan says the backup was the image's snapshot: apply does not believe it
    body = p.to_dict()
    dereg = next(a for a in body["actions"] if a["type"] == "deregister")
    body["actions"].append(
        {
            "id": "x1",
            "type": "delete-snapshot",
            "account": env.account,
            "region": "us-east-1",
            "rule": "old",
            "reasons": ["edited"],
            "image_id": ids["f1"],
            "snapshot_id": backup,
            "after": [dereg["id"]],
        }
    )
    body.pop("checksum")
    body["checksum"] = Plan.checksum_of(body)
    res = run_apply(env, Plan.from_dict(body), tmp_path)
    assert ids["f1"] not in images(env)
    assert backup in snaps(env), res.to_dict()
    assert "cannot verify" in res.skipped["x1"]


# ---------------------------------------------------------------- finding 4


def test_retirement_keeps_the_rollback_target_and_rollback_walks_back(env, tmp_path, monkeypatch):
    ids = env.load(fleet(["1.1.0", "1.2.0"]))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)

    def cli(*args: str) -> tuple[int, str, str]:
        return invoke([*args, *env.cli_args()])

    assert cli("promote", "f", "1.1.0", "--channel", "prod")[0] == 0
    assert cli("promote", "f", "1.2.0", "--channel", "prod")[0] == 0
    p = make_plan(env, policy())
    assert ids["f1"] not in planned(p, "deregister")
    d = {x.image_id: x for x in p.decisions}[ids["f1"]]
    assert d.verdict == "keep" and any("channel history" in r for r in d.reasons)
    run_apply(env, p, tmp_path)
    code, out, err = cli("rollback", "f", "--channel", "prod", "-o", "json")
    assert code == 0, err
    assert json.loads(out)[0]["image_id"] == ids["f1"]
    # a second rollback goes further back (there is nothing): refused, not a flip to 1.2.0
    code, out, err = cli("rollback", "f", "--channel", "prod")
    assert code == 3 and "no earlier release" in err
    value = env.client("ssm").get_parameter(Name="/amictl/channels/f/prod")["Parameter"]["Value"]
    assert value == ids["f1"]
    hist = json.loads(cli("channels", "history", "f", "-o", "json")[1])
    assert [h["by"] for h in hist] == ["promote", "promote", "rollback"]
    assert hist[-1]["place"] == "current"


def test_rollback_two_steps_and_to_a_version(env, tmp_path, monkeypatch):
    ids = env.load(fleet(["1.0.0", "1.1.0", "1.2.0"]))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)

    def cli(*args: str) -> tuple[int, str, str]:
        return invoke([*args, *env.cli_args()])

    for v in ("1.0.0", "1.1.0", "1.2.0"):
        assert cli("promote", "f", v, "--channel", "prod")[0] == 0
    value = lambda: env.client("ssm").get_parameter(Name="/amictl/channels/f/prod")[  # noqa: E731
        "Parameter"
    ]["Value"]
    assert cli("rollback", "f", "--channel", "prod")[0] == 0
    assert value() == ids["f2"]
    assert cli("rollback", "f", "--channel", "prod")[0] == 0
    assert value() == ids["f1"]  # two rollbacks = two steps
    assert cli("promote", "f", "1.2.0", "--channel", "prod")[0] == 0
    assert cli("rollback", "f", "--channel", "prod", "--to", "1.0.0")[0] == 0
    assert value() == ids["f1"]


def test_rollback_never_points_a_channel_at_another_accounts_image(
    env, sandbox, tmp_path, monkeypatch
):
    from conftest import _accounts

    other = Env(sandbox, str(next(_accounts)))
    foreign = other.load(
        "images:\n  - {alias: pub, public: true, tags: {family: f, version: '0.9'}}\n"
    )["aliases"]["pub"]
    env.load(fleet(["1.0.0"]))
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    ssm = env.client("ssm")
    ssm.put_parameter(
        Name="/amictl/channels/f/prod", Value=foreign, Type="String", DataType="aws:ec2:image"
    )
    assert invoke(["promote", "f", "1.0.0", "--channel", "prod", *env.cli_args()])[0] == 0
    code, _, err = invoke(["rollback", "f", "--channel", "prod", *env.cli_args()])
    assert code == 3 and "owned by" in err


def test_rollback_passes_the_gate_or_names_why_it_skips_it(env, tmp_path, monkeypatch):
    env.load(fleet(["1.0.0", "1.1.0"]))
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    gates = tmp_path / "gates.yaml"
    gates.write_text("channels:\n  prod:\n    requires_tag: {approved: 'yes'}\n")
    env_args = env.cli_args()
    assert invoke(["promote", "f", "1.0.0", "--channel", "prod", *env_args])[0] == 0
    assert invoke(["promote", "f", "1.1.0", "--channel", "prod", *env_args])[0] == 0
    code, _, err = invoke(["rollback", "f", "--channel", "prod", "--gates", str(gates), *env_args])
    assert code == 3 and "gate prod" in err
    code, out, err = invoke(
        [
            "rollback",
            "f",
            "--channel",
            "prod",
            "--gates",
            str(gates),
            "--skip-gates",
            "incident 42",
            "-o",
            "json",
            *env_args,
        ]
    )
    assert code == 0, err
    assert json.loads(out)[0]["gates_skipped"] == "incident 42"


# ---------------------------------------------------------------- finding 5


def test_a_pre_release_does_not_outrank_its_release(env, tmp_path):
    ids = env.load(fleet(["1.2.2", "1.2.3-rc.1", "1.2.3"]))["aliases"]
    p = make_plan(env, policy())
    assert planned(p, "deregister") == {ids["f1"], ids["f2"]}
    run_apply(env, p, tmp_path)
    assert set(images(env)) == {ids["f3"]}


# ---------------------------------------------------------------- finding 6


def test_failed_bakes_never_count_and_are_never_promoted_or_launched(env, tmp_path, monkeypatch):
    ids = env.load(
        fleet(["1", "2"])
        + "  - {alias: bad, name: f-3, age_days: 1, tags: {family: f, version: '3', "
        "'amictl:bake-status': failed}}\n"
    )["aliases"]
    p = make_plan(env, policy())
    assert planned(p, "deregister") == {ids["f1"], ids["bad"]}, "the last good version stays"
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    code, _, err = invoke(["promote", "f", "3", "--channel", "prod", *env.cli_args()])
    assert code == 3 and "failed" in err
    code, _, err = invoke(["launch", "f@3", "--type", "t3.micro", *env.cli_args()])
    assert code == 3 and "bake that is failed" in err
    code, _, err = invoke(
        ["launch", "f@3", "--type", "t3.micro", "--allow-failed-bake", "--dry-run", *env.cli_args()]
    )
    assert code == 0, err


# ---------------------------------------------------------------- finding 7


def test_a_skipped_deregister_removes_the_marks_this_policy_made(env, tmp_path):
    ids = env.load(fleet(["1", "2"]))["aliases"]
    p = make_plan(env, policy())
    ec2 = env.client("ec2")

    def use() -> None:
        ec2.create_launch_template(
            LaunchTemplateName="late", LaunchTemplateData={"ImageId": ids["f1"]}
        )

    res = run_apply(env, p, tmp_path, once(use, "mark"))
    img = images(env)[ids["f1"]]
    assert "marks removed" in " ".join(res.skipped.values()), res.to_dict()
    assert MARK not in tags(img) and BY not in tags(img)


def test_recycle_bin_restore_clears_the_marks(env, tmp_path, monkeypatch):
    ids = env.load(fleet(["1", "2"]))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    assert invoke(["recycle-bin", "ensure", "--retention", "7d", *env.cli_args()])[0] == 0
    run_apply(env, make_plan(env, policy(retire="{deregister: 0d, snapshots: keep}")), tmp_path)
    assert ids["f1"] not in images(env)
    code, out, err = invoke(["recycle-bin", "restore", ids["f1"], "-o", "json", *env.cli_args()])
    assert code == 0, err
    assert json.loads(out)["marks_removed"]
    assert MARK not in tags(images(env)[ids["f1"]])
    p = make_plan(env, policy(keep="{latest: 1, tags: {keep: 'x'}}"))
    assert ids["f1"] in planned(p, "mark"), "restored: decided afresh (a new mark, a new clock)"


# ---------------------------------------------------------------- finding 8


def test_a_copy_made_after_the_plan_keeps_its_source(env, tmp_path):
    text = "regions: [us-east-1, eu-west-1]\n" + fleet(["1", "2"])
    ids = env.load(text)["aliases"]
    regions = ["us-east-1", "eu-west-1"]
    p = make_plan(env, policy(), regions)
    assert planned(p, "deregister") == {ids["f1"]}
    copy = env.client("ec2", "eu-west-1").copy_image(
        SourceImageId=ids["f1"], SourceRegion="us-east-1", Name="f-1"
    )["ImageId"]
    env.client("ec2", "eu-west-1").create_tags(
        Resources=[copy], Tags=[{"Key": "family", "Value": "f"}, {"Key": "version", "Value": "1"}]
    )
    res = run_apply(env, p, tmp_path, regions=regions)
    assert ids["f1"] in images(env), res.to_dict()
    assert any("ancestor" in m for m in res.skipped.values())


# ---------------------------------------------------------------- small ones


def test_sandbox_up_regions_count_is_not_the_region_option():
    from click.testing import CliRunner

    from amictl.cli.main import cli

    res = CliRunner().invoke(cli, ["sandbox", "up", "--regions-count", "2", "--help"])
    assert res.exit_code == 0
    params = {p.name for p in cli.commands["sandbox"].commands["up"].params}  # type: ignore[attr-defined]
    assert "regions_count" in params


def test_state_without_a_file_is_refused(tmp_path):
    for url in ("sqlite:///", "sqlite://", "sqlite:///:memory:"):
        code, _, err = invoke(["--state", url, "journal"], env={"XDG_STATE_HOME": str(tmp_path)})
        assert code == 2 and "no database file" in err, (url, err)


@pytest.mark.parametrize("var", ["AMICTL_STATE"])
def test_state_env_without_a_file_is_refused(tmp_path, var):
    code, _, err = invoke(["journal"], env={var: "sqlite:///", "XDG_STATE_HOME": str(tmp_path)})
    assert code == 2, err
    assert os.environ.get(var) != "sqlite:///"


# ---------------------------------------------------------------- one-image commands (issue 21.5)


def test_single_image_commands_go_through_the_checked_path(env, tmp_path, monkeypatch):
    ids = env.load(fleet(["1", "2", "3"]) + "instances: [{alias: i, image: f1}]\n")["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    args = env.cli_args()
    code, _, err = invoke(["retire", ids["f1"], "--yes", *args])
    assert code == 3 and "in use" in err
    assert ids["f1"] in images(env)
    code, out, err = invoke(
        ["retire", ids["f2"], "--snapshots", "delete", "--yes", "-o", "json", *args]
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [r["type"] for r in rows] == ["mark", "deregister", "delete-snapshot"]
    assert ids["f2"] not in images(env)
    code, _, err = invoke(["disable", ids["f3"], "--yes", *args])
    assert code == 0, err
    assert images(env)[ids["f3"]]["State"] == "disabled"
    assert tags(images(env)[ids["f3"]])[BY] == "amictl-cli"
    code, _, err = invoke(["tag", ids["f1"], "amictl:bake-status=tested", *args])
    assert code == 2
    code, _, err = invoke(["tag", ids["f1"], "owner=team-a", *args])
    assert code == 0, err
    assert tags(images(env)[ids["f1"]])["owner"] == "team-a"
    journal = json.loads(invoke(["journal", "-o", "json"])[1])
    assert any(j.get("type") == "deregister" for j in journal)


# ---------------------------------------------------------------- AWS's second opinion (issue 20.4)


def test_a_plan_keeps_an_image_only_aws_reports_and_says_where_they_disagree(env, tmp_path):
    from amictl.cli.scan_facts import second_opinion
    from amictl.policy.facts import plan_reading_sharing

    ids = env.load(fleet(["1", "2", "3"]))["aliases"]
    env.client("ec2").create_launch_template(
        LaunchTemplateName="aws-sees-it", LaunchTemplateData={"ImageId": ids["f1"]}
    )
    conn = env.connector()
    inv = scan(conn)
    # amictl's graph misses it (as it would a kind it does not read, e.g. an Image Builder
    # recipe): only AWS's reference check knows
    inv.references = [r for r in inv.references if r.image_id != ids["f1"]]
    inv.facts_changed()
    pol = parse_policy_text(policy(), "p1.yaml")
    now = dt.datetime.now(dt.UTC)
    blind = plan(inv, pol, now)
    assert ids["f1"] in planned(blind, "deregister")

    def ask(image_ids: list[str]) -> tuple[list[Any], list[str], list[str]]:
        by_image, dis, problems = second_opinion(conn, conn.targets(), inv, image_ids)
        return [r for refs in by_image.values() for r in refs], dis, problems

    p = plan_reading_sharing(inv, pol, now, lambda *a, **k: None, second_opinion=ask)
    assert ids["f1"] not in planned(p, "deregister")
    d = {x.image_id: x for x in p.decisions}[ids["f1"]]
    assert d.verdict == "keep" and any("in use" in r for r in d.reasons), d.reasons
    assert any("AWS reference check" in w for w in p.warnings), p.warnings


def test_a_shared_image_another_account_launches_is_kept_naming_it(
    env, sandbox, tmp_path, monkeypatch
):
    from conftest import _accounts

    consumer = Env(sandbox, str(next(_accounts)))
    consumer.load("images: []\n")
    ids = env.load(fleet(["1", "2"]))["aliases"]
    ec2 = env.client("ec2")
    ec2.modify_image_attribute(
        ImageId=ids["f1"], LaunchPermission={"Add": [{"UserId": consumer.account}]}
    )
    text = policy(keep="{latest: 1, shared: false}")
    # a plan made before the other account starts using it: retired (unsafe, shared: false)
    early = make_plan(env, text)
    assert ids["f1"] in planned(early, "deregister")
    consumer.client("ec2").run_instances(
        ImageId=ids["f1"], MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    pol = tmp_path / "p1.yaml"
    pol.write_text(text)
    code, out, err = invoke(["plan", "-p", str(pol), "-o", "json", *env.cli_args()])
    assert code == 0, err
    d = {x["image_id"]: x for x in json.loads(out)["decisions"]}[ids["f1"]]
    assert d["verdict"] == "keep" and any(consumer.account in r for r in d["reasons"]), d
    # apply decides live: even with --force-unsafe, the consumer keeps it
    res = run_apply(env, early, tmp_path, force_unsafe=True)
    assert ids["f1"] in images(env), res.to_dict()
    assert any(consumer.account in m for m in res.skipped.values()), res.to_dict()


def test_deprecate_at_a_later_time_through_the_checked_path(env, tmp_path, monkeypatch):
    ids = env.load(fleet(["1", "2"]))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    code, _, err = invoke(["deprecate", ids["f1"], "--at", "yesterday", "--yes", *env.cli_args()])
    assert code == 2 and "--at" in err
    code, _, err = invoke(["deprecate", ids["f1"], "--at", "30d", "--yes", *env.cli_args()])
    assert code == 0, err
    when = images(env)[ids["f1"]]["DeprecationTime"]
    at = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    assert dt.timedelta(days=29) < at - dt.datetime.now(dt.UTC) < dt.timedelta(days=31)
