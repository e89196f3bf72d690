"""The columns each listing exists for: never left out of its table (issue 23).

A table too wide for the terminal leaves out columns (empty ones first, then the lowest
value first, named on stderr), but never these: ``sharing`` without who it is shared with, or ``journal``
without when, would not answer what the command was run for. When the declared columns
cannot fit side by side, the listing is printed one record per block (like ``psql \\x``).

Keys are command paths as typed (``"state info"``); ``"ls --deprecated"`` adds columns when
that option is given; in :data:`INSTEAD`, an option that prints another listing declares
that listing's columns. A command printing several tables (``show``) keeps, in each, the
declared columns that table has. :func:`amictl.cli.common.emit` looks the running command up here;
tests/test_newcomer_cli.py runs every command with table output at 100 columns and checks that
each declared column is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

DECLARED: dict[str, tuple[str, ...]] = {
    # inventory
    "inventory": ("account", "region", "images", "snapshots", "references", "complete"),
    "ls": ("image_id", "name", "version"),
    "ls --unused": ("references",),
    "ls --shared": ("shared_with", "public"),
    "ls --deprecated": ("deprecation_time",),
    "ls --older-than": ("age_days",),
    "show": ("key", "value", "snapshot_id", "size_gib", "kind", "id", "detail", "image_id"),
    "refs": ("kind", "id", "detail"),
    "snapshots": ("snapshot_id", "region", "size_gib", "images", "origin"),
    "snapshots --orphaned": ("age_days",),
    # plans and apply (plan/apply print plan lines, not tables)
    "journal": ("at", "action_id", "type", "resource", "status"),
    # Recycle Bin
    "recycle-bin status": ("account", "region", "images", "snapshots"),
    "recycle-bin ensure": ("region", "resource_type", "status", "retention_days"),
    "recycle-bin ls": ("type", "id", "name", "days_left"),
    "recycle-bin restore": ("id", "type", "result"),
    # create, versions, channels
    "create from-instance": ("image_id", "name", "version", "state"),
    "create from-snapshot": ("image_id", "name", "version", "state", "snapshot_ids"),
    "versions": ("version", "regions", "channels", "state"),
    "promote": ("region", "channel", "version", "image_id", "previous_image_id", "status"),
    "rollback": ("region", "channel", "version", "image_id", "previous_image_id", "status"),
    "channels list": ("family", "channel", "region", "image_id", "version"),
    "channels history": ("channel", "version", "image_id", "by", "at", "place"),
    # distribution and launch
    "copy": ("source_image_id", "region", "image_id", "state"),
    "share": ("image_id", "region", "share"),
    "unshare": ("image_id", "region", "unshare"),
    "sharing": ("image_id", "name", "who"),
    "launch": ("instance_id", "image_id", "region"),
    # governance (their instance tables keep INSTANCE_KEYS of cli/governance_cmd.py)
    "allowed-images status": ("account", "region", "state", "criteria"),
    "allowed-images set": ("account", "region", "new_state", "criteria"),
    # rollout: which group, and what happened to it
    "rollout": ("region", "asg", "status", "to_replace", "new_version"),
    # conventions, catalog
    "lint": ("image_id", "name", "rule", "detail"),
    "catalog list": ("name", "description", "ssm_parameter"),
    "catalog find": ("region", "image_id", "name", "creation_date"),
    # cost, audit
    "cost": ("key", "images", "snapshots", "estimate_usd", "scanned_at"),
    "audit": ("severity", "check", "resource", "detail"),
    # state, sandbox
    "state info": ("key", "value"),
    "sandbox load": ("alias", "id"),
    # upkeep
    "bake": ("phase", "name", "status"),
    "stale": ("family", "kind", "image_id", "detail"),
}

# Options that make the command print another listing: its declared columns instead.
INSTEAD: dict[str, tuple[str, ...]] = {
    "audit --list-checks": ("id", "severity", "title"),
    "bake --dry-run": ("phase", "name", "document", "does"),
    "bake --cleanup": ("bake_id", "instance_id", "action", "reason"),
}


def declared(command: str, params: Mapping[str, Any] | None = None) -> list[str]:
    """The declared columns of ``command`` run with ``params`` (its option values)."""
    for key, instead in INSTEAD.items():
        cmd, _, opt = key.partition(" --")
        if cmd == command and (params or {}).get(opt.replace("-", "_")):
            return list(instead)
    cols = list(DECLARED.get(command, ()))
    for key, extra in DECLARED.items():
        cmd, sep, opt = key.partition(" --")
        if sep and cmd == command and (params or {}).get(opt.replace("-", "_")):
            cols += [c for c in extra if c not in cols]
    return cols


def command_path(ctx: click.Context) -> str:
    """``"state info"`` for ``amictl state info`` (the root's own name left out)."""
    return " ".join(ctx.command_path.split()[1:])


def declared_here() -> list[str]:
    """The declared columns of the command being run (none outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return []
    return declared(command_path(ctx), ctx.params)
