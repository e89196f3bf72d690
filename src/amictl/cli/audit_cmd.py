"""``audit``: security and compliance findings with severity and a fix hint; ``--fail-on``."""

from __future__ import annotations

import os
from typing import Any

import click
from rich.markup import escape

from .. import audit, conventions
from ..durations import plural
from ..errors import AmictlError, PartialFailure
from ..notify import retired_without_notice
from ..personas import policies as persona_policies
from ..policy import load_policy
from . import context
from .common import emit, global_options, info, out_console, settings
from .cost_cmd import duration
from .inventory_cmd import load_inventory

COLUMNS = ["severity", "check", "resource", "region", "name", "detail", "fix"]
COLOURS = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def audit_options(fn: Any) -> Any:
    """The checks' options (shared by ``audit`` and ``report``)."""
    opts = [
        click.option(
            "--trust",
            multiple=True,
            metavar="ID|ARN",
            help="Accounts, organization or OU ARNs (or o-... ids) images may be shared with "
            "(repeat, or comma list); the audited accounts are always trusted.",
        ),
        click.option(
            "--max-channel-age",
            default="180d",
            show_default=True,
            help="An image a channel points at may be this old.",
        ),
        click.option(
            "--recent",
            default="30d",
            show_default=True,
            help="A deprecated/disabled image launched this recently is a finding.",
        ),
        click.option(
            "--conventions",
            "conventions_file",
            metavar="FILE",
            help=f"Required tags from this conventions file (default: {conventions.DEFAULT_FILE} "
            "if present, else the family and version tags).",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def make_options(
    trust: tuple[str, ...], max_channel_age: str, recent: str, conventions_file: str | None
) -> audit.AuditOptions:
    conv = None
    if conventions_file or os.path.exists(conventions.DEFAULT_FILE):
        conv = conventions.load(conventions_file)
    return audit.AuditOptions(
        trusted=tuple(t.strip() for v in trust for t in v.split(",") if t.strip()),
        max_channel_age=duration(max_channel_age, "--max-channel-age"),
        recent=duration(recent, "--recent"),
        conventions=conv,
        persona_policy=persona_policies.policy,
    )


def run_audit(options: audit.AuditOptions, from_state: bool) -> audit.AuditResult:
    conn = context.connector()
    inv = load_inventory(from_state)
    return audit.audit(conn, conn.targets(), options, inv=inv)


def print_findings(result: audit.AuditResult) -> None:
    """Findings without their fix column, then one fix line per check (the first finding's)."""
    con = out_console()
    rows = []
    for f in result.findings:
        row = {k: escape(str(v)) for k, v in f.to_dict().items()}
        row["severity"] = f"[{COLOURS[f.severity]}]{f.severity}[/]"
        rows.append(row)
    if rows:
        emit(rows, COLUMNS[:-1], title=plural(len(rows), "audit finding"))
        con.print("[bold]How to fix[/] (shown for the first finding of each check):")
        seen: set[str] = set()
        for f in result.findings:
            if f.check not in seen:
                seen.add(f.check)
                con.print(
                    f"  [{COLOURS[f.severity]}]{f.check}[/]: {escape(f.fix)}", highlight=False
                )
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    con.print(f"Audit: {counts or 'no findings'} ({len(audit.CHECKS)} checks).", highlight=False)
    for line in result.incomplete:
        info(f"[yellow]not checked:[/] {escape(line)}")


def register(cli: click.Group) -> None:
    @cli.command("audit")
    @audit_options
    @click.option(
        "--fail-on",
        type=click.Choice(audit.SEVERITIES),
        help="Exit 1 when there is a finding of this severity or higher (for CI).",
    )
    @click.option("--list-checks", is_flag=True, help="List the checks and exit.")
    @click.option(
        "-p",
        "--policy",
        "policy_path",
        metavar="FILE",
        help="A policy: report the images its rules adopt (select.managed) that Image "
        "Builder, DLM or AWS Backup also retire (managed-overlap), and check its retain "
        "rules (retention gaps, unlocked Recycle Bin rules).",
    )
    @click.option(
        "--from-state",
        is_flag=True,
        help="Use the last stored inventory (region settings are still read live).",
    )
    @global_options
    def audit_cmd(
        trust: tuple[str, ...],
        max_channel_age: str,
        recent: str,
        conventions_file: str | None,
        fail_on: str | None,
        list_checks: bool,
        policy_path: str | None,
        from_state: bool,
    ) -> None:
        """Security and compliance findings, each with a severity and a fix hint.

        Checks: public images, images shared outside the trusted accounts/organizations,
        unencrypted snapshots, missing required tags, channel images older than
        --max-channel-age, deprecated/disabled images launched within --recent, IMDSv1
        allowed, no Recycle Bin rule, Image Block Public Access off. `--list-checks` shows
        each with its severity, fix and IAM permissions. Exit 1 with --fail-on LEVEL when a
        finding is at that level or above; 4 when something could not be read.
        """
        if list_checks:
            rows = [c.to_dict() for c in audit.CHECKS.values()]
            emit(rows, ["id", "severity", "title", "permissions"], title="audit checks")
            return
        options = make_options(trust, max_channel_age, recent, conventions_file)
        if policy_path:
            options.policy = load_policy(policy_path)
        options.unnoticed = retired_without_notice(context.store())
        result = run_audit(options, from_state)
        if settings().output == "table":
            print_findings(result)
        else:
            emit(result.to_dict(), COLUMNS, table_rows=result.to_dict()["findings"])
        failing = result.at_or_above(fail_on) if fail_on else []
        if failing:
            raise AmictlError(
                f"{plural(len(failing), 'finding')} at {fail_on} or above (--fail-on {fail_on})",
                hint="the How to fix lines (-o json: each finding's fix) say what to do",
            )
        if result.incomplete:
            raise PartialFailure(
                "some accounts/regions could not be fully read: their findings may be missing",
                hint="; ".join(result.incomplete[:3]),
            )
