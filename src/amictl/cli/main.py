"""``amictl`` entry point: the group, global options and the exit-code mapping."""

from __future__ import annotations

import os
import sys

import click
from rich.markup import escape

from .. import __version__
from ..errors import AmictlError, Interrupted
from ..interrupts import Terminate, handle_signals
from .common import drop_shadowed, err_console, global_options, settings
from .lazy import LazyGroup


def _loaded(group: click.Group, names: list[str]) -> None:
    """A command module was imported: its commands keep their own options over the global
    ones of the same name (issue 22: `share --org ARN` keeps its own --org)."""
    for name in names:
        drop_shadowed(group.commands[name])


# Every command's module is imported when the command is used, not before (cli/lazy.py:
# `amictl --help` and `amictl plan` import what they need only; command_index.py lists them).
@click.group(
    cls=LazyGroup,
    on_load=_loaded,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="amictl")
@global_options
def cli() -> None:
    """amictl: create, manage, use, update and safely retire Amazon EC2 machine images.

    Global options work before or after the sub-command. Exit codes: 0 success,
    1 error, 2 bad input, 3 refused by a safety check, 4 partial failure.
    """
    settings()


def _state_store_failed(exc: Exception) -> bool:
    """Whether ``exc`` is SQLAlchemy's (not imported here: `--help` and the commands that
    use no state store never import it)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.SQLAlchemyError)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; AmictlError becomes one clear line, a hint, and its exit code."""
    from ..memory import command_done, command_process, compact_malloc

    compact_malloc()  # before any thread starts (issue 14: peak RSS of big scans)
    if argv is None:  # the process's own command line: it runs this command and ends
        command_process()
    with handle_signals():
        code = _run(argv)
    command_done()
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    con = err_console()
    try:
        cli.main(args=argv, prog_name="amictl", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            con.print("interrupted")
            return 130
        con.print("aborted")
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError | click.BadParameter) else exc.exit_code
    except Interrupted as exc:
        con.print(f"[yellow]{exc.message}[/]", markup=True, highlight=False)
        if exc.hint:
            con.print(f"[dim]hint:[/] {exc.hint}", markup=True, highlight=False)
        if exc.result is None:
            # Read-only work stopped (inventory): its worker threads may still be sleeping
            # in retries; nothing of it is worth waiting for, and nothing was written.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.exit_code)
        return exc.exit_code
    except AmictlError as exc:
        con.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
        if exc.hint:
            con.print(f"[dim]hint:[/] {exc.hint}", markup=True, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        con.print("interrupted")
        return 130
    except Terminate:
        con.print("terminated")
        return 143
    except Exception as exc:
        if not _state_store_failed(exc):
            raise
        # the state store failed mid-command (its server went away)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        con.print(f"[bold red]error:[/] the state store failed: {escape(reason)}", highlight=False)
        con.print(
            "[dim]hint:[/] check it with `amictl state info`; see docs/team.md", highlight=False
        )
        return 1
    return 0


if __name__ == "__main__":
    main()
