"""Every command has help and is documented; exit codes map as cli.md says."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from amictl.cli.main import cli

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(all_commands(cmd, full + " "))
    return out


@pytest.mark.parametrize("name,cmd", all_commands(cli))
def test_every_command_has_help_and_docs(name, cmd):
    res = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert res.exit_code == 0, res.output
    assert (cmd.help or "").strip(), f"{name} has no help text"
    assert f"`amictl {name}" in DOCS.read_text(), f"{name} is not documented in docs/cli.md"


def test_version():
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and "0.1.0" in res.output


def test_global_options_after_the_subcommand():
    res = CliRunner().invoke(cli, ["sandbox", "status", "-o", "json", "--no-progress", "-v"])
    assert res.exit_code == 0, res.output


def test_usage_error_exit_2():
    from amictl.cli import main as climain

    with pytest.raises(SystemExit) as e:
        climain.main(["ls", "--no-such-option"])
    assert e.value.code == 2


def test_iam_policy_is_generated_from_the_registries():
    import json

    from amictl.apply.actions import EXECUTORS
    from amictl.inventory.kinds import COLLECTORS

    res = CliRunner().invoke(cli, ["iam-policy", "apply"])
    doc = json.loads(res.stdout)
    actions = {a for st in doc["Statement"] for a in st["Action"]}
    for spec in [*COLLECTORS.values(), *EXECUTORS.values()]:
        assert set(spec.permissions) <= actions
    res = CliRunner().invoke(cli, ["iam-policy", "plan"])
    actions = {a for st in json.loads(res.stdout)["Statement"] for a in st["Action"]}
    assert "ec2:DeregisterImage" not in actions and "ec2:DescribeImages" in actions
