"""The one way a command asks before it changes anything (issue 31).

Without ``--yes`` and without a terminal to ask on, every command that asks stops the same
way: :class:`amictl.errors.NeedsConfirmation`, exit 2, naming what it would have done and
``--yes``. tests/test_cli_text.py walks every command that asks and checks the code; a
``click.confirm`` outside this module fails that test.
"""

from __future__ import annotations

import sys

import click

from ..errors import NeedsConfirmation


def needs_terminal(doing: str, hint: str = "review what it will do, then pass --yes") -> None:
    """Refuse (exit 2) when there is no terminal to ask on: ``refusing to DOING without
    confirmation``."""
    if not sys.stdin.isatty():
        raise NeedsConfirmation(
            f"refusing to {doing} without confirmation: no terminal to ask on", hint=hint
        )


def ask(
    yes: bool, question: str, doing: str, hint: str = "review what it will do, then pass --yes"
) -> None:
    """Go on when ``--yes`` was given or the user says yes; stop (exit 2) without a terminal,
    abort (exit 1) when the user says no."""
    if yes:
        return
    needs_terminal(doing, hint)
    click.confirm(question, abort=True, err=True)
