"""``approve PLAN``, ``approvals PLAN`` and ``approval-config``: second-person approvals of
destructive plans (docs/team.md)."""

from __future__ import annotations

import click
from rich.markup import escape

from ..approvals import ApprovalConfig, approve, live_status, load_config, save_config
from . import context
from .apply_cmd import read_plan
from .common import emit, global_options, info, settings


def register(cli: click.Group) -> None:
    @cli.command("approve")
    @click.argument("plan_file", metavar="PLAN")
    @click.option("--comment", help="Why (kept with the approval).")
    @global_options
    def approve_cmd(plan_file: str, comment: str | None) -> None:
        """Approve a plan: records your STS identity against the plan's checksum. The
        planner's own approval does not count; an edited plan has another checksum."""
        plan, _raw = read_plan(plan_file)
        store = context.store()
        conn = context.connector()
        arn = conn.identity()["arn"]
        new = approve(store, plan.checksum, arn, comment, load_config(store))
        st = live_status(store, plan, conn)
        if not new:
            info(f"{escape(arn)} had approved plan {plan.checksum[:12]} already")
        emit(st.to_dict() if settings().output != "table" else _row(st), _COLUMNS)

    @cli.command("approvals")
    @click.argument("plan_file", metavar="PLAN")
    @global_options
    def approvals_cmd(plan_file: str) -> None:
        """The plan's approvals, whether apply will accept it, and who may approve."""
        plan, _raw = read_plan(plan_file)
        st = live_status(context.store(), plan, context.connector())
        if settings().output != "table":
            emit(st.to_dict())
            return
        emit(_row(st), _COLUMNS)
        for a in st.approvals:
            mark = "" if a in st.counted else " (does not count)"
            info(f"  {escape(a.arn)} at {a.at}{mark}: {escape(a.comment or '')}")

    @cli.command("approval-config")
    @click.option(
        "--required",
        type=click.IntRange(0),
        help="Approvals a plan over a threshold needs (0: none).",
    )
    @click.option("--images", type=click.IntRange(0), help="More images deregistered than this.")
    @click.option("--snapshots", type=click.IntRange(0), help="More snapshots deleted than this.")
    @click.option("--gib", type=click.IntRange(0), help="More GiB of snapshots deleted than this.")
    @click.option(
        "--protected-family",
        "protected",
        multiple=True,
        metavar="GLOB",
        help="Any deregister in such a family.",
    )
    @click.option(
        "--approver",
        "approvers",
        multiple=True,
        metavar="ARN-GLOB",
        help="Who may approve (default: anyone but the planner).",
    )
    @global_options
    def config_cmd(
        required: int | None,
        images: int | None,
        snapshots: int | None,
        gib: int | None,
        protected: tuple[str, ...],
        approvers: tuple[str, ...],
    ) -> None:
        """Show or set the team's approval thresholds (kept in the state store)."""
        store = context.store()
        cur = load_config(store)
        if any(v is not None for v in (required, images, snapshots, gib)) or protected or approvers:
            cur = ApprovalConfig(
                required=cur.required if required is None else required,
                images=cur.images if images is None else images,
                snapshots=cur.snapshots if snapshots is None else snapshots,
                gib=cur.gib if gib is None else gib,
                protected_families=protected or cur.protected_families,
                approvers=approvers or cur.approvers,
            )
            save_config(store, cur, context.connector().identity()["arn"])
        emit(cur.to_dict())


_COLUMNS = ["checksum", "needed", "required", "counted", "approved", "planner", "who_may_approve"]


def _row(st: object) -> dict[str, object]:
    d = st.to_dict()  # type: ignore[attr-defined]
    return {k: d[k] for k in _COLUMNS} | {"checksum": d["checksum"][:12]}
