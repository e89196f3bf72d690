"""``recycle-bin status|ensure|ls|restore``: make deletions recoverable, and recover them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .. import recyclebin
from ..aws.session import Target
from ..durations import parse_duration, plural
from ..errors import AmictlError, InputError, PartialFailure
from . import context
from .common import emit, err_console, global_options, info, settings

T = TypeVar("T")

LS_COLUMNS = [
    "account",
    "region",
    "type",
    "id",
    "name",
    "image_id",
    "recycle_bin_enter_time",
    "retention_end_time",
    "days_left",
]
ENSURE_COLUMNS = [
    "account",
    "region",
    "resource_type",
    "status",
    "rule_id",
    "retention_days",
    "scope",
    "tags",
    "rule_status",
]


def parse_retention(text: str) -> int:
    """``7d``, ``2w`` -> whole days in 1..365; InputError (exit 2) otherwise."""
    try:
        td = parse_duration(text)
    except ValueError as exc:
        raise InputError(str(exc), key="--retention") from None
    if td % dt.timedelta(days=1):
        raise InputError(
            f"{text!r} is not a whole number of days (Recycle Bin retention is in days)",
            key="--retention",
        )
    days = td.days
    if not recyclebin.MIN_DAYS <= days <= recyclebin.MAX_DAYS:
        raise InputError(
            f"{text!r}: retention must be {recyclebin.MIN_DAYS} to {recyclebin.MAX_DAYS} days "
            "(the AWS limit for snapshots and AMIs)",
            key="--retention",
        )
    return days


def parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    """``k=v`` pairs -> dict; InputError (exit 2) for anything else."""
    out: dict[str, str] = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected KEY=VALUE, got {v!r}", key="--tag")
        out[key.strip()] = value.strip()
    return out


def _each(targets: list[Target], fn: Callable[[Target], T]) -> tuple[list[T], list[AmictlError]]:
    """Run ``fn`` per target; AWS errors are printed and collected, not fatal at once."""
    done: list[T] = []
    errors: list[AmictlError] = []
    for t in targets:
        try:
            done.append(fn(t))
        except InputError:
            raise
        except AmictlError as exc:
            err_console().print(
                f"[bold red]error:[/] {t.account} {t.region}: {exc.message}",
                markup=True,
                highlight=False,
            )
            errors.append(exc)
    return done, errors


def _finish(errors: list[AmictlError], total: int) -> None:
    if not errors:
        return
    if len(errors) == total:
        raise errors[0]
    raise PartialFailure(
        f"{len(errors)} of {total} account/regions failed (see above); the others were done",
        hint=errors[0].hint,
    )


def register(cli: click.Group) -> None:
    @cli.group("recycle-bin")
    @global_options
    def recycle_bin() -> None:
        """Recycle Bin: make deregistered AMIs and deleted snapshots recoverable, and recover them.

        Retention rules keep a deleted resource for a number of days, during which it can
        be restored. `status` says what the rules of each account/region keep, `ensure`
        creates the rules, `ls` lists the bin, `restore` brings an AMI or snapshot back.
        """

    @recycle_bin.command("status")
    @global_options
    def status_cmd() -> None:
        """Per account/region: whether deregistered images and deleted snapshots are recoverable, how long."""
        conn = context.connector()
        covs = [recyclebin.coverage(conn, t) for t in conn.targets()]
        rows = [
            {
                "account": c.account,
                "region": c.region,
                "images": c.images.short(),
                "snapshots": c.snapshots.short(),
            }
            for c in covs
        ]
        emit(
            [c.to_dict() for c in covs],
            ["account", "region", "images", "snapshots"],
            "Recycle Bin",
            rows,
        )
        for c in covs:
            for rc in (c.images, c.snapshots):
                if rc.scope == "unknown":
                    info(f"{c.account} {c.region}: {rc.describe()}")
        if any(c.recoverable is False for c in covs):
            info(
                "hint: `amictl recycle-bin ensure --retention 7d` keeps both for 7 days, region-wide"
            )

    @recycle_bin.command("ensure")
    @click.option(
        "--retention",
        required=True,
        help="How long deleted resources stay recoverable: whole days, 1d..365d (or Nw).",
    )
    @click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="KEY=VALUE",
        help="Keep only resources with this tag (repeat: any one of them); default: region-wide.",
    )
    @global_options
    def ensure_cmd(retention: str, tags: tuple[str, ...]) -> None:
        """Create (if missing) a retention rule for AMIs and one for snapshots in every account/region.

        A rule that already keeps the same resources at least as long is reused. Resources
        in the bin are billed as ordinary snapshots until their retention ends.
        """
        days = parse_retention(retention)
        want = parse_tags(tags)
        conn = context.connector()
        targets = conn.targets()
        results, errors = _each(targets, lambda t: recyclebin.ensure(conn, t, days, want))
        rows = [r for rs in results for r in rs]
        emit(rows, ENSURE_COLUMNS, "Recycle Bin rules")
        created = sum(r["status"] == "created" for r in rows)
        info(f"{plural(created, 'rule')} created, {len(rows) - created} already in place")
        if any(r["rule_status"] == "pending" for r in rows):
            info("note: an account's first rule can take up to 30 minutes to become active")
        _finish(errors, len(targets))

    @recycle_bin.command("ls")
    @global_options
    def ls_cmd() -> None:
        """Images and snapshots in the Recycle Bin, when they entered it and when their retention ends."""
        conn = context.connector()
        targets = conn.targets()
        results, errors = _each(targets, lambda t: recyclebin.list_bin(conn, t))
        rows = [r for rs in results for r in rs]
        emit(rows, LS_COLUMNS, "Recycle Bin")
        if not rows and settings().output == "table":
            info("the Recycle Bin is empty")
        _finish(errors, len(targets))

    @recycle_bin.command("restore")
    @click.argument("resource_id", metavar="ID")
    @global_options
    def restore_cmd(resource_id: str) -> None:
        """Restore an AMI (ami-…, with its snapshots in the bin) or a snapshot (snap-…) from the Recycle Bin.

        Looks in every account/region of the global options and restores where it is.
        """
        recyclebin.kind_of(resource_id)  # exit 2 before any AWS call
        conn = context.connector()
        targets = conn.targets()
        misses: list[recyclebin.NotInRecycleBin] = []
        failures: list[AmictlError] = []
        for t in targets:
            try:
                res = recyclebin.restore(conn, t, resource_id)
            except recyclebin.NotInRecycleBin as exc:
                misses.append(exc)
                continue
            except InputError:
                raise
            except AmictlError as exc:
                failures.append(exc)
                continue
            _show_restore(res)
            return
        if failures:
            raise failures[0]
        registered = [m for m in misses if "not deleted" in m.message]
        if registered:
            raise registered[0]
        if len(misses) == 1:
            raise misses[0]
        where = ", ".join(f"{t.account}/{t.region}" for t in targets)
        raise recyclebin.NotInRecycleBin(
            f"{resource_id.strip()} is not in the Recycle Bin of {where}",
            hint=misses[0].hint if misses else None,
        )


def _show_restore(res: dict[str, Any]) -> None:
    rows = [
        {
            "account": res["account"],
            "region": res["region"],
            "id": rid,
            "type": "image" if rid.startswith("ami-") else "snapshot",
            "result": "restored",
        }
        for rid in res["restored"]
    ] + [
        {
            "account": res["account"],
            "region": res["region"],
            "id": sid,
            "type": "snapshot",
            "result": "GONE (cannot be restored)",
        }
        for sid in res["missing_snapshots"]
    ]
    emit(res, ["account", "region", "id", "type", "result"], "restored", rows)
    for w in res["warnings"]:
        err_console().print(f"[yellow]warning:[/] {w}", markup=True, highlight=False)
