"""Issue 31, items 3-7: refusals name their way out, whose it is, one exit code for "needs
confirmation, no terminal", text, and columns at 80. One small fleet per test; the outcome
is checked in the sandbox's own state, not only in what amictl prints."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from amictl.apply.single import way_out
from amictl.cli.common import print_table, with_folded
from amictl.cli.main import cli
from amictl.cli.output import cell, fit_columns, label
from amictl.errors import CONFIRMATION_EXIT, InputError, Interrupted, SafetyError
from cli_fleet import CliFleet

ROOT = Path(__file__).resolve().parents[1]
FLEET = """
images:
  - {alias: base, name: base-1, age_days: 200, tags: {family: base, version: "1"},
     snapshots: [{size_gib: 8}]}
  - {alias: child, name: svc-1, age_days: 30, source: base, tags: {family: svc, version: "1"},
     snapshots: [{size_gib: 8}]}
  - {alias: lone, name: lone-1, age_days: 100, tags: {family: lone, version: "1", owner: ops},
     snapshots: [{size_gib: 4}]}
  - {alias: web-1, name: web-1.0.0, age_days: 60, tags: {family: web, version: "1.0.0"}}
  - {alias: web-2, name: web-1.1.0, age_days: 5, tags: {family: web, version: "1.1.0"}}
  - {alias: untagged, name: app-2.0.0, tags: {owner: ops}}
  - {alias: al2023, name: al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64, owner: "137112412989",
     owner_alias: amazon, public: true}
launch_templates:
  - {alias: lt-a, name: web-a, versions: [{image: web-1}], tags: {"amictl:family": web}}
auto_scaling_groups:
  - {alias: asg-a, name: web-a, launch_template: lt-a, version: "1", desired: 2}
instances:
  - {alias: stray, image: al2023, state: running}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: web-2}
"""
POLICY = """
format: 1
rules:
  - name: lone
    select: {families: [lone]}
    retire: {deprecate: 0d}
"""

from test_lint import CONVENTIONS  # noqa: E402


@pytest.fixture
def fleet(sandbox: Any, tmp_path: Path) -> CliFleet:
    return CliFleet(sandbox, FLEET, tmp_path, regions="us-east-1")


def image(f: CliFleet, alias: str) -> dict[str, Any]:
    got = f.env.client("ec2").describe_images(
        ImageIds=[f.ids[alias]], IncludeDeprecated=True, IncludeDisabled=True
    )["Images"]
    return dict(got[0]) if got else {}


# ---- item 5: one exit code for "needs confirmation, no terminal" -------------------------


# Every command that asks, as run without a terminal and without --yes (the keys are the
# command paths; a new command with --yes must be added here).
def _asking(f: CliFleet) -> dict[str, list[str]]:
    policy = f.tmp / "policy.yaml"
    policy.write_text(POLICY)
    conventions = f.tmp / "conventions.yaml"
    conventions.write_text(CONVENTIONS)
    return {
        "apply": ["apply", "-p", str(policy)],
        "deprecate": ["deprecate", f.ids["lone"]],
        "disable": ["disable", f.ids["lone"]],
        "retire": ["retire", f.ids["lone"], "--snapshots", "delete"],
        "rollout": ["rollout", "web", "--channel", "prod", "--canary-wait", "0"],
        "allowed-images set": ["allowed-images", "set", "--from-channels", "--mode", "audit-mode"],
        "lint": ["lint", "--fix", "--conventions", str(conventions)],
        "bake": ["bake", "setup"],
        "share": ["share", f.ids["lone"], "--public"],
        "revoke": ["revoke", "lone@1", "--reason", "test"],
    }


def _commands_with_yes(group: click.Group, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out |= _commands_with_yes(cmd, f"{prefix}{name} ")
        elif any(p.name == "yes" for p in cmd.params):
            out.add(f"{prefix}{name}")
    return out


def test_every_command_that_asks_exits_the_same_without_a_terminal(fleet: CliFleet) -> None:
    asking = _asking(fleet)
    assert _commands_with_yes(cli) == {*asking, "unrevoke"}  # unrevoke: below
    assert CONFIRMATION_EXIT == 2
    errs = {}
    for path, args in asking.items():
        code, out, errs[path] = fleet(*args)
        assert code == CONFIRMATION_EXIT, (path, out, errs[path])
        assert "confirmation" in errs[path], (path, errs[path])
    # nothing changed in AWS
    lone = image(fleet, "lone")
    assert lone["State"] == "available" and "DeprecationTime" not in lone
    asg = fleet.env.client("autoscaling")
    assert not asg.describe_instance_refreshes(AutoScalingGroupName="web-a")["InstanceRefreshes"]
    ec2 = fleet.env.client("ec2")
    assert ec2.get_allowed_images_settings()["State"] == "disabled"
    tags = {t["Key"] for t in image(fleet, "untagged").get("Tags", [])}
    assert "family" not in tags
    perms = ec2.describe_image_attribute(ImageId=fleet.ids["lone"], Attribute="launchPermission")
    assert not perms["LaunchPermissions"]
    # item 6: retire --snapshots delete without a Recycle Bin rule says what it costs
    assert "NOT recoverable" in errs["retire"]
    # unrevoke asks too (after a revocation to undo)
    code, out, err = fleet("revoke", "lone@1", "--reason", "test", "--yes")
    assert code == 0, out + err
    code, _, err = fleet("unrevoke")
    assert code == CONFIRMATION_EXIT and "confirmation" in err, err


def test_only_the_confirm_module_asks() -> None:
    """A command that asks some other way would escape the one exit code."""
    for path in (ROOT / "src/amictl").rglob("*.py"):
        text = path.read_text()
        if path.name != "confirm.py":
            assert "click.confirm(" not in text, path
            assert "no terminal to ask on" not in text, path


# ---- item 3: refusals name their way out -------------------------------------------------


def test_deprecating_an_ancestor_is_allowed_disabling_it_names_the_way_out(
    fleet: CliFleet,
) -> None:
    base = fleet.ids["base"]
    res = CliRunner().invoke(cli, ["disable", base, "--yes", *fleet.env.cli_args(),
                                   "--region", "us-east-1"], env=fleet.vars)  # fmt: skip
    exc = res.exception
    assert isinstance(exc, SafetyError) and "ancestor of kept image" in exc.message, res.output
    assert image(fleet, "base")["State"] == "available"
    # the refusal names the way out: deprecating it is allowed
    assert f"amictl deprecate {base}" in (exc.hint or "")
    code, out, err = fleet("deprecate", base, "--at", "30d", "--yes")
    assert code == 0, out + err
    got = image(fleet, "base")
    assert got["State"] == "available" and got.get("DeprecationTime")
    # ... but an image something launches is still refused, naming what to do
    code, out, err = fleet("deprecate", fleet.ids["web-1"], "--yes")
    assert code == 3 and "in use" in err, out + err
    assert "DeprecationTime" not in image(fleet, "web-1")


def test_way_out_fills_in_the_family_and_channel() -> None:
    hint = way_out("ami-1", "disable", ["channel: channel prod of family web (/amictl/...)"])
    assert "amictl promote web VERSION --channel prod" in hint and "FAMILY" not in hint
    assert "deprecate" in way_out("ami-1", "disable", ["ancestor of kept image(s): ami-2"])


def test_launch_not_found_says_allowed_amis_hides_images(fleet: CliFleet) -> None:
    missing = "ami-0123456789abcdef0"
    code, _, err = fleet("launch", missing, "--type", "t3.micro")
    assert code == 1 and "not found" in err
    res = CliRunner().invoke(cli, ["launch", missing, "--type", "t3.micro", *fleet.env.cli_args(),
                                   "--region", "us-east-1"], env=fleet.vars)  # fmt: skip
    assert res.exception.hint is None  # type: ignore[union-attr]
    ec2 = fleet.env.client("ec2")
    ec2.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[{"ImageProviders": ["amazon"]}]
    )
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="enabled")
    res = CliRunner().invoke(cli, ["launch", missing, "--type", "t3.micro", *fleet.env.cli_args(),
                                   "--region", "us-east-1"], env=fleet.vars)  # fmt: skip
    assert "Allowed AMIs is enabled" in (res.exception.hint or "")  # type: ignore[union-attr]


# ---- item 6: text -------------------------------------------------------------------------


def test_drift_hint_and_title_name_the_family_and_channel(fleet: CliFleet) -> None:
    res = CliRunner().invoke(cli, ["drift", "--strict", "0", *fleet.env.cli_args(),
                                   "--region", "us-east-1"], env=fleet.vars)  # fmt: skip
    exc = res.exception
    assert "1 version behind" in exc.message, exc  # type: ignore[union-attr]
    assert "amictl rollout web --channel prod" in exc.hint  # type: ignore[union-attr]
    assert re.search(r"1 channel checked", res.stdout) and "1 channels" not in res.stdout


def test_rollout_ctrl_c_names_resume(fleet: CliFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    from amictl import rollout

    def stop(*_a: Any, **_k: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rollout, "execute", stop)
    res = CliRunner().invoke(cli, ["rollout", "web", "--channel", "prod", "--yes",
                                   *fleet.env.cli_args(), "--region", "us-east-1"],
                             env=fleet.vars)  # fmt: skip
    assert isinstance(res.exception, Interrupted) and res.exception.exit_code == 130
    rid = re.search(r"rollout (\S+) stopped", res.exception.message)[1]  # type: ignore[index]
    assert f"amictl rollout --resume {rid}" in (res.exception.hint or "")


def test_text_fixes_without_a_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    # the complete column says no, cost headers are words
    assert cell(False, "complete") == "no" and cell(True, "complete") == "yes"
    assert label("estimate_usd") == "estimate $/month"
    assert label("standard_gib") == "standard GiB"
    # no doubled parentheses, no value said twice
    assert with_folded("1 behind (2 channels checked)", {"family": "web"}) == (
        "1 behind (2 channels checked; family web)"
    )
    assert with_folded("rollout r1: rolled-back", {"status": "rolled back"}) == (
        "rollout r1: rolled-back"
    )
    # no doubled prefix
    from amictl.aws.org import parse_shard

    with pytest.raises(InputError) as exc:
        parse_shard("7")
    assert "--shard: --shard" not in exc.value.message and exc.value.message.count("--shard") == 1


def test_incomplete_kind_is_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    from amictl.cli.scan_facts import say_incomplete
    from amictl.model import Inventory

    class Slice:
        account, region, kind = "123456789012", "us-east-1", "ssm-parameters"
        error_code = "AccessDeniedException"
        error = "ssm-parameters in us-east-1: AccessDeniedException: not authorized"

    inv = Inventory()
    inv.incomplete_slices = lambda: [Slice()]  # type: ignore[method-assign]
    say_incomplete(inv)
    err = capsys.readouterr().err
    assert err.count("AccessDeniedException") == 1 and err.count("ssm-parameters") == 1, err
    assert "not authorized" in err


def test_explain_indents_continuation_lines(fleet: CliFleet) -> None:
    policy = fleet.tmp / "p.yaml"
    policy.write_text(POLICY.replace("[lone]", "[base]"))
    code, out, err = fleet("explain", fleet.ids["base"], "-p", str(policy), COLUMNS="50")
    assert code == 0, err
    body = out.splitlines()[2:]
    assert any(line.startswith("    ") for line in body), out  # a wrapped reason
    assert all(line.startswith(" ") or re.match(r"^(keep conditions|verdict)", line)
               for line in body if line), out  # fmt: skip
    assert max(len(line) for line in out.splitlines()[1:]) <= 50 or fleet.ids["child"] in out


def test_an_arn_in_prose_is_never_broken(capsys: pytest.CaptureFixture[str]) -> None:
    arn = "arn:aws:ec2:us-east-1:123456789012:launch-template/lt-0123456789abcdef0"
    rows = [{"kind": "launch-template", "id": "lt-0123456789abcdef0", "detail": f"names {arn}"}]
    with click.Context(cli):
        print_table(rows, ["kind", "id", "detail"], width=80, keep=["kind", "id", "detail"])
    out = capsys.readouterr().out
    assert arn in out, out
    # one record per block: an ARN longer than beside its label is whole on a line of its own
    from amictl.cli.output import record_lines

    ssm = "arn:aws:ssm:us-east-1:123456789012:parameter/amictl/channels/web-server/prod"
    lines = record_lines("id", ssm, 6, 80)
    assert ssm in lines and all(len(line) <= 80 for line in lines), lines


# ---- item 7: columns ----------------------------------------------------------------------


def test_empty_columns_go_first_key_columns_never() -> None:
    cols = ["account", "region", "instance_id", "name", "image_id", "image_name", "reason"]
    cells = {
        "account": ["123456789012"],
        "region": ["us-east-1"],
        "instance_id": ["i-0123456789abcdef0"],
        "name": [""],
        "image_id": ["ami-0123456789abcdef0"],
        "image_name": ["al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64"],
        "reason": ["not allowed"],
    }
    keep = ["account", "region", "instance_id", "image_id", "reason"]
    fit = fit_columns(cols, cells, 90, keep=keep)
    assert "name" in fit.empty and "reason" in fit.columns and not fit.records
    # one row: an empty column goes even without a declaration
    assert "name" not in fit_columns(cols, cells, 100).columns


def test_listings_at_80_columns(fleet: CliFleet) -> None:
    code, out, err = fleet("allowed-images", "set", "--from-channels", "--mode", "audit-mode",
                           "--yes", COLUMNS="80")  # fmt: skip
    assert code == 0, out + err
    code, out, err = fleet("allowed-images", "status", COLUMNS="80")
    assert code == 0, err
    assert fleet.ids["stray"] in out and "reason" in out, out
    assert not re.search(r"┃\s*name\s*┃", out), out  # the always-empty name column went
    assert max(len(line) for line in out.splitlines()) <= 80
    for v in ("1.0.0", "1.1.0"):
        code, out, err = fleet("promote", "web", v, "--channel", "staging")
        assert code == 0, out + err
    code, out, err = fleet("channels", "history", "web", COLUMNS="80")
    assert code == 0, err
    heads = {c.strip() for line in out.splitlines() if line.startswith("┃")
             for c in line.strip("┃").split("┃")}  # fmt: skip
    # the time: a column, a record label, or said once in the title when every row has the
    # same (promotions within one second)
    assert "at" in heads or re.search(r"^at\s|[(,] at \d{4}-", out, re.M), out
    assert max(len(line) for line in out.splitlines()) <= 80
    # the rollout's result keeps no empty column (no --wait: groups just started)
    code, out, err = fleet("rollout", "web", "--channel", "prod", "--canary-wait", "0",
                           "--poll", "0", "--yes", COLUMNS="80")  # fmt: skip
    assert code == 0, out + err
    result = out.split("rollout ")[-1]
    heads = [c.strip() for line in result.splitlines() if line.startswith("┃")
             for c in line.strip("┃").split("┃")]  # fmt: skip
    data = json.loads(fleet("rollout", "list", "-o", "json")[1])
    assert data and heads[:2] == ["asg", "status"], out
    assert "reason" not in heads, out  # empty in every group


def test_usage_says_the_report_time_in_the_one_format(
    fleet: CliFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt
    from types import SimpleNamespace

    from amictl.cli import governance_cmd

    created = dt.datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=dt.UTC)
    monkeypatch.setattr(governance_cmd, "find_image", lambda *_a: SimpleNamespace(target=None))
    monkeypatch.setattr(
        governance_cmd.usage,
        "usage_report",
        lambda *_a, **_k: {"report_id": "r-1", "reused": True, "created": created,
                           "region": "us-east-1", "consumers": {}},
    )  # fmt: skip
    code, _, err = fleet("usage", fleet.ids["lone"])
    assert code == 0, err
    assert "created 2026-11-26T10:00:00Z)" in err, err
