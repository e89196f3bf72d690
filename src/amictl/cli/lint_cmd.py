"""``lint``: owned images against the naming and tagging conventions; ``--fix`` tags them."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape

from .. import conventions
from ..durations import plural
from ..errors import AmictlError, PartialFailure
from ..inventory.scan import scan
from . import context
from .common import emit, global_options, info, out_console, settings
from .confirm import ask

COLUMNS = ["image_id", "name", "region", "rule", "detail"]


def register(cli: click.Group) -> None:
    @cli.command("lint")
    @click.option(
        "--conventions",
        "conventions_file",
        metavar="FILE",
        help=f"Conventions file (default: {conventions.DEFAULT_FILE} in the working directory).",
    )
    @click.option("--strict", is_flag=True, help="Exit 1 when there are violations.")
    @click.option(
        "--fix",
        is_flag=True,
        help="Add family/version tags derived from names where unambiguous (asks first).",
    )
    @click.option("--yes", is_flag=True, help="With --fix: do not ask for confirmation.")
    @global_options
    def lint_cmd(conventions_file: str | None, strict: bool, fix: bool, yes: bool) -> None:
        """Check owned images against the naming and tagging conventions.

        Rules: `name` (the name matches name_template), `required-tag`, `family`
        (allowed_families globs), `version` (version_pattern), `name-tags` (the family and
        version tags agree with the name). --fix plans `tag` actions for the family/version
        tags a name gives unambiguously, shows them, asks (or --yes), then tags each image
        after re-reading it live, journaled. Exit 1 with --strict when violations remain.
        """
        conv = conventions.load(conventions_file)
        conn = context.connector()
        targets = conn.targets()
        inv = scan(conn, targets, kinds=["images"])
        incomplete = inv.incomplete_slices()
        for s in incomplete:
            info(
                f"[yellow]warning:[/] {s.account}/{s.region}: images not read: {escape(s.error or '')}"
            )
        violations = conventions.check(inv.images, conv)
        table = settings().output == "table"
        data: dict[str, Any] = {
            "conventions": conv.to_dict(),
            "images": sum(1 for i in inv.images if i.owned),
            "violations": [v.to_dict() for v in violations],
            "incomplete": [f"{s.account}/{s.region}" for s in incomplete],
        }
        if fix:
            if table and violations:
                emit(data, COLUMNS, plural(len(violations), "violation"), data["violations"])
            _fix(conn, targets, inv.images, conv, yes, table, data)
            if incomplete:
                raise PartialFailure(
                    "some regions could not be read: their images were not checked",
                    hint="fix access, or limit --region",
                )
            return
        if table:
            if violations:
                emit(data, COLUMNS, plural(len(violations), "violation"), data["violations"])
            else:
                info(f"{data['images']} images: no violations of {conv.path}")
        else:
            emit(data, COLUMNS, None, data["violations"])
        if incomplete:
            raise PartialFailure(
                "some regions could not be read: their images were not checked",
                hint="fix access, or limit --region",
            )
        if strict and violations:
            raise AmictlError(
                f"{plural(len(violations), 'convention violation')} (--strict)",
                hint="`amictl lint --fix` adds family/version tags the names give",
            )


def _fix(
    conn: Any,
    targets: Any,
    images: Any,
    conv: conventions.Conventions,
    yes: bool,
    table: bool,
    data: dict[str, Any],
) -> None:
    plan = conventions.plan_fixes(images, conv)
    data["fix"] = plan.to_dict()
    con = out_console()
    if table:
        con.print(
            f"[bold]Fix plan {plan.checksum[:12]}[/]: {plural(len(plan.actions), 'tag action')}"
        )
        for a in plan.actions:
            tags = ", ".join(f"{k}={v}" for k, v in a["tags"].items())
            con.print(
                f"  {a['id']:<5} tag {a['image_id']} {a['region']} "
                f"{escape(a['name'])}: {escape(tags)}"
            )
        for u in plan.untouched:
            con.print(f"  [dim]untouched[/] {u['image_id']} {u['region']}: {escape(u['reason'])}")
    if not plan.actions:
        info("nothing to fix")
        if not table:
            emit({**data, "result": None})
        return
    if not yes and not sys.stdin.isatty() and not table:
        emit({**data, "result": None})
    ask(
        yes,
        f"Tag these {len(plan.actions)} images?",
        "tag",
        "review the fix plan above, then pass --yes",
    )

    def progress(a: dict[str, Any], st: str, msg: str) -> None:
        if table:
            colour = {"done": "green", "skipped": "yellow", "failed": "red"}.get(st, "cyan")
            con.print(f"  [{colour}]{st:<9}[/] {a['id']:<5} {a['image_id']}  [dim]{escape(msg)}[/]")

    result = conventions.apply_fixes(conn, context.store(), plan, targets, progress)
    data["result"] = result.to_dict()
    if not table:
        emit(data)
    else:
        info(
            f"{len(result.done)} tagged, {len(result.skipped)} skipped, "
            f"{len(result.not_found)} gone, {len(result.failed)} failed "
            f"(journal: amictl journal --plan {plan.checksum[:12]})"
        )
    if result.failed:
        raise PartialFailure(
            f"{plural(len(result.failed), 'tag action')} failed; the rest were done",
            hint="see `amictl journal`; run `amictl lint --fix` again",
        )
