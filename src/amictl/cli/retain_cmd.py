"""``retain`` (put the policy's retain rules in place: snapshot locks, images stored to S3)
and ``restore`` (a stored image back to a launchable image)."""

from __future__ import annotations

import datetime as dt

import click
from rich.markup import escape

from ..aws.session import Target
from ..errors import InputError, PartialFailure
from ..policy import load_policy
from ..retention import apply_steps, restore_image, retain_steps
from . import context
from .common import emit, global_options, info
from .inventory_cmd import load_inventory

COLUMNS = ["action", "rule", "account", "region", "image_id", "resource", "detail", "status"]


def register(cli: click.Group) -> None:
    @cli.command("retain")
    @click.option("--policy", "policy_path", required=True, metavar="FILE")
    @click.option("--dry-run", is_flag=True, help="Show the steps; change nothing.")
    @global_options
    def retain_cmd(policy_path: str, dry_run: bool) -> None:
        """Put the policy's `retain` rules in place: lock the snapshots of each version a
        rule names (governance or compliance mode), or store the image to S3. A compliance
        lock already there is never touched. Exit 4 when a step failed."""
        policy = load_policy(policy_path)
        if not policy.retain:
            raise InputError(f"{policy_path} has no retain rules", key="retain")
        inv = load_inventory()
        steps = retain_steps(inv, policy, dt.datetime.now(dt.UTC))
        if not dry_run and steps:
            conn = context.connector()
            roles = {t.account: t.role_arn for t in conn.targets()}
            apply_steps(conn, steps, policy, roles)
        emit([s.to_dict() for s in steps], COLUMNS, title=f"{len(steps)} retention step(s)")
        failed = [s for s in steps if s.status == "failed"]
        for s in failed:
            info(f"[red]failed:[/] {escape(s.detail)}: {escape(s.error)}")
        if failed:
            raise PartialFailure(f"{len(failed)} of {len(steps)} retention step(s) failed")
        if not steps:
            info("every retain rule is in place")

    @cli.command("restore")
    @click.option("--bucket", required=True, help="The S3 bucket the image was stored to.")
    @click.option("--key", "object_key", required=True, help="Its object key (ami-....bin).")
    @click.option("--name", help="The restored image's name (default: the stored one's).")
    @global_options
    def restore_cmd(bucket: str, object_key: str, name: str | None) -> None:
        """Restore an image stored to S3 (CreateRestoreImageTask) in the first region."""
        conn = context.connector()
        t = conn.targets()[0]
        image_id = restore_image(
            conn, Target(t.account, t.region, t.role_arn), bucket, object_key, name
        )
        emit(
            {
                "image_id": image_id,
                "account": t.account,
                "region": t.region,
                "bucket": bucket,
                "key": object_key,
            }
        )
