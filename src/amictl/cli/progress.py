"""The progress bar of a long scan, on stderr when it is a terminal (``--no-progress``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .common import err_console, progress_enabled


@contextmanager
def scan_progress(label: str) -> Iterator[Any]:
    if not progress_enabled():
        yield None
        return
    # imported only when a bar is drawn (issue 30: not by a plan in a pipe or a cron job)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as prog:
        task = prog.add_task("", total=None)

        def cb(what: str, done: int, total: int) -> None:
            prog.update(task, completed=done, total=total, description=what)

        yield cb
