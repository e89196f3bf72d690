"""``notify PLAN``: tell each owner what the plan will do to their images (docs/cli.md)."""

from __future__ import annotations

import click

from .apply_cmd import read_plan
from .common import global_options
from .notices import notify_options, send_notices


def register(cli: click.Group) -> None:
    @cli.command("notify")
    @click.argument("plan_file", metavar="PLAN")
    @click.option("--dry-run", is_flag=True, help="Show each digest; send nothing.")
    @notify_options
    @global_options
    def notify_cmd(
        plan_file: str, dry_run: bool, config_path: str | None, conventions_file: str | None
    ) -> None:
        """Send each owner one digest of what PLAN does to their images and when each stage
        falls due, with the command that opts an image out. Exit 4 when one failed."""
        plan, _raw = read_plan(plan_file)
        send_notices(plan, config_path, conventions_file, dry_run)
