"""``deprecate``, ``disable``, ``retire``, ``tag``: one image at a time, through the checked
path of a plan (a one-action plan: the live decision, the journal, the lock, ``--yes``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.markup import escape

from ..apply.executor import ApplyOptions, describe_coverage, execute, prepare, unrecoverable
from ..apply.single import single_plan, way_out
from ..apply.trust import own_signature
from ..approvals import require_for_single
from ..aws.session import aws_error
from ..durations import parse_duration
from ..errors import AmictlError, InputError, PartialFailure, SafetyError
from ..keep import released_holds
from ..launch.run import parse_tags
from ..model import iso, parse_time
from ..tagnames import check_user_tags
from . import context
from .common import emit, err_console, global_options, info, settings
from .confirm import ask


def _target(conn: Any) -> Any:
    targets = conn.targets()
    if len(targets) != 1:
        raise click.UsageError("give one --region (and at most one --role-arn)")
    return targets[0]


def _future(text: str) -> dt.datetime:
    """``--at``: an ISO 8601 time or a duration from now, in the future (exit 2 otherwise:
    an empty value, a time that does not exist in UTC such as year 1 at +14:00, the past)."""
    now = dt.datetime.now(dt.UTC)
    if not text.strip():
        raise InputError("empty: give an ISO 8601 time or a duration (30d)", key="--at")
    try:
        at = now + parse_duration(text)
    except (ValueError, OverflowError):
        try:
            at = parse_time(text) or now
            at = at.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            raise InputError(
                f"{text!r} is neither an ISO 8601 time (in UTC's range) nor a duration (30d)",
                key="--at",
            ) from None
    if at <= now + dt.timedelta(minutes=1):
        raise InputError(f"{iso(at)} is not in the future", key="--at")
    return at.replace(second=0, microsecond=0)


def _run(
    image_id: str,
    stage: str,
    yes: bool,
    snapshots: str = "keep",
    deprecate_at: dt.datetime | None = None,
) -> None:
    conn = context.connector()
    target = _target(conn)
    store = context.store()
    plan = single_plan(conn, target, image_id.strip(), stage, snapshots)
    store.save_plan(plan.checksum, plan.to_dict())
    require_for_single(store, plan, conn, f"{stage} {image_id.strip()}")
    con = err_console()
    table = settings().output == "table"
    if table:
        for a in plan.actions:
            con.print(
                f"  {escape(a.id):<4} {a.type:<16} {escape(a.snapshot_id or a.image_id or '')}"
                f"  [dim]{escape((a.reasons or ('',))[-1])}[/]"
            )
    opts = ApplyOptions(max_destroy=1, allow_whole_family=True, workers=1, every_region=True)
    prep = prepare(conn, plan, opts, store)
    prep.signature, prep.key = own_signature(store, plan.checksum)  # for --resume
    # What deleting costs, as apply says it (issue 31): recoverable or NOT.
    for where, c in sorted(prep.recycle_bin.items()):
        info(f"recovery (Recycle Bin) {where}: {describe_coverage(c)}")
    lost = unrecoverable(prep.recycle_bin)
    warn = f" Deletions in {', '.join(lost)} are NOT recoverable." if lost else ""
    if lost:
        info(
            f"[yellow]warning:[/] deletions in {escape(', '.join(lost))} are NOT recoverable "
            "(no Recycle Bin rule keeps them: `amictl recycle-bin ensure --retention 7d`)"
        )
    ask(yes, f"{stage} {image_id} ({len(plan.actions)} actions)?{warn}", "act")
    result = execute(conn, store, prep, opts)
    status = {
        **dict.fromkeys(result.done, "done"),
        **dict.fromkeys(result.skipped, "skipped"),
        **dict.fromkeys(result.failed, "failed"),
        **dict.fromkeys(result.not_found, "not-found"),
    }
    rows = [
        {
            "id": a.id,
            "type": a.type,
            "resource": a.snapshot_id or a.image_id,
            "status": status.get(a.id, "not started"),
            "message": result.skipped.get(a.id) or result.failed.get(a.id) or "",
        }
        for a in plan.actions
    ]
    emit(rows, ["id", "type", "resource", "status", "message"], title=f"{stage} {image_id}")
    if result.failed:
        raise PartialFailure(f"{len(result.failed)} actions failed", hint="see `amictl journal`")
    mains = [a for a in plan.actions if a.type == stage]
    if any(a.id in result.skipped for a in mains):
        why = [result.skipped[a.id] for a in mains if a.id in result.skipped]
        raise SafetyError(
            f"{stage} of {image_id} was refused by the live re-check: " + "; ".join(why),
            hint=way_out(image_id, stage, [r for w in why for r in w.split("; ")]),
        )
    if deprecate_at is not None and all(a.id in result.done for a in mains):
        # deprecated through the checked path; now moved to the time asked for (later)
        target = _target(conn)
        ec2 = conn.client("ec2", target.region, target.role_arn)
        try:
            ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=deprecate_at)
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, "EnableImageDeprecation", target.region) from None
        info(f"{image_id} is deprecated at {iso(deprecate_at)}")


def register(cli: click.Group) -> None:
    yes_opt = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")

    @cli.command("deprecate")
    @click.argument("image_id", metavar="AMI")
    @click.option(
        "--at",
        "at",
        metavar="TIME",
        help="Deprecate at this later time instead (ISO 8601, or a duration from now: 30d).",
    )
    @yes_opt
    @global_options
    def deprecate_cmd(image_id: str, at: str | None, yes: bool) -> None:
        """Deprecate one image now, or --at a later time (a one-action plan: live re-check,
        journal).

        Refused (exit 3) when anything keeps it: in use, shared, a channel or its recent
        history, a hold, an image built from it. Marks it `amictl:retired-by=amictl-cli`.
        """
        when = _future(at) if at is not None else None
        _run(image_id, "deprecate", yes, deprecate_at=when)

    @cli.command("disable")
    @click.argument("image_id", metavar="AMI")
    @yes_opt
    @global_options
    def disable_cmd(image_id: str, yes: bool) -> None:
        """Disable one image (a one-action plan: live re-check, journal); refused when kept."""
        _run(image_id, "disable", yes)

    @cli.command("retire")
    @click.argument("image_id", metavar="AMI")
    @click.option(
        "--snapshots",
        type=click.Choice(["delete", "keep", "archive"]),
        default="keep",
        show_default=True,
        help="What to do with its snapshots that no other image uses.",
    )
    @yes_opt
    @global_options
    def retire_cmd(image_id: str, snapshots: str, yes: bool) -> None:
        """Deregister one image (a one-action plan: live re-check, journal); refused when kept."""
        _run(image_id, "deregister", yes, snapshots)

    @cli.command("tag")
    @click.argument("image_id", metavar="AMI")
    @click.argument("pairs", nargs=-1, required=True, metavar="K=V...")
    @click.option(
        "--release-hold",
        is_flag=True,
        help="Accept that the new tags release a hold (legal-hold=false, an earlier retain-until).",
    )
    @global_options
    def tag_cmd(image_id: str, pairs: tuple[str, ...], release_hold: bool) -> None:
        """Tag an image and its snapshots (keys in the amictl: namespace are refused).

        A change that releases a hold (legal-hold=false, retain-until in the past or not a
        date) is refused (exit 3) unless --release-hold says it is meant."""
        tags = parse_tags(pairs)
        check_user_tags(tags, "K=V")
        conn = context.connector()
        target = _target(conn)
        ec2 = conn.client("ec2", target.region, target.role_arn)
        from ..inventory.lookup import describe_image

        img = describe_image(ec2, image_id)
        if img is None or img.get("OwnerId") != target.account:
            raise AmictlError(f"{image_id} is not an image this account owns in {target.region}")
        current = {t["Key"]: t["Value"] for t in img.get("Tags") or []}
        released = released_holds(current, tags, dt.datetime.now(dt.UTC))
        if released and not release_hold:
            raise SafetyError(
                f"tagging {image_id} with {', '.join(f'{k}={v}' for k, v in tags.items())} "
                f"would release its hold ({'; '.join(released)}): nothing was tagged",
                hint="pass --release-hold if the hold is to end",
            )
        for r in released:
            info(f"warning: {image_id}: released: {r}")
        snaps = [
            m["Ebs"]["SnapshotId"]
            for m in img.get("BlockDeviceMappings", []) or []
            if (m.get("Ebs") or {}).get("SnapshotId")
        ]
        ec2.create_tags(
            Resources=[image_id, *snaps], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
        emit(
            [{"resource": r, "tags": tags} for r in [image_id, *snaps]],
            ["resource", "tags"],
            title=f"tagged {image_id}",
        )
        info(f"tagged {image_id} and {len(snaps)} snapshots")
