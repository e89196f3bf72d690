"""Versions and release channels: versions, promote (gates), rollback, channels, and the planner."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from amictl import channels
from amictl.cli.main import cli
from amictl.errors import AmictlError
from amictl.state.store import Store

PARAM = "/amictl/channels/web/prod"

POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env, self.tmp = env, tmp_path
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """(exit code as amictl.cli.main maps it, stdout, error message)."""
        res = CliRunner().invoke(cli, [*args, *self.env.cli_args()])
        code, message = res.exit_code, ""
        if isinstance(res.exception, AmictlError):
            code, message = res.exception.exit_code, res.exception.message
        elif res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        return code, res.stdout, message

    def json(self, *args: str):
        code, out, msg = self(*args, "-o", "json")
        assert code == 0, msg
        return json.loads(out)


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def web(*versions: str, extra: str = "", age: int = 200) -> str:
    return "images:\n" + "".join(
        f"  - {{alias: web{v.replace('.', '_')}, age_days: {age - n}, "
        f"tags: {{family: web, version: '{v}'}}{extra}}}\n"
        for n, v in enumerate(versions)
    )


def param(env, name: str = PARAM, region: str = "us-east-1") -> dict:
    return env.client("ssm", region).get_parameter(Name=name)["Parameter"]


def test_promote_writes_the_channel_and_channels_lists_it(env, run):
    ids = env.load(web("1", "2"))["aliases"]
    rows = run.json("promote", "web", "2", "--channel", "prod")
    assert [(r["region"], r["image_id"], r["status"]) for r in rows] == [
        ("us-east-1", ids["web2"], "promoted")
    ]
    p = param(env)
    assert (p["Value"], p["Type"], p["DataType"]) == (ids["web2"], "String", "aws:ec2:image")
    # promoting the same version again changes nothing
    assert run.json("promote", "web", "2", "--channel", "prod")[0]["status"] == "unchanged"
    assert param(env)["Version"] == p["Version"]
    run.json("promote", "web", "1", "--channel", "staging")
    listed = run.json("channels")
    assert [(r["family"], r["channel"], r["image_id"], r["version"]) for r in listed] == [
        ("web", "prod", ids["web2"], "2"),
        ("web", "staging", ids["web1"], "1"),
    ]
    assert all(r["updated_at"] and r["region"] == "us-east-1" for r in listed)
    assert run.json("channels", "other") == []
    recorded = channels.history(Store(os.environ["AMICTL_STATE"]), "web")
    assert [(r["action"], r["channel"], r["image_id"]) for r in recorded] == [
        ("promote", "prod", ids["web2"]),
        ("promote", "staging", ids["web1"]),
    ]


def test_versions_in_semantic_order_with_copies_in_two_regions_as_one_row(env, run):
    ids = env.load(
        "regions: [us-east-1, eu-west-1]\n"
        "images:\n"
        "  - {alias: a10, age_days: 5, tags: {family: web, version: '1.10'}}\n"
        "  - {alias: b10, age_days: 4, region: eu-west-1, tags: {family: web, version: '1.10'}}\n"
        "  - {alias: a9, age_days: 50, tags: {family: web, version: '1.9'}, snapshots: [{size_gib: 30}]}\n"
        "  - {alias: a2, age_days: 90, tags: {family: web, version: '1.2'}, deprecated_days_ago: 3}\n"
        "  - {alias: b2, age_days: 80, region: eu-west-1, tags: {family: web, version: '1.2'}}\n"
        "  - {alias: other, age_days: 1, tags: {family: db, version: '7'}}\n"
    )["aliases"]
    both = ("--region", "us-east-1,eu-west-1")
    promoted = run.json("promote", "web", "1.10", "--channel", "prod", *both)
    assert {(r["region"], r["image_id"]) for r in promoted} == {
        ("us-east-1", ids["a10"]),
        ("eu-west-1", ids["b10"]),
    }
    run.json("promote", "web", "1.9", "--channel", "beta", "--region", "us-east-1")
    rows = run.json("versions", "web", *both)
    assert [r["version"] for r in rows] == ["1.2", "1.9", "1.10"]
    v2, v9, v10 = rows
    assert v10["regions"] == ["eu-west-1", "us-east-1"]
    assert set(v10["image_ids"]) == {ids["a10"], ids["b10"]}
    assert v10["channels"] == ["prod"]
    assert v9["channels"] == ["beta"] and v9["regions"] == ["us-east-1"]
    assert v9["size_gib"] == 30 and v9["monthly_cost_usd"] > v10["monthly_cost_usd"] / 2
    assert v10["monthly_cost_usd"] > 0 and v10["age_days"] == 5
    assert v2["deprecated"] is True and v2["deprecation_time"]
    assert v2["age_days"] == 90 and v10["state"] == "available"
    # a version missing in one of the regions is refused, nothing written
    code, _, msg = run("promote", "web", "1.9", "--channel", "prod", *both)
    assert code == 3 and "missing in" in msg and "eu-west-1" in msg
    assert param(env)["Value"] == ids["a10"]
    code, out, _ = run("versions", "web", *both)  # the table form too
    assert code == 0 and "1.10" in out


@pytest.mark.parametrize(
    "attrs,word", [("deprecated_days_ago: 2", "deprecated"), ("disabled: true", "disabled")]
)
def test_promote_refuses_a_deprecated_or_disabled_image(env, run, attrs, word):
    ids = env.load(
        web("1") + f"  - {{alias: bad, tags: {{family: web, version: '2'}}, {attrs}}}\n"
    )["aliases"]
    code, _, msg = run("promote", "web", "2", "--channel", "prod")
    assert code == 3, msg
    assert word in msg and ids["bad"] in msg
    with pytest.raises(env.client("ssm").exceptions.ParameterNotFound):
        param(env)
    code, _, msg = run("promote", "web", "3", "--channel", "prod")
    assert code == 3 and "missing" in msg


def test_a_closed_gate_refuses_and_names_the_gate(env, run, tmp_path):
    ids = env.load(web("1", "2"))["aliases"]
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        "channels:\n"
        "  prod:\n"
        "    requires_channel: staging\n"
        "    min_days_in: 3d\n"
        "    requires_tag: {amictl:tested: passed}\n"
        "  beta:\n"
        "    requires_channel: staging\n"
    )
    code, _, msg = run("promote", "web", "2", "--channel", "prod", "--gates", str(gates))
    assert code == 3
    assert "gate prod" in msg and "requires_channel staging" in msg
    assert "requires_tag amictl:tested=passed" in msg
    run.json("promote", "web", "2", "--channel", "staging", "--gates", str(gates))
    env.client("ec2").create_tags(
        Resources=[ids["web2"]], Tags=[{"Key": "amictl:tested", "Value": "passed"}]
    )
    code, _, msg = run("promote", "web", "2", "--channel", "prod", "--gates", str(gates))
    assert code == 3 and "gate prod" in msg and "min_days_in 3d" in msg, msg
    assert "requires_tag" not in msg and "never been" not in msg
    with pytest.raises(env.client("ssm").exceptions.ParameterNotFound):
        param(env)
    # an open gate: beta only needs the version to have been in staging
    run.json("promote", "web", "2", "--channel", "beta", "--gates", str(gates))
    code, _, msg = run("promote", "web", "1", "--channel", "beta", "--gates", str(gates))
    assert code == 3 and "gate beta" in msg and "never been in channel staging" in msg


def test_gate_meets_min_days_in_from_the_parameter_history():
    import datetime as dt

    from amictl.channels.gates import Gate, closed_reasons
    from amictl.model import Image

    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    img = Image("ami-1", "111111111111", "us-east-1")
    gate = Gate("prod", requires_channel="staging", min_days_in=dt.timedelta(days=3))
    hist = [
        {"value": "ami-1", "modified": now - dt.timedelta(days=10)},
        {"value": "ami-2", "modified": now - dt.timedelta(days=9)},
        {"value": "ami-1", "modified": now - dt.timedelta(days=4)},
    ]
    assert closed_reasons(gate, img, hist, now) == []
    assert closed_reasons(gate, img, hist[:2], now)  # one day only
    assert closed_reasons(gate, img, None, now)


def test_bad_gates_file_is_exit_2_with_file_and_line(env, run, tmp_path):
    env.load(web("1"))
    gates = tmp_path / "gates.yaml"
    gates.write_text("channels:\n  prod:\n    min_days_in: 3d\n    requires_tg: {a: b}\n")
    code, _, msg = run("promote", "web", "1", "--channel", "prod", "--gates", str(gates))
    assert code == 2 and f"{gates}:4" in msg and "requires_tg" in msg
    gates.write_text("channels:\n  prod:\n    requires_channel: staging\n    min_days_in: soon\n")
    code, _, msg = run("promote", "web", "1", "--channel", "prod", "--gates", str(gates))
    assert code == 2 and f"{gates}:4" in msg and "min_days_in" in msg
    code, _, msg = run("promote", "web", "1", "--channel", "pr/od")
    assert code == 2


def test_rollback_sets_the_previous_image_back(env, run):
    ids = env.load(web("1", "2", "3"))["aliases"]
    code, _, msg = run("rollback", "web", "--channel", "prod")
    assert code == 1 and "does not exist" in msg
    run.json("promote", "web", "1", "--channel", "prod")
    code, _, msg = run("rollback", "web", "--channel", "prod")
    assert code == 3 and "no earlier release" in msg
    run.json("promote", "web", "2", "--channel", "prod")
    run.json("promote", "web", "2", "--channel", "prod")  # unchanged: not a new value
    rows = run.json("rollback", "web", "--channel", "prod")
    assert [(r["image_id"], r["previous_image_id"], r["version"]) for r in rows] == [
        (ids["web1"], ids["web2"], "1")
    ]
    assert param(env)["Value"] == ids["web1"]
    recorded = channels.history(Store(os.environ["AMICTL_STATE"]), "web")
    assert recorded[-1]["action"] == "rollback" and recorded[-1]["image_id"] == ids["web1"]
    # the image to go back to is disabled, then gone: refused, the channel is left alone
    run.json("promote", "web", "3", "--channel", "prod")
    ec2 = env.client("ec2")
    ec2.disable_image(ImageId=ids["web1"])  # previous differs: web3 <- web1
    code, _, msg = run("rollback", "web", "--channel", "prod")
    assert code == 3 and "disabled" in msg and ids["web1"] in msg
    assert param(env)["Value"] == ids["web3"]
    ec2.enable_image(ImageId=ids["web1"])
    ec2.deregister_image(ImageId=ids["web1"])
    code, _, msg = run("rollback", "web", "--channel", "prod")
    assert code == 3 and "gone" in msg
    assert param(env)["Value"] == ids["web3"]


def test_launch_template_following_a_channel_keeps_its_image_and_rollback_moves_it(env, run):
    ids = env.load(web("1", "2", "3"))["aliases"]
    run.json("promote", "web", "1", "--channel", "prod")
    run.json("promote", "web", "2", "--channel", "prod")
    env.client("ec2").create_launch_template(
        LaunchTemplateName="follows-prod", LaunchTemplateData={"ImageId": f"resolve:ssm:{PARAM}"}
    )
    refs = run.json("refs", ids["web2"])
    assert {"kind": "channel", "id": PARAM, "detail": f"channel prod of family web ({PARAM})"} in [
        {k: r[k] for k in ("kind", "id", "detail")} for r in refs
    ]
    assert any(r["kind"] == "launch-template-version" for r in refs)
    (run.tmp / "policy.yaml").write_text(POLICY)

    def verdicts() -> dict[str, dict]:
        p = run.json("plan", "-p", str(run.tmp / "policy.yaml"))
        return {d["image_id"]: d for d in p["decisions"]}

    d = verdicts()
    assert d[ids["web2"]]["verdict"] == "keep"
    assert any("channel" in x for x in d[ids["web2"]]["reasons"]), d[ids["web2"]]
    # web1 is the channel's previous release: a rollback needs it (keep.channel_history 1)
    assert d[ids["web1"]]["verdict"] == "keep"
    assert any("channel history" in x for x in d[ids["web1"]]["reasons"]), d[ids["web1"]]
    assert d[ids["web3"]]["verdict"] == "keep"  # the newest

    run.json("rollback", "web", "--channel", "prod")
    d = verdicts()
    assert d[ids["web1"]]["verdict"] == "keep"
    assert d[ids["web2"]]["verdict"] == "deregister"
    ls = {r["image_id"]: r for r in run.json("ls", "--family", "web")}
    assert ls[ids["web1"]]["channels"] == [PARAM] and ls[ids["web2"]]["channels"] == []


def test_iam_policy_covers_the_channel_commands():
    res = CliRunner().invoke(cli, ["iam-policy", "promote", "rollback", "channels", "versions"])
    assert res.exit_code == 0, res.output
    actions = {a for st in json.loads(res.stdout)["Statement"] for a in st["Action"]}
    assert {"ssm:PutParameter", "ssm:GetParameterHistory", "ec2:DescribeImages"} <= actions
    assert "ssm:DescribeParameters" in actions
    res = CliRunner().invoke(cli, ["iam-policy", "channels"])
    actions = {a for st in json.loads(res.stdout)["Statement"] for a in st["Action"]}
    assert "ssm:PutParameter" not in actions
