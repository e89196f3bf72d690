"""``catalog list`` / ``catalog find``: public base images (Amazon Linux, Ubuntu, ...)."""

from __future__ import annotations

import click

from .. import catalog
from . import context
from .common import emit, global_options, info

FIND_COLUMNS = ["region", "image_id", "name", "architecture", "creation_date", "source"]
LIST_COLUMNS = ["name", "description", "architectures", "owners", "ssm_parameter"]


def register(cli: click.Group) -> None:
    @cli.group("catalog")
    @global_options
    def catalog_group() -> None:
        """Public base images: the named bases amictl knows, and finding their newest image."""

    @catalog_group.command("list")
    @global_options
    def list_cmd() -> None:
        """The named bases: publisher, architectures, public SSM parameter, name pattern."""
        emit(catalog.catalog_rows(), LIST_COLUMNS, "bases")

    @catalog_group.command("find")
    @click.argument("query")
    @click.option(
        "--arch",
        type=click.Choice(["x86_64", "arm64"]),
        help="Architecture (bases default to x86_64; a glob matches any unless given).",
    )
    @click.option("--all", "every", is_flag=True, help="Every matching image, not only the newest.")
    @global_options
    def find_cmd(query: str, arch: str | None, every: bool) -> None:
        """The newest image of a named base (or of a name glob) in each region.

        QUERY is a base (`amictl catalog list`: al2023, al2, ubuntu-22.04, ubuntu-24.04,
        debian-12, windows-2022, rhel-9) resolved through the publisher's public SSM
        parameter where there is one, else DescribeImages by owner and name; any other
        QUERY is a name glob over the images of Amazon, Canonical, Debian and Red Hat
        (without * or ?, names containing it). Deprecated images are never the newest;
        --all lists every match, non-deprecated first, newest first.
        """
        conn = context.connector()
        found = catalog.find(conn, conn.targets(), query, arch=arch, every=every)
        for w in found.warnings:
            info(f"warning: {w}")
        emit(found.rows, FIND_COLUMNS, f"catalog: {query}")
