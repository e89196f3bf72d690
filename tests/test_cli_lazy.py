"""Issue 30: commands are imported when used. `amictl --help` imports no command module,
`amictl plan` none but the plan's; the index they are listed from matches the commands."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
from click.testing import CliRunner

from amictl.cli.command_index import COMMANDS


def test_the_index_lists_every_command_with_its_module_and_help() -> None:
    got: dict[str, tuple[str, str]] = {}
    for module in sorted({m for m, _h in COMMANDS.values()}):
        g = click.Group("probe")
        importlib.import_module(f"amictl.cli.{module}").register(g)
        for name, cmd in dict.items(g.commands):
            got[name] = (module, cmd.get_short_help_str(limit=10**6))
    table = "".join(f"    {n!r}: {v!r},\n" for n, v in sorted(got.items()))
    assert got == COMMANDS, "paste into src/amictl/cli/command_index.py:\n" + table


def test_lazy_help_reads_as_the_loaded_one() -> None:
    from amictl.cli.main import cli

    lazy = CliRunner().invoke(cli, ["--help"], terminal_width=100).output
    assert len(cli.commands) == len(COMMANDS)  # counting loads every module
    loaded = CliRunner().invoke(cli, ["--help"], terminal_width=100).output
    assert lazy == loaded and "plan " in lazy


PROBE = """
import sys
from amictl.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="amictl", standalone_mode=False)
except SystemExit:
    pass
print(",".join(sorted(m for m in sys.modules if m.startswith(("amictl.", "sqlalchemy", "boto3")))))
"""


def _imported(*argv: str) -> set[str]:
    out = (
        subprocess.run(
            [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return set(out.split(","))


def test_help_and_plan_import_only_what_they_need() -> None:
    mods = _imported("--help")
    assert not [
        m
        for m in mods
        if m.startswith(("amictl.cli.", "sqlalchemy", "boto3"))
        and m
        not in {
            "amictl.cli.main",
            "amictl.cli.lazy",
            "amictl.cli.command_index",
            "amictl.cli.common",
            "amictl.cli.output",
        }
    ], mods
    mods = _imported("plan", "--help")
    assert "amictl.cli.plan_cmd" in mods
    assert (
        not {
            "amictl.cli.apply_cmd",
            "amictl.apply.executor",
            "amictl.cli.report_cmd",
            "amictl.cli.bake_cmd",
        }
        & mods
    ), sorted(mods)
