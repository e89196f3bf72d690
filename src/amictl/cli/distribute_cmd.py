"""``copy``, ``share``, ``unshare``, ``sharing``: distribution and launch permissions."""

from __future__ import annotations

import click

from .. import distribute
from ..durations import plural
from ..errors import InputError
from . import context
from .common import emit, global_options, info, settings

COPY_COLUMNS = [
    "source_image_id",
    "region",
    "image_id",
    "name",
    "family",
    "version",
    "state",
    "snapshots_tagged",
]
SHARING_COLUMNS = ["image_id", "account", "region", "name", "family", "version", "who"]


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for s in values for v in s.split(",") if v.strip()]


def _grantee_options(fn: click.decorators.FC) -> click.decorators.FC:
    for opt in reversed(
        [
            click.option(
                "--account",
                "accounts",
                multiple=True,
                metavar="ID",
                help="A 12-digit AWS account id (repeat, or comma list).",
            ),
            click.option(
                "--org",
                "orgs",
                multiple=True,
                metavar="ARN",
                help="An AWS Organizations organization ARN.",
            ),
            click.option(
                "--ou", "ous", multiple=True, metavar="ARN", help="An organizational unit ARN."
            ),
            click.option("--public", is_flag=True, help="Every AWS account (Group=all)."),
        ]
    ):
        fn = opt(fn)
    return fn


def register(cli: click.Group) -> None:
    @cli.command("copy")
    @click.argument("image_id", metavar="AMI")
    @click.option(
        "--to-region",
        "to_regions",
        multiple=True,
        required=True,
        metavar="R",
        help="Region to copy into (repeat, or comma list).",
    )
    @click.option(
        "--kms-key", help="Encrypt the copy's snapshots with this KMS key (id, alias or ARN)."
    )
    @click.option("--wait", is_flag=True, help="Wait until each copy is available.")
    @global_options
    def copy_cmd(
        image_id: str, to_regions: tuple[str, ...], kms_key: str | None, wait: bool
    ) -> None:
        """Copy an image into other regions: same name, its tags, lineage tags, tagged snapshots.

        The copy gets `amictl:source-image` and `amictl:source-region`; its snapshots get
        the family and version tags once they exist. Refuses (exit 2) when the family and
        version (or the name) already exist in a target region.
        """
        conn = context.connector()
        rows = distribute.copy_image(
            conn, conn.targets(), image_id, _split(to_regions), kms_key=kms_key, wait=wait
        )
        emit(rows, COPY_COLUMNS, "copies")
        for r in rows:
            if r.get("snapshots_untagged"):
                info(
                    f"warning: {r['image_id']}: its snapshots were not tagged: {r['snapshots_untagged']}"
                )
        if not wait and any(not r["snapshots_tagged"] for r in rows):
            info("the copies are still pending: run again with --wait to tag their snapshots")

    def _change(
        add: bool,
        image_id: str,
        accounts: tuple[str, ...],
        orgs: tuple[str, ...],
        ous: tuple[str, ...],
        public: bool,
        yes: bool,
        allow_copy: bool,
        force_unsafe: bool = False,
        poll: int = 15,
    ) -> None:
        g = distribute.grantees(list(accounts), list(orgs), list(ous), public)
        if add and public and not yes:
            raise InputError(  # exit 2, as every command that needs a confirmation
                f"lets every AWS account launch {image_id.strip()}: refusing without confirmation",
                key="--public",
                hint="add --yes to confirm that it really is to be public",
            )
        conn = context.connector()
        targets = conn.targets()
        if not add:  # issue 20: a consumer still launching it keeps its permission
            from ..governance.usage import check_unshare

            used = check_unshare(
                conn,
                targets,
                image_id,
                None if (g.public or g.orgs or g.ous) else list(g.accounts),
                force_unsafe=force_unsafe,
                wait_delay=poll,
            )
            if used:
                info(f"warning: --force-unsafe: still used by {', '.join(used)}")
        caller = None
        store = None
        if public:
            store = context.store()
            caller = conn.identity(targets[0].role_arn)["arn"] if targets else None
        res = distribute.change_sharing(
            conn, targets, image_id, g, add=add, allow_copy=allow_copy, store=store, caller=caller
        )
        who = ", ".join(
            [*res["accounts"], *res["organizations"], *res["organizational_units"]]
            + (["everyone (public)"] if res["public"] else [])
        )
        rows = [{"image_id": res["image_id"], "region": res["region"], res["action"]: who}]
        emit(res, ["image_id", "region", res["action"]], res["action"], rows)
        if res["snapshots"]:
            info(
                f"createVolumePermission {'added to' if add else 'removed from'} "
                f"{plural(len(res['snapshots']), 'snapshot')}"
            )
        if res["journal"]:
            info(f"journaled as {res['journal']} (`amictl journal --plan {res['journal']}`)")

    @cli.command("share")
    @click.argument("image_id", metavar="AMI")
    @_grantee_options
    @click.option("--yes", is_flag=True, help="Confirm --public.")
    @click.option(
        "--allow-copy",
        is_flag=True,
        help="Also let the --account ids copy the image (createVolumePermission on its snapshots).",
    )
    @global_options
    def share_cmd(
        image_id: str,
        accounts: tuple[str, ...],
        orgs: tuple[str, ...],
        ous: tuple[str, ...],
        public: bool,
        yes: bool,
        allow_copy: bool,
    ) -> None:
        """Let accounts, an organization, an OU or (with --public --yes) everyone launch an image.

        --public is refused (exit 3) while Image Block Public Access is on in the region,
        and is journaled.
        """
        _change(True, image_id, accounts, orgs, ous, public, yes, allow_copy)

    @cli.command("unshare")
    @click.argument("image_id", metavar="AMI")
    @_grantee_options
    @click.option(
        "--force-unsafe",
        is_flag=True,
        help="Remove the permissions even while those accounts still use the image.",
    )
    @click.option(
        "--poll",
        default=15,
        show_default=True,
        type=click.IntRange(1, 300),
        help="Seconds between checks while the image usage report is pending.",
    )
    @global_options
    def unshare_cmd(
        image_id: str,
        accounts: tuple[str, ...],
        orgs: tuple[str, ...],
        ous: tuple[str, ...],
        public: bool,
        force_unsafe: bool,
        poll: int,
    ) -> None:
        """Remove launch permissions (and the accounts' createVolumePermission on its snapshots).

        First an image usage report (reused for 24 h): refused (exit 3) while one of those
        accounts (any account, for --public, --org and --ou) still runs instances or keeps
        launch templates of the image, or when AWS cannot say; --force-unsafe overrides.
        """
        _change(False, image_id, accounts, orgs, ous, public, True, False, force_unsafe, poll)

    @cli.command("sharing")
    @click.argument("image_id", metavar="[AMI]", required=False)
    @global_options
    def sharing_cmd(image_id: str | None) -> None:
        """Who can launch what: accounts, organizations/OUs and public, per shared image."""
        conn = context.connector()
        rows, warnings = distribute.sharing(conn, conn.targets(), image_id)
        emit(rows, SHARING_COLUMNS, "sharing")
        for w in warnings:
            info(f"warning: {w}")
        if not rows and settings().output == "table":
            info("no image is shared")

    # `launch` is registered with the distribution commands (one line in main._register).
    from . import launch_cmd

    launch_cmd.register(cli)
