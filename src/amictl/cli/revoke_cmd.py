"""``revoke``: pull a version and everything derived from it; ``unrevoke``: undo it."""

from __future__ import annotations

from typing import Any

import click

from .. import revoke
from ..errors import AmictlError, InputError
from ..findings import check_severity
from . import context
from .common import emit, global_options, info, print_table, settings
from .confirm import ask

TREE_COLUMNS = ["tree", "region", "family", "version", "state", "how"]
CHANNEL_COLUMNS = [
    "family",
    "channel",
    "region",
    "version",
    "new_version",
    "new_image_id",
    "status",
]
FINDINGS_COLUMNS = ["family", "image_id", "detail"]
IN_USE_COLUMNS = ["region", "kind", "id", "image_id", "rollout"]
ALLOWED_COLUMNS = ["account", "region", "diff", "kept", "would_be_noncompliant"]


def _show(plan: revoke.RevokePlan, results: dict[str, Any] | None = None) -> None:
    data = {
        "revoke_id": plan.revoke_id,
        "ref": plan.ref,
        "reason": plan.reason,
        "caller": plan.caller,
        "at": plan.at,
        "tree": plan.tree,
        "images": plan.images,
        "channels": plan.channels,
        "channels_left": plan.left_channels(),
        "allowed_images": plan.allowed,
        "still_running": plan.in_use,
        "steps": results,
    }
    if plan.findings:
        data["findings"] = plan.findings
    if settings().output != "table":
        emit(data)
        return
    if plan.findings:
        print_table(plan.findings, FINDINGS_COLUMNS, title=f"revoke {plan.ref}: the channel images")
    print_table(plan.tree, TREE_COLUMNS, title=f"revoke {plan.ref}: {len(plan.tree)} images")
    print_table(plan.channels, CHANNEL_COLUMNS, title="channels on a revoked image")
    if plan.allowed:
        rows = [
            {
                **a,
                "diff": "; ".join(a["diff"]),
                "kept": ", ".join(k["image_id"] for k in a["kept"]),
                "would_be_noncompliant": ", ".join(
                    r["instance_id"] for r in a["would_be_noncompliant"]
                ),
            }
            for a in plan.allowed
        ]
        print_table(rows, ALLOWED_COLUMNS, title="Allowed AMIs criteria recomputed")
    print_table(plan.in_use, IN_USE_COLUMNS, title="still launching a revoked image")


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    ask(yes, question, "act", "review what is shown above, then pass --yes")


def register(cli: click.Group) -> None:
    @cli.command("revoke")
    @click.argument("ref", required=False, metavar="FAMILY@VERSION|AMI")
    @click.option("--reason", help="Why: written on every revoked image (amictl:revoked).")
    @click.option("--disable", is_flag=True, help="Also disable each revoked image.")
    @click.option(
        "--gates",
        "gates_file",
        type=click.Path(dir_okay=False),
        help="Promotion gates per channel.",
    )
    @click.option("--skip-gates", metavar="REASON", help="Move channels without their gates.")
    @click.option("--from-state", is_flag=True, help="Use the last stored inventory.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--resume", is_flag=True, help="Carry on the last interrupted revocation.")
    @click.option(
        "--findings",
        metavar="SEVERITY",
        help="Instead of REF: every channel image with Amazon Inspector findings of at least "
        "SEVERITY (low|medium|high|critical).",
    )
    @global_options
    def revoke_cmd(
        ref: str | None,
        reason: str | None,
        disable: bool,
        gates_file: str | None,
        skip_gates: str | None,
        from_state: bool,
        yes: bool,
        resume: bool,
        findings: str | None,
    ) -> None:
        """Revoke FAMILY@VERSION (or an AMI) and every image derived from it.

        Finds the copies and the images built from it in every account and region read
        (lineage, copy descriptions, watermarks, GetImageAncestry) to a fixed point and shows
        the tree.
        Then tags each image amictl:revoked (reason, time, caller), deprecates it now
        (--disable: disables it), moves each channel on a revoked image back to the newest
        version that is not revoked and passes its gates (a channel with none is left and
        reported), recomputes Allowed AMIs criteria made by `allowed-images set
        --from-channels`, and lists what still launches a revoked image with the rollout
        that would move it. launch, promote, rollback, bake and rollout refuse revoked
        images. --findings SEVERITY revokes instead every channel image with Amazon
        Inspector findings of at least SEVERITY (listed first; never-scanned images are
        not revoked). Journaled under the apply lock: --resume carries on after Ctrl-C (130),
        SIGTERM (143) or a kill; `amictl unrevoke` undoes it.
        """
        store = context.store()
        conn = context.connector()
        if resume:
            plan = revoke.load_plan(store, unfinished=True)
            if plan is None:
                raise AmictlError("no interrupted revocation to resume")
            info(f"resuming revocation {plan.revoke_id} of {plan.ref}")
        else:
            if findings is not None:
                if ref:
                    raise InputError("give REF or --findings, not both", key="--findings")
                findings = check_severity(findings, "--findings")
                ref = f"--findings {findings}"
                reason = reason or f"Amazon Inspector findings of at least {findings}"
            if not ref:
                raise InputError("give FAMILY@VERSION or an AMI id (or --resume)", key="REF")
            if not reason or not reason.strip():
                raise InputError("say why with --reason TEXT", key="--reason")
            if skip_gates is not None and not skip_gates.strip():
                raise click.BadParameter("give the reason", param_hint="--skip-gates")
            from ..channels import load_gates
            from ..creation import bake_journal
            from .inventory_cmd import load_inventory

            gates = load_gates(gates_file, bake_journal.lookup(store)) if gates_file else None
            inv = load_inventory(from_state)
            plan = revoke.make_plan(
                conn,
                inv,
                ref,
                reason.strip(),
                disable=disable,
                gates=gates,
                skip_gates=skip_gates,
                findings=findings,
            )
            if findings and not plan.images:
                info(f"no channel image has findings of at least {findings}: nothing to revoke")
                if settings().output != "table":
                    _show(plan)
                return
            if settings().output == "table":
                _show(plan)  # the tree and every change, before acting
            left = plan.left_noncompliant()
            for line in left:
                info(f"[yellow]Allowed AMIs: {line}[/]")
            more = f", leaving the {len(left)} above non-compliant" if left else ""
            _confirm(yes, f"Revoke {len(plan.images)} images{more}?")
            revoke.save_plan(store, plan)
        results = revoke.execute(conn, store, plan, info)
        if settings().output != "table":
            _show(plan, results)
        for c in plan.left_channels():
            info(
                f"[yellow]channel {c['channel']} of {c['family']} in {c['region']} still "
                f"points at revoked {c['image_id']}: {c['status']}[/]"
            )
        info(f"revocation {plan.revoke_id} done; `amictl unrevoke {plan.revoke_id}` undoes it")

    @cli.command("unrevoke")
    @click.argument("revoke_id", required=False)
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @global_options
    def unrevoke_cmd(revoke_id: str | None, yes: bool) -> None:
        """Undo a revocation (the newest, or REVOKE_ID) exactly, from its journal.

        Restores each channel revoke moved (when it still holds what revoke put there),
        the Allowed AMIs criteria, each image's deprecation and state, and removes the
        amictl:revoked tags. Re-run it after an interruption: done steps are skipped.
        """
        store = context.store()
        conn = context.connector()
        plan = revoke.load_plan(store, revoke_id)
        if plan is None:
            raise AmictlError(
                f"no revocation {revoke_id or ''} in the journal".replace("  ", " "),
                hint="`amictl journal` lists them (plan keys revoke-...)",
            )
        revoke.check_not_undone(store, plan)
        _confirm(yes, f"Undo revocation {plan.revoke_id} of {plan.ref}?")
        results = revoke.unrevoke(conn, store, plan, conn.identity()["arn"], info)
        rows = [{"step": k, **v} for k, v in results.items()]
        emit(
            {"revoke_id": plan.revoke_id, "ref": plan.ref, "steps": results},
            ["step", "from", "to", "skipped", "already"],
            table_rows=rows,
            title=f"unrevoke {plan.revoke_id} ({plan.ref})",
        )
