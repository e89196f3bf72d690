"""``launch``: run instances from FAMILY@VERSION, FAMILY@CHANNEL or an AMI id."""

from __future__ import annotations

from pathlib import Path

import click

from .. import launch as launching
from ..errors import InputError
from . import context
from .common import emit, global_options, info, settings


def register(cli: click.Group) -> None:
    @cli.command("launch")
    @click.argument("ref", metavar="FAMILY@VERSION|FAMILY@CHANNEL|AMI")
    @click.option("--type", "instance_type", required=True, metavar="T", help="Instance type.")
    @click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
    @click.option("--subnet", metavar="S", help="Subnet id.")
    @click.option(
        "--security-group",
        "security_groups",
        multiple=True,
        metavar="G",
        help="Security group id (repeat).",
    )
    @click.option("--key", "key_name", metavar="K", help="Key pair name.")
    @click.option(
        "--user-data",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        metavar="FILE",
        help="User data file (at most 16 KiB).",
    )
    @click.option("--tag", "tags", multiple=True, metavar="K=V", help="Extra tag (repeat).")
    @click.option(
        "--allow-deprecated", is_flag=True, help="Launch even a deprecated or disabled image."
    )
    @click.option("--dry-run", is_flag=True, help="Ask AWS whether it would work; launch nothing.")
    @click.option(
        "--allow-failed-bake",
        is_flag=True,
        help="Launch an image whose bake failed, was abandoned or is building (to debug it).",
    )
    @global_options
    def launch_cmd(
        ref: str,
        instance_type: str,
        count: int,
        subnet: str | None,
        security_groups: tuple[str, ...],
        key_name: str | None,
        user_data: Path | None,
        tags: tuple[str, ...],
        allow_deprecated: bool,
        dry_run: bool,
        allow_failed_bake: bool,
    ) -> None:
        """Run instances from exactly one image, tagged with its family, version and id.

        FAMILY@VERSION is the owned image with those tags in the region; otherwise the
        token is a channel, read from SSM `/amictl/channels/FAMILY/CHANNEL`. Deprecated
        or disabled images are refused (exit 3) unless --allow-deprecated; images whose
        bake is building, failed or abandoned unless --allow-failed-bake.
        """
        extra = launching.parse_tags(tags)
        data = user_data.read_bytes() if user_data else None
        conn = context.connector()
        targets = conn.targets()
        if len(targets) != 1:
            raise InputError(
                f"launch works in one account and region, not {len(targets)}",
                key="--region",
                hint="give one --region (and at most one --role-arn)",
            )
        resolved = launching.resolve(conn, targets[0], ref)
        info(f"image {resolved.image_id}: {resolved.reason}")
        for w in launching.check_launchable(
            resolved.found, allow_deprecated, allow_failed_bake=allow_failed_bake
        ):
            info(f"warning: {w}")
        res = launching.launch(
            conn,
            resolved,
            instance_type=instance_type,
            count=count,
            subnet=subnet,
            security_groups=list(security_groups),
            key_name=key_name,
            user_data=data,
            tags=extra,
            dry_run=dry_run,
        )
        if dry_run:
            info(f"dry run: RunInstances {res.get('dry_run_result', 'checked')}; nothing launched")
            if settings().output == "table":
                return  # no table titled "launched" for what was not launched
        rows = [
            {"instance_id": i, "image_id": res["image_id"], "region": res["region"]}
            for i in res["instance_ids"]
        ]
        emit(res, ["instance_id", "image_id", "region"], "launched", rows)
