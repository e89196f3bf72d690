"""``apply`` and ``journal``."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import click
from rich.markup import escape

from ..apply.executor import (
    ApplyOptions,
    ApplyResult,
    Prepared,
    check_plan,
    describe_coverage,
    execute,
    prepare,
    unrecoverable,
)
from ..apply.trust import Signature, check_signature, limits_signed, own_signature
from ..approvals import require as require_approvals
from ..durations import format_duration, parse_duration, plural
from ..errors import (
    InputError,
    Interrupted,
    JournalError,
    PartialFailure,
)
from ..model import iso, parse_time
from ..policy.plan_model import Plan
from . import context
from .common import emit, global_options, info, out_console, settings
from .confirm import ask
from .output import wrap_width
from .plan_cmd import make_plan, plan_line, print_plan

MAX_PLAN_BYTES = 512 * 1024 * 1024


def read_plan(path: str) -> tuple[Plan, dict]:
    try:
        raw = Path(path).read_bytes() if path != "-" else sys.stdin.buffer.read()
    except OSError as exc:
        raise InputError(f"cannot read the plan: {exc.strerror}", file=path) from None
    if len(raw) > MAX_PLAN_BYTES:
        raise InputError("the file is too large to be an amictl plan", file=path)
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise InputError("not a plan: the file is not UTF-8 text", file=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=path, line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not JSON: {exc}", file=path) from None
    return Plan.from_dict(data, verify=True, file=path, text=text), data


def _options(click_ctx: click.Context, base: ApplyOptions | None, **given: object) -> ApplyOptions:
    """The apply's limits: the journaled ones on --resume, overridden by flags given now."""
    opts = base or ApplyOptions()
    for name, value in given.items():
        src = click_ctx.get_parameter_source(name)
        if base is None or src == click.core.ParameterSource.COMMANDLINE:
            setattr(opts, name, value)
    return opts


def _resumed_limits(run: dict, checksum: str, trust: Signature) -> ApplyOptions | None:
    """The original apply's limits when the store key signed them with this plan (and the
    plan itself checked), else None: the limits given now (the defaults when none are)."""
    limits = run.get("options") or {}
    if trust.signed and limits_signed(trust.key, checksum, limits, run.get("limits_signature")):
        try:
            return ApplyOptions.from_dict(limits)
        except ValueError:
            return None
    info(
        "[yellow]note:[/] the stored limits of the interrupted apply are not signed by this "
        "state store: using the limits given now (the defaults unless you pass them)"
    )
    return None


def _coverage_lines(prep: Prepared) -> list[str]:
    return [f"{where}: {describe_coverage(c)}" for where, c in sorted(prep.recycle_bin.items())]


def register(cli: click.Group) -> None:
    @cli.command("apply")
    @click.argument("plan_file", required=False)
    @click.option(
        "-p", "--policy", "policy_path", help="Plan with this policy, show it, confirm, then apply."
    )
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option(
        "--max-destroy",
        type=click.IntRange(0),
        default=50,
        show_default=True,
        help="Refuse a plan that deregisters more images than this.",
    )
    @click.option(
        "--max-share",
        type=click.IntRange(0, 100),
        default=25,
        show_default=True,
        help="Refuse a plan that deregisters more than this percentage of the images of an "
        "account/region that has at least 20.",
    )
    @click.option(
        "--allow-whole-family",
        is_flag=True,
        help="Allow a plan that deregisters every available image of a family.",
    )
    @click.option(
        "--max-age", default="24h", show_default=True, help="Refuse a plan older than this."
    )
    @click.option(
        "--force-unsafe",
        is_flag=True,
        help="Allow actions on images in use or shared (rules with in_use: false / shared: false).",
    )
    @click.option(
        "--resume",
        is_flag=True,
        help="Finish the last apply if it was interrupted: shows what remains and asks.",
    )
    @click.option(
        "--workers",
        type=click.IntRange(1, 32),
        default=4,
        show_default=True,
        help="Actions in flight at once.",
    )
    @click.option(
        "--batch",
        type=click.IntRange(0, 1000),
        default=0,
        show_default=True,
        help="Actions of one API decided on one live read (0: what the workers start in about one read).",
    )
    @click.option(
        "--accept-unsigned",
        is_flag=True,
        help="Apply a plan not signed by this state store (made elsewhere); review its policy part first.",
    )
    @click.option("--force", is_flag=True, hidden=True)
    @global_options
    @click.pass_context
    def apply_cmd(
        click_ctx: click.Context,
        plan_file: str | None,
        policy_path: str | None,
        yes: bool,
        max_destroy: int,
        max_share: int,
        allow_whole_family: bool,
        max_age: str,
        force_unsafe: bool,
        resume: bool,
        workers: int,
        batch: int,
        accept_unsigned: bool,
        force: bool,
    ) -> None:
        """Execute a reviewed plan (or plan then apply after confirmation), journaled and re-checked.

        Every safety fact is re-derived live before each action; Ctrl-C stops cleanly
        (exit 130) and `--resume` finishes the rest. Each refusal (exit 3) names the one
        option that overrides it.
        """
        if force:
            raise InputError(
                "there is no catch-all --force",
                key="--force",
                hint="each refusal names the one option that overrides it: --max-destroy N, "
                "--max-share PCT, --allow-whole-family, --max-age D, --force-unsafe",
            )
        if plan_file and policy_path:
            raise InputError(
                f"give a plan file or -p POLICY, not both: `apply {plan_file}` applies that "
                f"reviewed plan as it is (it carries its own policy); `apply -p {policy_path}` "
                "makes a new plan from the policy, shows it and asks",
                key="-p",
                hint=f"to apply a plan made with {policy_path}: `amictl apply {plan_file}`",
            )
        if resume and (plan_file or policy_path):
            raise InputError(
                "--resume finishes the last interrupted apply with its own stored plan: "
                "give it alone, without a plan file or -p POLICY",
                key="--resume",
            )
        try:
            age = parse_duration(max_age)
        except ValueError as exc:
            raise InputError(str(exc), key="--max-age") from None
        store = context.store()
        remaining: list[str] | None = None
        base: ApplyOptions | None = None
        trust: Signature | None = None
        signature: str | None = None
        if resume:
            found = store.resumable()
            if found is None:
                info("nothing to resume: the last apply finished (or none was interrupted)")
                if settings().output != "table":
                    emit({"resumed": None})
                return
            body, run, remaining = found
            label = f"stored plan {str(body.get('checksum'))[:12]}"
            signature = run.get("plan_signature")
            # the same check as a plan file's: a plan anyone with row access stored is not
            # trusted for having been stored
            trust = check_signature(
                store, {**body, "signature": signature}, accept_unsigned=accept_unsigned, what=label
            )
            plan = Plan.from_dict(body, verify=True, file=label)
            base = _resumed_limits(run, plan.checksum, trust)
            ended = (
                "its end is not recorded: its process died"
                if run["status"] == "running"
                else run["status"]
            )
            info(
                f"resuming plan {plan.checksum[:12]} (apply started {run['started_at']}, "
                f"{ended}): {len(remaining)} actions remain"
            )
        elif plan_file:
            plan, raw = read_plan(plan_file)
            trust = check_signature(store, raw, accept_unsigned=accept_unsigned, what=plan_file)
            signature = raw.get("signature") if trust.signed else None
        elif policy_path:
            plan = make_plan(policy_path, None)
            signature, key = own_signature(store, plan.checksum)  # made here, by this store
            if key is not None:
                trust = Signature(True, key)
        else:
            raise InputError(
                "give a plan file, -p POLICY, or --resume",
                hint="amictl plan -p POLICY --out plan.json",
            )
        for note in trust.notes if trust else []:
            info(f"[yellow]note:[/] {escape(note)}")
        opts = _options(
            click_ctx,
            base,
            max_destroy=max_destroy,
            max_share=max_share / 100,
            allow_whole_family=allow_whole_family,
            max_age=age,
            force_unsafe=force_unsafe,
            workers=workers,
            batch=batch,
        )
        check_plan(plan, opts)
        if not plan.actions:
            info("the plan is empty: nothing to do")
            if settings().output != "table":
                emit({"checksum": plan.checksum, "done": [], "skipped": {}, "failed": {}})
            return
        conn = context.connector()
        # issue 29: a second person's approval, if required; thresholds judged live
        require_approvals(store, plan, conn)
        prep = prepare(conn, plan, opts, store)
        if trust is not None and trust.signed:
            prep.signature, prep.key = signature, trust.key
        table = settings().output == "table"
        width = wrap_width()
        con = out_console()
        if table:
            if remaining is not None:
                by_id = {a.id: a for a in plan.actions}
                con.print(f"[bold]Remaining actions of plan {plan.checksum[:12]}[/]")
                for aid in remaining:
                    a = by_id[aid]
                    con.print(f"  {escape(a.id):<5} {a.type:<16} {a.snapshot_id or a.image_id}")
                con.print(
                    f"limits ({'from the original apply' if base else 'given now'}): "
                    f"--max-destroy {opts.max_destroy}, --max-share {round(opts.max_share * 100)}, "
                    f"--max-age {format_duration(opts.max_age)}, --workers {opts.workers}"
                    + (", --allow-whole-family" if opts.allow_whole_family else "")
                    + (", --force-unsafe" if opts.force_unsafe else "")
                )
            else:
                print_plan(plan)
            for line in prep.notes:
                con.print(f"[yellow]note:[/] {escape(line)}")
            if prep.recycle_bin:
                con.print("[bold]Recovery if this goes wrong[/] (Recycle Bin):")
                for line in _coverage_lines(prep):
                    con.print(f"  {escape(line)}")
        if not yes:
            n = len(remaining) if remaining is not None else len(plan.actions)
            lost = unrecoverable(prep.recycle_bin)
            warn = f" Deletions in {', '.join(lost)} are NOT recoverable." if lost else ""
            ask(yes, f"Apply these {n} actions?{warn}", "apply", "review the plan, then pass --yes")

        def progress(a, st, msg):  # type: ignore[no-untyped-def]
            if table:
                colour = {"done": "green", "skipped": "yellow", "failed": "red"}.get(st, "cyan")
                head = f"  {st:<9} {a.id:<5} {a.type:<16} {a.snapshot_id or a.image_id} "
                markup = (
                    f"  [{colour}]{st:<9}[/] {escape(a.id):<5} {a.type:<16} "
                    f"{a.snapshot_id or a.image_id} "
                )
                plan_line(con, head, msg, width, markup)

        started = dt.datetime.now(dt.UTC)
        try:
            result = execute(conn, store, prep, opts, progress)
        except (Interrupted, JournalError) as exc:
            res = getattr(exc, "result", None)
            if isinstance(res, ApplyResult):
                _report(res, plan, started, table)
            raise
        _report(result, plan, started, table)
        if result.failed:
            raise PartialFailure(
                f"{plural(len(result.failed), 'action')} failed; the rest were done",
                hint="see `amictl journal`; a failed action is final for this plan: make a new "
                "plan (it re-derives what is still to do) and apply it",
            )

    @cli.command("iam-policy")
    @click.argument("commands", nargs=-1)
    @click.option(
        "--persona",
        type=click.Choice(["builder", "releaser", "consumer", "retirer", "auditor"]),
        help="A team's least-privilege policy, with resource-level conditions (issue 21).",
    )
    @global_options
    def iam_policy(commands: tuple[str, ...], persona: str | None) -> None:
        """The least-privilege IAM policy for the given commands (generated from the registries),
        or for a persona (--persona builder|releaser|consumer|retirer|auditor)."""
        from ..iam import COMMANDS, NO_AWS_COMMANDS, policy_document

        if persona:
            from ..personas.policies import policy

            if commands:
                raise InputError("give COMMANDS or --persona, not both", key="--persona")
            click.echo(json.dumps(policy(persona), indent=2))
            return
        if not commands:
            raise InputError("give the commands (or --persona)", key="COMMANDS")
        bad = [c for c in commands if c not in COMMANDS and c not in NO_AWS_COMMANDS]
        if bad:
            raise InputError(
                f"unknown command(s): {', '.join(bad)}",
                hint="one of: " + ", ".join([*COMMANDS, *NO_AWS_COMMANDS]),
            )
        for c in dict.fromkeys(c for c in commands if c in NO_AWS_COMMANDS):
            info(f"{c} needs no AWS permissions: {NO_AWS_COMMANDS[c]}")
        aws = [c for c in commands if c in COMMANDS]
        if aws:
            click.echo(json.dumps(policy_document(aws), indent=2))

    @cli.command("journal")
    @click.option(
        "--since",
        help="Only entries at or after this: a duration back from now (24h, 7d) or an ISO 8601 time.",
    )
    @click.option(
        "--plan",
        "plan_checksum",
        help="Only entries of this plan: its checksum or a unique prefix.",
    )
    @click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
    @global_options
    def journal_cmd(since: str | None, plan_checksum: str | None, limit: int) -> None:
        """What apply did, when, by whom (caller identity), and the result."""
        store = context.store()
        since_iso = _since(since) if since else None
        full = _plan_checksum(store, plan_checksum) if plan_checksum else None
        rows = store.journal_rows(since=since_iso, plan_checksum=full, limit=limit)
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
            title=plural(len(rows), "journal entry", "journal entries"),
        )


def _since(value: str) -> str:
    try:
        return iso(dt.datetime.now(dt.UTC) - parse_duration(value)) or ""
    except (ValueError, OverflowError):
        pass
    try:
        t = parse_time(value)
    except (ValueError, OverflowError):
        t = None
    if t is None:
        raise InputError(
            f"{value!r} is neither a duration (24h, 7d, 2w) nor an ISO 8601 time", key="--since"
        )
    return iso(t) or ""


def _plan_checksum(store, prefix: str) -> str:  # type: ignore[no-untyped-def]
    p = prefix.strip().lower()
    if not re.fullmatch(r"(rollout-)?[0-9a-f]{4,64}", p):  # rollout-<id>: amictl rollout's
        raise InputError(
            f"{prefix!r} is not a plan checksum (4 to 64 hex characters)", key="--plan"
        )
    found = store.plan_checksums(p)
    if not found:
        raise InputError(f"no journaled plan has a checksum starting with {p}", key="--plan")
    if len(found) > 1:
        raise InputError(
            f"{p} matches several plans: {', '.join(f[:16] for f in found)}",
            key="--plan",
            hint="give more characters",
        )
    return str(found[0])


def _report(result: ApplyResult, plan: Plan, started: dt.datetime, table: bool) -> None:
    summary = result.to_dict()
    summary["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 2)
    if not table:
        emit(summary)
        return
    con = out_console()
    con.print(
        f"{len(result.done)} done, {len(result.already_done)} already done earlier, "
        f"{len(result.skipped)} skipped, {len(result.not_found)} not found, "
        f"{len(result.failed)} failed, {len(result.not_started)} not started "
        f"(plan {plan.checksum[:12]}; `amictl journal --plan {plan.checksum[:12]}` shows each)"
    )
