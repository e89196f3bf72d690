"""Global options (accepted before or after the sub-command), output and errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import yaml
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .output import (
    PROSE,
    cell,
    fit_columns,
    json_default,
    label,
    normalize_times,
    record_label_width,
    record_lines,
    terminal_width,
    text_width,
    width_known,
)

F = TypeVar("F", bound=Callable[..., Any])
OUTPUTS = ("table", "json", "csv", "yaml")


@dataclass
class Settings:
    profile: str | None = None
    regions: list[str] = field(default_factory=list)
    endpoint_url: str | None = None
    sandbox: bool = False
    role_arns: list[str] = field(default_factory=list)
    accounts_file: str | None = None
    org: str | None = None
    state: str | None = None
    output: str = "table"
    progress: bool = True
    verbosity: int = 0

    @classmethod
    def from_env(cls) -> Settings:
        s = cls()
        s.profile = os.environ.get("AWS_PROFILE")
        s.endpoint_url = os.environ.get("AWS_ENDPOINT_URL")
        s.state = os.environ.get("AMICTL_STATE")
        out = os.environ.get("AMICTL_OUTPUT")
        if out in OUTPUTS:
            s.output = out
        return s


def settings() -> Settings:
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings.from_env()
    return root.obj


def _split_regions(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(r.strip() for r in v.split(",") if r.strip())
    return out


def _store(
    attr: str, convert: Callable[[Any], Any] | None = None
) -> Callable[[click.Context, click.Parameter, Any], None]:
    def cb(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value == () or value is False and attr not in ("progress",):
            return
        s = settings()
        if attr == "verbosity":
            s.verbosity += value
            return
        setattr(s, attr, convert(value) if convert else value)

    return cb


GLOBAL_HELP_LINE = "Global options: see `amictl --help`"


class GlobalOption(click.Option):
    """A global option: listed once, in ``amictl --help``.

    Every sub-command accepts it too (cli.md: "before or after the sub-command"), but
    its ``--help`` shows one line pointing at ``amictl --help`` instead of repeating them.
    """

    def __init__(self, *args: Any, first: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first = first

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if ctx.parent is None:
            return super().get_help_record(ctx)
        return (GLOBAL_HELP_LINE, "") if self.first else None


def drop_shadowed_globals(group: click.Group) -> None:
    """A command whose own option has a global option's name (``share --org ARN`` beside the
    global ``--org ROLE``) keeps its own: the global one is dropped from that command (it
    still works before the sub-command, on the group)."""
    for cmd in group.commands.values():
        drop_shadowed(cmd)


def drop_shadowed(cmd: click.Command) -> None:
    """``drop_shadowed_globals`` of one command (and its sub-commands)."""
    if isinstance(cmd, click.Group):
        drop_shadowed_globals(cmd)
    own = {o for p in cmd.params if not isinstance(p, GlobalOption) for o in p.opts}
    cmd.params = [p for p in cmd.params if not (isinstance(p, GlobalOption) and own & set(p.opts))]


def _gopt(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=GlobalOption, **kwargs)


def global_options(fn: F) -> F:
    """The options of cli.md, on the group and on every command."""
    opts = [
        _gopt(
            "--profile",
            first=True,
            expose_value=False,
            callback=_store("profile"),
            help="boto3 profile (AWS_PROFILE).",
        ),
        _gopt(
            "--region",
            "regions",
            multiple=True,
            expose_value=False,
            callback=_store("regions", _split_regions),
            help="Region(s) to work in: repeat, comma list, or `all`.",
        ),
        _gopt(
            "--endpoint-url",
            expose_value=False,
            callback=_store("endpoint_url"),
            help="Send every AWS call there (AWS_ENDPOINT_URL).",
        ),
        _gopt(
            "--sandbox",
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_store("sandbox"),
            help="Use the running sandbox (its endpoint and dummy credentials).",
        ),
        _gopt(
            "--role-arn",
            "role_arns",
            multiple=True,
            expose_value=False,
            callback=_store("role_arns", list),
            help="Work in another account by assuming this role (repeatable).",
        ),
        _gopt(
            "--accounts-file",
            expose_value=False,
            callback=_store("accounts_file"),
            help="YAML/JSON file listing accounts and the roles to assume.",
        ),
        _gopt(
            "--org",
            expose_value=False,
            callback=_store("org"),
            help="Work in every ACTIVE account of the organization (Organizations ListAccounts), "
            "assuming this role name (or ARN template with {account}) in each.",
        ),
        _gopt(
            "--state",
            expose_value=False,
            callback=_store("state"),
            help="State store URL (AMICTL_STATE); default SQLite under $XDG_STATE_HOME/amictl/; "
            "a team shares postgresql://user@host/db.",
        ),
        _gopt(
            "-o",
            "--output",
            type=click.Choice(OUTPUTS),
            expose_value=False,
            callback=_store("output"),
            help="table for people; json, csv, yaml for scripts (AMICTL_OUTPUT).",
        ),
        _gopt(
            "--no-progress",
            "progress",
            flag_value=False,
            default=None,
            expose_value=False,
            callback=_store("progress"),
            help="No progress bars.",
        ),
        _gopt(
            "-v",
            "--verbose",
            "verbosity",
            count=True,
            expose_value=False,
            callback=_store("verbosity"),
            help="More logging on stderr.",
        ),
        _gopt(
            "-q",
            "--quiet",
            "quiet",
            count=True,
            expose_value=False,
            callback=lambda c, p, v: (
                setattr(settings(), "verbosity", settings().verbosity - v) if v else None
            ),
            help="Less logging on stderr.",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console(width: int | None = None, wrap: bool | None = None) -> Console:
    """stdout for people: ``width`` (a table's), else :func:`text_width` (100 for pipes).
    Prose longer than the width wraps between words when the width is known (a terminal,
    or $COLUMNS); piped output keeps its lines whole (``wrap`` overrides)."""
    if wrap is None:
        wrap = width_known()
    return Console(highlight=False, soft_wrap=not wrap, width=width or text_width())


def info(msg: str) -> None:
    """A line for people on stderr (kept out of JSON on stdout)."""
    if settings().verbosity >= 0:
        err_console().print(msg)


_cell = cell  # the old private name, for code written before cli/output.py


def emit(
    data: Any,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    table_rows: list[dict[str, Any]] | None = None,
    drop: Sequence[str] | None = None,
    keep: Sequence[str] | None = None,
) -> None:
    """Print ``data`` in the chosen output format. Tables use ``columns`` (or all keys).

    Times are written one way (``2026-11-26T10:00:00Z``) in every format. A table wider
    than the terminal leaves out columns, ``drop`` first (lowest value first; by default
    the rightmost that do not identify the row), and says which on stderr. ``keep``
    (default: what the command declares in :mod:`amictl.cli.columns`) is never left out:
    when it cannot fit, the table becomes one record per block.
    """
    fmt = settings().output
    if fmt == "json":
        click.echo(json.dumps(normalize_times(data), indent=2, default=json_default))
        return
    if fmt == "yaml":
        plain = json.loads(json.dumps(normalize_times(data), default=json_default))
        click.echo(yaml.safe_dump(plain, sort_keys=False), nl=False)
        return
    rows = table_rows if table_rows is not None else data
    if isinstance(rows, dict):
        rows = [{"key": k, "value": v} for k, v in rows.items()]
    rows = list(rows or [])
    cols = list(columns or (rows[0].keys() if rows else []))
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        for r in rows:
            w.writerow([cell(r.get(c), c) for c in cols])
        click.echo(buf.getvalue(), nl=False)
        return
    if keep is None:
        from .columns import declared_here

        keep = declared_here()
    print_table(rows, cols, title=title, drop=drop, keep=[c for c in keep if c in cols])


def with_folded(title: str | None, folded: dict[str, str]) -> str | None:
    """The title with the values said once: ``title (family web, region us-east-1)``; a
    value the title already says is not said again, and a title ending in parentheses
    gets them inside its own: ``(2 checked; family web)``, never ``(…) (…)``."""

    def norm(text: str) -> str:
        return text.replace("-", " ").replace("_", " ").lower()

    def told(v: str) -> bool:  # the title says it already, as a word (not "1" in "12")
        pattern = rf"(^|\W){re.escape(norm(v))}(\W|$)"
        return bool(title) and len(v) >= 4 and bool(re.search(pattern, norm(title or "")))

    said = [f"{label(c)} {v}" for c, v in folded.items() if not told(v)]
    if not said:
        return title
    once = ", ".join(said)
    if not title:
        return f"({once})"
    if title.endswith(")"):
        return f"{title[:-1]}; {once})"
    return f"{title} ({once})"


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    drop: Sequence[str] | None = None,
    width: int | None = None,
    keep: Sequence[str] = (),
) -> None:
    """A table fitted to the terminal: columns dropped (and named), never ids wrapped,
    never the ``keep`` columns: one record per block when those cannot fit."""
    width = width or terminal_width()
    if not rows:
        out_console(width).print(f"{escape(title)}: none" if title else "none")
        return
    cells = {c: [cell(r.get(c), c) for r in rows] for c in columns}
    # A cell is rich markup (audit colours its severity): widths are those of its text.
    plain = {
        c: [Text.from_markup(v).plain if "[" in v else v for v in vs] for c, vs in cells.items()
    }
    fit = fit_columns(columns, plain, width, drop, keep)
    if fit.records:
        _print_records(plain, fit.columns, len(rows), width, title, fit.folded)
        return
    if fit.dropped or fit.empty:
        said = [", ".join(label(c) for c in fit.dropped)] if fit.dropped else []
        said += [f"empty: {', '.join(label(c) for c in fit.empty)}"] if fit.empty else []
        info(
            f"[dim]left out to fit {width} columns: {'; '.join(said)} (-o json has every field)[/]"
        )
    title = with_folded(title, fit.folded)
    if title and cell_len(title) > min(width, fit.width):
        # A title wider than the table (an ARN said once) is its own line, wrapped to fit.
        out_console(width).print(escape(title), style="italic")
        title = None
    table = Table(title=title, show_lines=False, header_style="bold")
    for c in fit.columns:
        prose = c in PROSE
        table.add_column(label(c), no_wrap=not prose, overflow="fold" if prose else "ellipsis")
    for i in range(len(rows)):
        table.add_row(*[cells[c][i] for c in fit.columns])
    # The table fits: what does not is left out, or printed one record per block instead.
    out_console(max(width, fit.width)).print(table)


def _print_records(
    cells: dict[str, list[str]],
    columns: Sequence[str],
    nrows: int,
    width: int,
    title: str | None,
    folded: dict[str, str],
) -> None:
    """One block per row (like ``psql \\x``): a numbered rule, then ``label  value``
    lines; a long value wraps under itself within ``width``."""
    con = out_console(width)
    title = with_folded(title, folded)
    info(f"[dim]one record per block: the columns do not fit {width} side by side[/]")
    if title:
        out_console(width).print(escape(title))
    columns = [c for c in columns if any(cells[c])]  # an empty field says nothing
    lw = min(record_label_width(columns), max(width // 3, 8))
    for i in range(nrows):
        head = f"-[ {i + 1} ]"
        con.print(escape(head + "-" * max(0, min(width, 40) - len(head))))
        for c in columns:
            for line in record_lines(label(c), cells[c][i], lw, width):
                con.print(escape(line))


def progress_enabled() -> bool:
    return settings().progress and sys.stderr.isatty() and settings().output == "table"
