"""``versions``, ``promote``, ``rollback``, ``channels``: versions and release channels."""

from __future__ import annotations

import datetime as dt

import click

from .. import channels
from ..aws.session import Connector, Target
from ..creation import bake_journal
from ..durations import plural
from ..errors import AmictlError
from ..model import FamilyRule
from . import context
from .common import emit, global_options, info
from .inventory_cmd import load_inventory

VERSION_COLUMNS = [
    "version",
    "regions",
    "image_ids",
    "state",
    "age_days",
    "channels",
    "size_gib",
    "monthly_cost_usd",
    "deprecation_time",
    "findings",
    "revoked",
    "source_image",
    "recipe",
]
CHANGE_COLUMNS = [
    "region",
    "account",
    "channel",
    "version",
    "image_id",
    "previous_image_id",
    "parameter_version",
    "status",
]
CHANNEL_COLUMNS = [
    "family",
    "channel",
    "region",
    "account",
    "image_id",
    "version",
    "state",
    "deprecated",
    "updated_at",
]


HISTORY_COLUMNS = [
    "channel",
    "region",
    "parameter_version",
    "version",
    "image_id",
    "by",
    "at",
    "place",
    "state",
]


def _caller(conn: Connector, targets: list[Target]) -> str | None:
    try:
        return conn.identity(targets[0].role_arn if targets else None)["arn"]
    except AmictlError:  # the record is still useful without it
        return None


def register(cli: click.Group) -> None:
    @cli.command("versions")
    @click.argument("family")
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def versions_cmd(family: str, from_state: bool) -> None:
        """Every owned version of FAMILY across the scanned regions, oldest first.

        One row per version (copies in several regions are one row): regions and image
        ids, state, age, the channels pointing at it, size GiB, monthly cost, deprecation.
        """
        inv = load_inventory(from_state, family_rule=FamilyRule())
        rows = channels.versions(inv, family, dt.datetime.now(dt.UTC))
        from ..creation.bake import lineage_of

        for row in rows:  # what a bake recorded: recipe hash, source image (first copy's)
            tags = inv.by_id[row["image_ids"][0]].tags
            lin = lineage_of(tags) or {}
            row["source_image"] = lin.get("source_image") or tags.get("amictl:source-image")
            row["recipe_sha256"] = lin.get("recipe_sha256")
            row["recipe"] = (lin.get("recipe_sha256") or "")[:12] or None
            row["bake"] = lin or None
        emit(rows, VERSION_COLUMNS, title=f"family {family}: {plural(len(rows), 'version')}")
        if not rows:
            info(f"no owned image of family {family} in {', '.join(inv.regions)}")

    @cli.command("promote")
    @click.argument("family")
    @click.argument("version")
    @click.option("--channel", required=True, help="The channel to point at the version.")
    @click.option(
        "--gates",
        "gates_file",
        type=click.Path(dir_okay=False),
        help="YAML file of promotion gates per channel (requires_channel, min_days_in, requires_tag).",
    )
    @global_options
    def promote_cmd(family: str, version: str, channel: str, gates_file: str | None) -> None:
        """Point channel C of FAMILY at VERSION in every region (SSM /amictl/channels/FAMILY/C).

        Refuses (exit 3) when the version is missing in a region, deprecated, disabled or
        not available, or when the channel's gate is closed; nothing is written then.
        Each change is recorded in the state store.
        """
        gates = (
            channels.load_gates(gates_file, bake_journal.lookup(context.store()))
            if gates_file
            else None
        )
        channels.parameter_name(family, channel)  # bad names: exit 2 before any AWS call
        conn = context.connector()
        targets = conn.targets()
        rows = channels.promote(conn, targets, family, version, channel, gates)
        channels.record(context.store(), rows, "promote", _caller(conn, targets))
        emit(rows, CHANGE_COLUMNS, title=f"{family} {version} -> channel {channel}")

    @cli.command("rollback")
    @click.argument("family")
    @click.option("--channel", required=True, help="The channel to set back.")
    @click.option(
        "--to",
        "to_version",
        metavar="VERSION",
        help="Jump back to this version (one of the channel's earlier releases).",
    )
    @click.option(
        "--gates",
        "gates_file",
        type=click.Path(dir_okay=False),
        help="YAML file of promotion gates per channel: a rollback must pass them too.",
    )
    @click.option(
        "--skip-gates",
        metavar="REASON",
        help="Roll back although the channel's gate is closed; the reason is recorded.",
    )
    @global_options
    def rollback_cmd(
        family: str,
        channel: str,
        to_version: str | None,
        gates_file: str | None,
        skip_gates: str | None,
    ) -> None:
        """Set channel C of FAMILY one release back (or back to --to VERSION).

        The channel's releases come from its parameter history: each rollback goes one
        step further back (see `amictl channels history FAMILY`). The target is re-checked
        like a promotion: this account's own image of FAMILY, available, not a failed bake;
        refuses (exit 3) otherwise, or when the gate is closed (unless --skip-gates REASON).
        Each change is recorded in the state store.
        """
        channels.parameter_name(family, channel)
        if skip_gates is not None and not skip_gates.strip():
            raise click.BadParameter("give the reason", param_hint="--skip-gates")
        gates = channels.load_gates(gates_file) if gates_file else None
        conn = context.connector()
        targets = conn.targets()
        rows = channels.rollback(
            conn,
            targets,
            family,
            channel,
            to_version=to_version,
            gates=gates,
            skip_gates=skip_gates,
        )
        channels.record(context.store(), rows, "rollback", _caller(conn, targets))
        emit(rows, CHANGE_COLUMNS, title=f"channel {channel} of {family} rolled back")
        for r in rows:
            if r.get("deprecated"):
                info(f"warning: {r['region']}: {r['image_id']} is deprecated")
        if skip_gates:
            info(f"gates skipped: {skip_gates}")

    class ChannelsGroup(click.Group):
        """`channels [FAMILY]` lists; `channels history FAMILY` shows the history."""

        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
                args = ["list", *args]
            return super().parse_args(ctx, args)

    @cli.group("channels", cls=ChannelsGroup)
    def channels_group() -> None:
        """Release channels: `channels [FAMILY]` lists them, `channels history FAMILY` shows
        every value a channel took."""

    @channels_group.command("list")
    @click.argument("family", required=False)
    @global_options
    def channels_cmd(family: str | None) -> None:
        """Every release channel (of FAMILY): region, image id, version, when it was updated."""
        conn = context.connector()
        rows = channels.list_channels(conn, conn.targets(), family)
        emit(rows, CHANNEL_COLUMNS, title=plural(len(rows), "channel"))

    @channels_group.command("history")
    @click.argument("family")
    @click.option("--channel", help="Only this channel.")
    @global_options
    def history_cmd(family: str, channel: str | None) -> None:
        """Every value the channels of FAMILY took, oldest first: version, promote or
        rollback, when, by whom, and its place now (current, or N rollbacks back)."""
        if channel:
            channels.parameter_name(family, channel)
        conn = context.connector()
        rows = channels.channel_history(conn, conn.targets(), family, channel)
        emit(rows, HISTORY_COLUMNS, title=f"history of the channels of {family}")
