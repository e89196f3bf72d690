"""``apply`` and ``journal``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from ..apply import ApplyOptions, apply_plan
from ..apply.executor import preflight
from ..durations import parse_duration
from ..errors import AmictlError, InputError, PartialFailure
from ..policy import Policy, load_policy
from ..policy.plan_model import Plan
from . import context
from .common import emit, global_options, info, out_console, settings
from .plan_cmd import make_plan, print_plan


def read_plan(path: str) -> Plan:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"cannot read the plan: {exc.strerror}", file=path) from None
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", file=path) from None
    return Plan.from_dict(data, verify=True, file=path)


def _policy_for(plan: Plan) -> Policy | None:
    """The plan's policy, if its file is still there unchanged (for its holds and options)."""
    path = plan.policy.get("path")
    if not path or not Path(path).is_file():
        return None
    try:
        pol = load_policy(path)
    except AmictlError:
        return None
    return pol if pol.sha256 == plan.policy.get("sha256") else None


def register(cli: click.Group) -> None:
    @cli.command("apply")
    @click.argument("plan_file", required=False)
    @click.option(
        "-p", "--policy", "policy_path", help="Plan with this policy, show it, confirm, then apply."
    )
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option(
        "--max-destroy",
        type=int,
        default=50,
        show_default=True,
        help="Refuse a plan that deregisters more images than this.",
    )
    @click.option(
        "--max-age", default="24h", show_default=True, help="Refuse a plan older than this."
    )
    @click.option(
        "--force",
        is_flag=True,
        help="Override the blast-radius, staleness and completeness refusals.",
    )
    @click.option(
        "--force-unsafe",
        is_flag=True,
        help="Allow actions on images in use (rules with in_use: false).",
    )
    @click.option(
        "--resume", is_flag=True, help="Resume the last interrupted apply from the journal."
    )
    @click.option("--workers", type=int, default=4, show_default=True, help="Actions run at once.")
    @global_options
    def apply_cmd(
        plan_file: str | None,
        policy_path: str | None,
        yes: bool,
        max_destroy: int,
        max_age: str,
        force: bool,
        force_unsafe: bool,
        resume: bool,
        workers: int,
    ) -> None:
        """Execute a reviewed plan (or plan then apply after confirmation), journaled and re-checked."""
        store = context.store()
        if resume:
            body = store.latest_unfinished_plan()
            if body is None:
                info("nothing to resume: every journaled plan is finished")
                return
            plan = Plan.from_dict(body, verify=True, file=f"stored plan {body['checksum'][:12]}")
            info(f"resuming plan {plan.checksum[:12]} made at {plan.created_at}")
            yes = True
        elif plan_file:
            plan = read_plan(plan_file)
        elif policy_path:
            plan = make_plan(policy_path, None)
        else:
            raise InputError(
                "give a plan file, -p POLICY, or --resume",
                hint="amictl plan -p POLICY --out plan.json",
            )
        try:
            age = parse_duration(max_age)
        except ValueError as exc:
            raise InputError(str(exc), key="--max-age") from None
        policy = load_policy(policy_path) if policy_path else _policy_for(plan)
        opts = ApplyOptions(
            max_destroy=max_destroy,
            max_age=age,
            force=force,
            force_unsafe=force_unsafe,
            workers=workers,
            policy=policy,
        )
        preflight(plan, opts)
        if not plan.actions:
            info("the plan is empty: nothing to do")
            if settings().output != "table":
                emit({"checksum": plan.checksum, "done": [], "skipped": {}, "failed": {}})
            return
        if settings().output == "table" and not resume:
            print_plan(plan)
        if not yes:
            if not sys.stdin.isatty():
                raise AmictlError(
                    "refusing to apply without confirmation: no terminal to ask on",
                    hint="review the plan, then pass --yes",
                )
            click.confirm(f"Apply these {len(plan.actions)} actions?", abort=True)

        con = out_console()

        def progress(a, st, msg):  # type: ignore[no-untyped-def]
            if settings().output == "table":
                colour = {"done": "green", "skipped": "yellow", "failed": "red"}.get(st, "")
                con.print(
                    f"  [{colour}]{st:<7}[/] {a.id:<5} {a.type:<16} {a.snapshot_id or a.image_id}  "
                    f"[dim]{msg}[/]"
                )

        conn = context.connector()
        started = dt.datetime.now(dt.UTC)
        result = apply_plan(conn, store, plan, opts, progress)
        summary = result.to_dict()
        summary["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 2)
        if settings().output != "table":
            emit(summary)
        else:
            for region, rb in result.recycle_bin.items():
                con.print(f"Recycle Bin {region}: {rb}")
            con.print(
                f"{len(result.done)} done, {len(result.already_done)} already done earlier, "
                f"{len(result.skipped)} skipped, {len(result.failed)} failed "
                f"(plan {plan.checksum[:12]}; `amictl journal` shows each)"
            )
        if result.failed:
            raise PartialFailure(
                f"{len(result.failed)} actions failed; the rest were done",
                hint="see `amictl journal`; re-run the same plan (or `amictl apply --resume`) "
                "to retry them",
            )

    @cli.command("iam-policy")
    @click.argument("commands", nargs=-1, required=True)
    @global_options
    def iam_policy(commands: tuple[str, ...]) -> None:
        """The least-privilege IAM policy for the given commands (generated from the registries)."""
        from ..iam import COMMANDS, policy_document

        bad = [c for c in commands if c not in COMMANDS]
        if bad:
            raise InputError(
                f"unknown command(s): {', '.join(bad)}", hint="one of: " + ", ".join(COMMANDS)
            )
        click.echo(json.dumps(policy_document(list(commands)), indent=2))

    @cli.command("journal")
    @click.option("--since", help="Only entries at or after this ISO 8601 time.")
    @click.option("--plan", "plan_checksum", help="Only entries of this plan (checksum).")
    @click.option("--limit", type=int, default=1000, show_default=True)
    @global_options
    def journal_cmd(since: str | None, plan_checksum: str | None, limit: int) -> None:
        """What apply did, when, by whom (caller identity), and the result."""
        rows = context.store().journal_rows(since=since, plan_checksum=plan_checksum, limit=limit)
        for r in rows:
            r["plan"] = (
                r.pop("plan_checksum")[:12]
                if settings().output == "table"
                else r.pop("plan_checksum")
            )
        emit(
            rows,
            [
                "at",
                "plan",
                "action_id",
                "type",
                "resource",
                "region",
                "status",
                "error_code",
                "message",
                "caller",
            ],
            title=f"{len(rows)} journal entries",
        )
