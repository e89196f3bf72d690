"""Sending the notices of a plan, for ``notify PLAN`` and ``plan --notify``."""

from __future__ import annotations

import datetime as dt
import os

import click
from rich.markup import escape

from .. import conventions
from ..errors import PartialFailure
from ..notify import NoticeRun, load_config, notify
from ..policy.plan_model import Plan
from . import context
from .common import emit, info, out_console, settings

COLUMNS = ["owner", "channel", "target", "images", "result", "error"]


def notify_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option(
        "--conventions",
        "conventions_file",
        metavar="FILE",
        help="Family owners (`owners:`) from this conventions file "
        f"(default: {conventions.DEFAULT_FILE} if present).",
    )(fn)
    return click.option(
        "--notify-config",
        "config_path",
        metavar="FILE",
        required=False,
        help="Owners' contacts and channels (webhook, SNS, SES); docs/cli.md.",
    )(fn)


def send_notices(
    plan: Plan,
    config_path: str | None,
    conventions_file: str | None,
    dry_run: bool,
    json_out: bool = True,
) -> NoticeRun:
    """Load the configuration, notify, print the digests (never a secret); exit 4 when a
    digest was not delivered (its images' deregister stage keeps waiting)."""
    from ..notify.config import no_config

    if not config_path:
        raise no_config()
    config = load_config(config_path)
    owners: dict[str, str] = {}
    if conventions_file or os.path.exists(conventions.DEFAULT_FILE):
        owners = conventions.load(conventions_file).owners
    run = notify(
        context.connector(),
        context.store(),
        plan,
        config,
        owners,
        dt.datetime.now(dt.UTC),
        dry_run=dry_run,
    )
    rows = [d.to_dict() for d in run.digests]
    if settings().output == "table":
        con = out_console()
        for d in run.digests:
            con.print(f"[bold]{escape(str(d.owner))}[/] via {escape(d.channel or '-')}: {d.result}")
            con.print(escape(d.text), highlight=False)
    elif json_out:
        emit({"checksum": plan.checksum, "dry_run": dry_run, "digests": rows})
    else:  # `plan --notify -o json`: stdout holds the plan's JSON only
        for d in run.digests:
            info(f"notice to {escape(str(d.owner))} via {escape(d.channel or '-')}: {d.result}")
    for d in run.failed:
        info(
            f"[red]not delivered[/] to {escape(str(d.owner))}: {escape(d.error)}; its images' deregister stage waits"
        )
    if run.failed and not dry_run:
        raise PartialFailure(f"{len(run.failed)} of {len(run.digests)} digest(s) not delivered")
    if not run.digests:
        info("nobody to tell: no retiring image that was not notified already")
    return run
