"""Every command in the docs runs as written (issue 31 item 9).

The sandbox examples of README.md and docs/*.md (code blocks marked ``sandbox``, see
docs/contributing.md and tests/docs_commands.py) run in-process, in order per file, on one
demo sandbox for this module (what ``amictl sandbox up --fleet demo`` starts: the fixture
starts it, so ``sandbox up``/``sandbox down`` lines are checked, not run). Each must end with
the exit code the docs promise and never with a traceback. Every other ``amictl`` command
in the docs (illustrative: real AWS) must at least parse: its command and options exist.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.errors import AmictlError
from amictl.sandbox.control import Sandbox
from docs_commands import ROOT, DocCommand, commands, doc_files

# Sandbox examples that cannot run yet, with why; the lead trims this list as the branches
# that make them run are merged. A listed command that runs is reported (stale entry).
# Keyed by "FILE: the command as written" (no line numbers: they move).
SKIP: dict[str, str] = {}

FILES = [p for p in doc_files() if commands(p)]


def _ids(p: Path) -> str:
    return str(p.relative_to(ROOT))


@pytest.fixture(scope="module")
def demo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`amictl sandbox up --fleet demo`, on a free port, and a working directory with the
    repo's examples/ (commands write their files there, never into the repo)."""
    home = tmp_path_factory.mktemp("docs-sandbox")
    sb = Sandbox(home)
    sb.up(port=None)
    sb.load_builtin("demo")
    work = tmp_path_factory.mktemp("docs-work")
    (work / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AMICTL_"))}
    env.update(
        {
            "AMICTL_SANDBOX_HOME": str(home),
            "AMICTL_STATE": f"sqlite:///{work}/state.db",
            "XDG_STATE_HOME": str(work),
            "COLUMNS": "100",
        }
    )
    yield sb, work, env
    sb.down()


def _sandbox_subcommand(cmd: DocCommand) -> str | None:
    words = [a for a in cmd.args if not a.startswith("-")]
    return words[1] if words[:1] == ["sandbox"] and len(words) > 1 else None


def run(cmd: DocCommand, work: Path, env: dict[str, str]) -> tuple[int, str]:
    old = Path.cwd()
    os.chdir(work)
    try:
        res = CliRunner(env=env).invoke(cli, cmd.args)
    finally:
        os.chdir(old)
    code, out = res.exit_code, res.stdout + res.stderr
    if isinstance(res.exception, AmictlError):
        code, out = res.exception.exit_code, out + res.exception.message
    elif res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"{cmd.where}: {cmd.text}: traceback") from res.exception
    if cmd.stdout_to and code == 0:
        (work / cmd.stdout_to).write_text(res.stdout)
    return code, out


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_sandbox_examples_run_as_written(path: Path, demo_sandbox: Any) -> None:
    _sb, work, env = demo_sandbox
    failed, stale = [], []
    for cmd in commands(path):
        if not cmd.sandbox:
            continue
        sub = _sandbox_subcommand(cmd)
        if sub in ("up", "down"):
            assert sub == "down" or "demo" in cmd.args, f"{cmd.where}: the demo fleet"
            continue  # the fixture's own start and stop
        skip = SKIP.get(f"{cmd.file}: {cmd.text}")
        t0 = time.monotonic()
        code, out = run(cmd, work, env)
        print(f"{time.monotonic() - t0:5.1f} s  exit {code}  {cmd.where}: {cmd.text}")
        if skip is not None:
            if code == cmd.exit_code:
                stale.append(f"{cmd.where}: {cmd.text} (runs now: drop it from SKIP)")
            print(f"  skipped: {skip}")
            continue
        if code != cmd.exit_code:
            failed.append(
                f"{cmd.where}: {cmd.text}\n  exit {code}, documented {cmd.exit_code}:\n"
                f"  {out.strip()[-600:]}"
            )
    assert not failed, "\n".join(failed)
    assert not stale, "\n".join(stale)


def test_sandbox_examples_say_sandbox() -> None:
    """A sandbox example runs against the sandbox as written (``--sandbox`` or a ``sandbox``
    command), and a command with ``--sandbox`` is in a block marked ``sandbox`` (so it runs)."""
    wrong = []
    for path in doc_files():
        for cmd in commands(path):
            says = "--sandbox" in cmd.args or cmd.args[:1] == ["sandbox"]
            if cmd.sandbox and not says:
                wrong.append(f"{cmd.where}: {cmd.text}: a sandbox example without --sandbox")
            if not cmd.sandbox and "--sandbox" in cmd.args:
                wrong.append(f"{cmd.where}: {cmd.text}: --sandbox in a block not marked sandbox")
    assert not wrong, "\n".join(wrong)
    assert any(c.sandbox for p in doc_files() for c in commands(p))


def _rest(ctx: click.Context) -> list[str]:
    # a group's context keeps its command's words apart (click 8: ``_protected_args``)
    return [*getattr(ctx, "_protected_args", []), *ctx.args]


def _parse(args: list[str]) -> None:
    """Parse like click does, without running: each group's options, then its command's."""
    ctx = cli.make_context("amictl", list(args))
    group: click.Command = cli
    rest = _rest(ctx)
    while isinstance(group, click.Group) and rest:
        name, sub, rest = group.resolve_command(ctx, rest)
        assert sub is not None, name
        ctx = sub.make_context(name or "", rest, parent=ctx)
        group, rest = sub, _rest(ctx)


def test_illustrative_commands_parse() -> None:
    bad = []
    for path in doc_files():
        for cmd in commands(path):
            try:
                _parse(cmd.args)
            except click.exceptions.Exit:
                pass
            except click.ClickException as exc:
                bad.append(f"{cmd.where}: {cmd.text}: {exc.format_message()}")
    assert not bad, "\n".join(bad)


def test_the_extractor_reads_the_convention(tmp_path: Path, monkeypatch: Any) -> None:
    import docs_commands

    doc = tmp_path / "x.md"
    doc.write_text(
        "```sh sandbox\n.venv/bin/amictl --sandbox ls   # the images\n"
        "amictl --sandbox stale --strict \\\n  --days 1   # exits 1\n```\n"
        "```console\n$ amictl --profile p ls\nIMAGE  NAME\n```\n"
        "```yaml\nx: amictl ls\n```\n"
    )
    for wrong in (["ls", "--no-such-option"], ["no-such-command"], ["--sandbox", "plan", "-x"]):
        with pytest.raises(click.UsageError):
            _parse(wrong)
    _parse(["--sandbox", "--region", "all", "ls", "--unused"])
    monkeypatch.setattr(docs_commands, "ROOT", tmp_path)
    got = [(c.line, c.args, c.sandbox, c.exit_code) for c in commands(doc)]
    assert got == [
        (2, ["--sandbox", "ls"], True, 0),
        (3, ["--sandbox", "stale", "--strict", "--days", "1"], True, 1),
        (7, ["--profile", "p", "ls"], False, 0),
    ]
