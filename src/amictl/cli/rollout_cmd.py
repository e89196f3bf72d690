"""``rollout``: move the Auto Scaling groups that follow a family to its channel's image,
canary first, rolled back on failure; ``drift``: what runs behind its channel."""

from __future__ import annotations

import signal
from typing import Any

import click
from rich.markup import escape

from .. import rollout
from ..durations import plural
from ..errors import AmictlError, InputError, Interrupted
from ..interrupts import Terminate
from . import context
from .common import emit, err_console, global_options, info, progress_enabled, settings
from .confirm import ask

PLAN_COLUMNS = [
    "region",
    "asg",
    "template",
    "version_spec",
    "instances",
    "to_replace",
    "current_version",
    "new_version",
    "current_image",
    "new_image",
    "managed_by",
]
LIST_COLUMNS = [
    "rollout_id",
    "family",
    "channel",
    "version",
    "status",
    "started",
    "ended",
    "groups",
]
OUTCOME_COLUMNS = ["asg", "status", "refresh", "detail", "reason"]


def _printer() -> Any:
    """Progress: a bar per group on a terminal, else a line per change on stderr."""
    seen: dict[tuple[str, str], tuple[Any, Any]] = {}
    if progress_enabled():
        from rich.progress import BarColumn, Progress, TextColumn

        bar = Progress(
            TextColumn("{task.fields[phase]} {task.fields[asg]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% {task.fields[status]}"),
            console=err_console(),
        )
        tasks: dict[tuple[str, str], Any] = {}

        def show(e: dict[str, Any]) -> None:
            key = (e["phase"], e["asg"])
            if key not in tasks:
                if not bar.live.is_started:
                    bar.start()
                tasks[key] = bar.add_task("", total=100, phase=e["phase"], asg=e["asg"], status="")
            pct = (e.get("rollback") or {}).get("PercentageCompleteOnRollback", e["percent"])
            bar.update(tasks[key], completed=pct or 0, status=e["status"])

        show.stop = bar.stop  # type: ignore[attr-defined]
        return show

    def line(e: dict[str, Any]) -> None:
        key = (e["phase"], e["asg"])
        now = (e["status"], e["percent"])
        if seen.get(key) != now:
            seen[key] = now
            why = f"  {e['reason']}" if e.get("reason") else ""
            info(
                f"  {e['phase']:<9} {escape(e['asg'])}: {e['status']} {e['percent']}%{escape(why)}"
            )

    line.stop = lambda: None  # type: ignore[attr-defined]
    return line


def register(cli: click.Group) -> None:
    @cli.command("rollout")
    @click.argument("family", required=False)
    @click.option("--channel", help="The channel whose image to roll out.")
    @click.option("--asg", "asgs", multiple=True, metavar="NAME", help="Only this group (repeat).")
    @click.option(
        "--canary", default="10%", show_default=True, help="Checkpoint: the share replaced first."
    )
    @click.option(
        "--min-healthy",
        type=click.IntRange(0, 100),
        default=90,
        show_default=True,
        help="MinHealthyPercentage of each refresh.",
    )
    @click.option(
        "--canary-wait",
        type=click.IntRange(0, 172800),
        default=600,
        show_default=True,
        help="Seconds the refresh waits at the canary checkpoint.",
    )
    @click.option("--wait", is_flag=True, help="Follow the refreshes to the end (progress bar).")
    @click.option(
        "--timeout",
        type=click.FloatRange(0),
        default=3 * 3600,
        show_default=True,
        help="With --wait: seconds after which an unfinished refresh counts as failed.",
    )
    @click.option("--poll", type=click.FloatRange(0), default=15, show_default=True, hidden=True)
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option(
        "--resume",
        "resume",
        is_flag=False,
        flag_value="-",
        default=None,
        metavar="[ID]",
        help="Carry on (or roll back) an unfinished rollout: ID, or the only unfinished one.",
    )
    @click.option(
        "--force-iac",
        is_flag=True,
        help="Roll out templates and groups CloudFormation owns (it will revert them).",
    )
    @global_options
    def rollout_cmd(
        family: str | None,
        channel: str | None,
        asgs: tuple[str, ...],
        canary: str,
        min_healthy: int,
        canary_wait: int,
        wait: bool,
        timeout: float,
        poll: float,
        yes: bool,
        resume: str | None,
        force_iac: bool,
    ) -> None:
        """Roll channel C of FAMILY out to the Auto Scaling groups that follow it.

        The groups are those whose launch template version resolves the channel's SSM
        parameter, or whose template is tagged amictl:family=FAMILY. Shows the plan and asks.
        Then, per version a group launches, makes a template version with only the image
        changed (the one on the default made default) and starts an instance refresh per
        group with a checkpoint at --canary. With --wait it follows them; if one fails, is
        cancelled or times out, every group goes back to what it ran and the command
        exits 1. The channel is never changed. Journaled: `rollout --resume [ID]` carries
        on after Ctrl-C (exit 130) or a kill; `rollout list` lists rollouts.
        """
        store = context.store()
        if family == "list" and not channel and resume is None:
            found = [rollout.public(s) for s in rollout.rollouts(store)]
            flat = [{**r, "groups": ", ".join(r["groups"])} for r in found]
            emit(found, LIST_COLUMNS, title=f"{len(found)} rollouts", table_rows=flat)
            return
        conn = context.connector()
        table = settings().output == "table"
        if resume is not None:
            plan = rollout.resumable(store, None if resume == "-" else resume)
            if plan is None:
                raise AmictlError("no unfinished rollout to resume")
            info(f"resuming rollout {plan.rollout_id}: {plan.family} -> channel {plan.channel}")
        else:
            if not family or not channel:
                raise InputError("give FAMILY and --channel (or --resume)", key="FAMILY")
            pct = rollout.parse_percent(canary, "--canary")
            plan = rollout.make_plan(
                conn,
                conn.targets(),
                family,
                channel,
                list(asgs),
                pct,
                min_healthy,
                canary_wait,
                force_iac=force_iac,
            )
            if not plan.groups:
                raise AmictlError(
                    f"no Auto Scaling group launches a template version that follows channel "
                    f"{channel} of {family}",
                    hint=f"tag the template amictl:family={family}",
                )
            if table:
                emit(
                    plan.rows(),
                    PLAN_COLUMNS,
                    title=f"rollout {family} channel {channel} -> {plan.new_version}"
                    f" (canary {pct}%, min healthy {min_healthy}%)",
                )
            for what in plan.managed():
                info(f"note: {escape(what)} is owned by infrastructure as code")
            rollout.refuse_unsafe(plan)
            rollout.check_conflicts(store, plan, conn)
            n = sum(g.to_replace for g in plan.groups)
            ask(
                yes,
                f"Replace {n} instances in {len(plan.groups)} groups?",
                "roll out",
                "review the plan, then pass --yes",
            )
            rollout.save_plan(store, plan)
        show = _printer()
        try:
            out = rollout.execute(
                conn,
                store,
                plan,
                rollout.Options(wait=wait or resume is not None, poll=poll, timeout=timeout),
                show,
            )
        except (KeyboardInterrupt, Terminate) as exc:
            # Ctrl-C outside the journaled section (taking the lock, the first journal
            # row): the plan is saved, so it is resumed like any other stop (issue 31).
            sig = signal.SIGTERM if isinstance(exc, Terminate) else signal.SIGINT
            raise Interrupted(
                sig,
                f"interrupted: rollout {plan.rollout_id} stopped",
                hint=f"carry it on (or roll it back) with `amictl rollout --resume "
                f"{plan.rollout_id}`",
            ) from None
        finally:
            show.stop()  # type: ignore[attr-defined]
        data = {
            "rollout_id": plan.rollout_id,
            "family": plan.family,
            "channel": plan.channel,
            "version": plan.new_version,
            "status": out.status,
            "plan": plan.rows(),
            "groups": out.rows(),
        }
        rows = out.rows()
        emit(
            data,
            # a column no group has a value in says nothing (issue 31)
            [c for c in OUTCOME_COLUMNS if c in ("asg", "status") or any(r.get(c) for r in rows)],
            table_rows=rows,
            title=f"rollout {plan.rollout_id}: {out.status}",
        )
        if not out.ok:
            what = {
                "rolled-back": "every group was rolled back",
                "rollback-failed": "rolling back did NOT bring every group back",
            }.get(out.status, out.status)
            raise AmictlError(
                f"rollout {plan.rollout_id} failed and {what}; the channel {plan.channel} of "
                f"{plan.family} is unchanged",
                hint="see the status per group above and `amictl journal --plan "
                f"rollout-{plan.rollout_id}`",
            )

    @cli.command("drift")
    @click.option("--family", help="Only this family.")
    @click.option("--channel", help="Only this channel (default: every channel of the family).")
    @click.option(
        "--strict",
        type=click.IntRange(0),
        metavar="N",
        help="Exit 1 when anything runs more than N versions behind.",
    )
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def drift_cmd(
        family: str | None, channel: str | None, strict: int | None, from_state: bool
    ) -> None:
        """Instances, Auto Scaling groups and launch-template versions behind their channel.

        For each channel of each family (per account and region): everything that launches
        an older version of the family, with how many versions and days behind, grouped
        by family/account/region. -o json gives the groups; --strict N exits 1 when
        anything is more than N versions behind, 4 when part of the account could not be
        read (what was not read is said; -o json: complete, incomplete).
        """
        from ..errors import PartialFailure
        from ..model import FamilyRule
        from ..rollout import drift as drift_mod
        from .inventory_cmd import load_inventory

        inv = load_inventory(from_state, family_rule=FamilyRule())
        groups = drift_mod.drift(inv, family, channel)
        rows = drift_mod.rows(groups)
        worst = max((g["max_versions_behind"] for g in groups), default=0)
        missing = drift_mod.not_read(inv)  # issue 27: an incomplete read is never "0 behind"
        emit(
            {
                "groups": groups,
                "behind": len(rows),
                "max_versions_behind": worst,
                "complete": not missing,
                "incomplete": missing,
            },
            DRIFT_COLUMNS,
            table_rows=rows,
            title=f"{len(rows)} behind their channel, {plural(len(groups), 'channel')} checked",
        )
        if strict is not None and worst > strict:
            g = max(groups, key=lambda g: g["max_versions_behind"])
            raise AmictlError(
                f"something runs {plural(worst, 'version')} behind its channel (--strict {strict})",
                hint=f"roll the channel out: amictl rollout {g['family']} --channel {g['channel']}",
            )
        for line in missing:
            info(f"warning: {line}: what runs there was not checked")
        if strict is not None and missing:
            raise PartialFailure(
                f"drift --strict: {len(missing)} part(s) of the inventory could not be read: "
                "what runs there may be behind",
                hint="; ".join(missing[:3]),
            )


DRIFT_COLUMNS = [
    "family",
    "channel",
    "region",
    "kind",
    "id",
    "version",
    "channel_version",
    "versions_behind",
    "days_behind",
]
