"""A click group that imports a command's module only when the command is used (issue 30).

Importing every command module (boto3, SQLAlchemy, the apply executor, the report's
templates, ...) cost most of a short command's time. ``LazyGroup`` knows each command's
module and help line from ``command_index.COMMANDS``: ``--help`` lists them from the
table; running (or looking up) a command imports its module and registers that module's
commands; anything that walks every command (``group.commands.items()``) loads them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import click

from ..memory import gc_paused, imports_done
from .command_index import COMMANDS


class LazyCommands(dict[str, click.Command]):
    """``Group.commands`` that loads a command's module on first lookup by name, and every
    module when iterated or counted."""

    def __init__(self, index: dict[str, tuple[str, str]], load: Callable[[str], None]) -> None:
        super().__init__()
        self.index = index
        self._load = load
        self._loaded: set[str] = set()

    def _ensure(self, name: object) -> None:
        if isinstance(name, str) and not dict.__contains__(self, name):
            module = self.index.get(name, (None, ""))[0]
            if module is not None and module not in self._loaded:
                self._loaded.add(module)
                self._load(module)

    def _ensure_all(self) -> None:
        for name in list(self.index):
            self._ensure(name)

    def loaded(self, name: str) -> click.Command | None:
        """The command if its module is imported already; never imports."""
        return dict.get(self, name)

    def __getitem__(self, name: str) -> click.Command:
        self._ensure(name)
        return dict.__getitem__(self, name)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        self._ensure(name)
        return dict.get(self, name, default)

    def __contains__(self, name: object) -> bool:
        self._ensure(name)
        return dict.__contains__(self, name)

    def __iter__(self) -> Iterator[str]:
        self._ensure_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._ensure_all()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._ensure_all()
        return dict.keys(self)

    def values(self) -> Any:
        self._ensure_all()
        return dict.values(self)

    def items(self) -> Any:
        self._ensure_all()
        return dict.items(self)

    def pop(self, name: str, *default: Any) -> Any:
        self._ensure(name)
        return dict.pop(self, name, *default)


class LazyGroup(click.Group):
    """The top-level group: commands from ``command_index.COMMANDS``, imported on use.
    ``on_load(group, names)`` runs after a module registered ``names``."""

    def __init__(
        self, *args: Any, on_load: Callable[[click.Group, list[str]], None] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.on_load = on_load
        self.lazy = LazyCommands(COMMANDS, self._load_module)
        self.commands = self.lazy

    def _load_module(self, module: str) -> None:
        before = set(dict.keys(self.lazy))
        with gc_paused():  # a command's imports make no garbage (issue 30: 60 ms of a plan)
            importlib.import_module(f"{__package__}.{module}").register(self)
        imports_done()
        added = sorted(set(dict.keys(self.lazy)) - before)
        if self.on_load is not None:
            self.on_load(self, added)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy.index, *dict.keys(self.lazy)})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with the help line of a command not imported taken from the index."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.lazy.loaded(name)
            if cmd is None:
                cmd = click.Command(name, help=self.lazy.index[name][1])
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])
