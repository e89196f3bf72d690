"""Global options (accepted before or after the sub-command), output and errors."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

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


def global_options(fn: F) -> F:
    """The options of cli.md, on the group and on every command."""
    opts = [
        click.option(
            "--profile",
            expose_value=False,
            callback=_store("profile"),
            help="boto3 profile (AWS_PROFILE).",
        ),
        click.option(
            "--region",
            "regions",
            multiple=True,
            expose_value=False,
            callback=_store("regions", _split_regions),
            help="Region(s) to work in: repeat, comma list, or `all`.",
        ),
        click.option(
            "--endpoint-url",
            expose_value=False,
            callback=_store("endpoint_url"),
            help="Send every AWS call there (AWS_ENDPOINT_URL).",
        ),
        click.option(
            "--sandbox",
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_store("sandbox"),
            help="Use the running sandbox (its endpoint and dummy credentials).",
        ),
        click.option(
            "--role-arn",
            "role_arns",
            multiple=True,
            expose_value=False,
            callback=_store("role_arns", list),
            help="Work in another account by assuming this role (repeatable).",
        ),
        click.option(
            "--accounts-file",
            expose_value=False,
            callback=_store("accounts_file"),
            help="YAML/JSON file listing accounts and the roles to assume.",
        ),
        click.option(
            "--state",
            expose_value=False,
            callback=_store("state"),
            help="State store URL (AMICTL_STATE); default SQLite under $XDG_STATE_HOME/amictl/; "
            "a team shares postgresql://user@host/db.",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Choice(OUTPUTS),
            expose_value=False,
            callback=_store("output"),
            help="table for people; json, csv, yaml for scripts (AMICTL_OUTPUT).",
        ),
        click.option(
            "--no-progress",
            "progress",
            flag_value=False,
            default=None,
            expose_value=False,
            callback=_store("progress"),
            help="No progress bars.",
        ),
        click.option(
            "-v",
            "--verbose",
            "verbosity",
            count=True,
            expose_value=False,
            callback=_store("verbosity"),
            help="More logging on stderr.",
        ),
        click.option(
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


def out_console() -> Console:
    # Piped output (a file, CI logs, `less`) gets wide tables instead of 80 cramped columns.
    width = None if sys.stdout.isatty() else 220
    return Console(highlight=False, soft_wrap=True, width=width)


def info(msg: str) -> None:
    """A line for people on stderr (kept out of JSON on stdout)."""
    if settings().verbosity >= 0:
        err_console().print(msg)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, list | tuple):
        return ", ".join(_cell(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return str(v)


def emit(
    data: Any,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    table_rows: list[dict[str, Any]] | None = None,
) -> None:
    """Print ``data`` in the chosen output format. Tables use ``columns`` (or all keys)."""
    fmt = settings().output
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
        return
    if fmt == "yaml":
        click.echo(
            yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False), nl=False
        )
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
            w.writerow([_cell(r.get(c)) for c in cols])
        click.echo(buf.getvalue(), nl=False)
        return
    table = Table(title=title, show_lines=False, header_style="bold")
    for c in cols:
        ident = c.endswith("_id") or c in ("id", "region", "account")
        table.add_column(c.replace("_", " "), no_wrap=ident, overflow="fold")
    for r in rows:
        table.add_row(*[_cell(r.get(c)) for c in cols])
    out_console().print(table)


def progress_enabled() -> bool:
    return settings().progress and sys.stderr.isatty() and settings().output == "table"
