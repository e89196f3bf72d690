"""``create from-instance|from-snapshot``: make a new version of an image family."""

from __future__ import annotations

import click

from .. import build
from ..aws.session import Connector, Target
from ..build.create import ARCHITECTURES, BOOT_MODES, BUMPS, Created, single_target
from ..errors import InputError
from ..tagnames import check_user_tags
from . import context
from .common import emit, global_options, info

COLUMNS = ["image_id", "name", "family", "version", "account", "region", "state", "snapshot_ids"]


def _show(created: Created) -> None:
    data = created.to_dict()
    emit(data, COLUMNS, "Created image", [data])


# Tags amictl writes from other options; --tag may not set them another way.
OWN_TAGS = ("family", "version")
MAX_USER_TAGS = 40  # EC2 allows 50 tags per resource; amictl writes up to 6 of its own


def parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    """``--tag K=V`` (repeatable) as a dict; bad or reserved keys are refused (exit 2)."""
    tags: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{text!r}: expected KEY=VALUE", key="--tag")
        if len(key) > 128 or len(value) > 256:
            raise InputError(
                f"{key[:40]!r}: a tag key has at most 128 characters, a value 256", key="--tag"
            )
        if key.lower().startswith("aws:"):
            raise InputError(f"tag {key!r}: keys starting with 'aws:' are AWS's", key="--tag")
        if key in OWN_TAGS:
            raise InputError(
                f"tag {key!r} is set from --{key}", key="--tag", hint=f"use --{key} instead"
            )
        if key in tags and tags[key] != value:
            raise InputError(f"tag {key!r} is given twice with different values", key="--tag")
        tags[key] = value
    check_user_tags(tags, "--tag")
    if len(tags) > MAX_USER_TAGS:
        raise InputError(f"at most {MAX_USER_TAGS} tags, got {len(tags)}", key="--tag")
    return tags


TAG_OPTION = click.option(
    "--tag",
    "tag_values",
    multiple=True,
    metavar="KEY=VALUE",
    help="Also tag the image and its snapshots (repeatable); keys starting with amictl: are "
    "reserved.",
)


def _wait(created: Created, conn: Connector, target: Target) -> None:
    info(f"waiting for {created.image_id} ({created.name}) to become available ...")
    image = build.wait_available(conn, target, created.image_id)
    created.state = image.get("State", created.state)
    snaps = [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings") or []
        if m.get("Ebs", {}).get("SnapshotId")
    ]
    created.snapshot_ids = snaps or created.snapshot_ids
    info(f"{created.image_id} is {created.state}")


def register(cli: click.Group) -> None:
    @cli.group("create")
    @global_options
    def create() -> None:
        """Create a new version of an image family (from an instance or from snapshots).

        The image is named FAMILY-VERSION and tagged, with each of its snapshots, with
        family, version, amictl:created-by (the caller's ARN) and its lineage. A version
        the family already has in the account/region is refused (exit 2). Works in one
        account and region (--region R).
        """

    @create.command("from-instance")
    @click.argument("instance_id", metavar="INSTANCE")
    @click.option("--family", required=True, help="Image family (lower-case, digits, '-').")
    @click.option("--version", "version", help="The new version, e.g. 1.4.0.")
    @click.option(
        "--bump",
        type=click.Choice(BUMPS),
        help="Next semantic version after the family's highest one in the account/region.",
    )
    @click.option(
        "--no-reboot",
        is_flag=True,
        help="Do not stop the instance first (the file systems may be inconsistent).",
    )
    @click.option("--description", help="Image description (default: family, version, source).")
    @click.option("--wait", is_flag=True, help="Wait until the image is available.")
    @TAG_OPTION
    @global_options
    def from_instance_cmd(
        instance_id: str,
        family: str,
        version: str | None,
        bump: str | None,
        no_reboot: bool,
        description: str | None,
        wait: bool,
        tag_values: tuple[str, ...],
    ) -> None:
        """CreateImage of INSTANCE as the family's new version (one snapshot per EBS volume).

        Tags image and snapshots with family, version, amictl:created-by,
        amictl:source-instance and amictl:source-image (the instance's image: the new
        image's lineage parent). Give exactly one of --version and --bump.
        """
        if (version is None) == (bump is None):
            raise click.UsageError("give exactly one of --version and --bump")
        tags = parse_tags(tag_values)
        conn = context.connector()
        target = single_target(conn)
        created = build.from_instance(
            conn,
            target,
            instance_id,
            family,
            version=version,
            bump=bump,
            no_reboot=no_reboot,
            description=description,
            extra_tags=tags,
        )
        info(f"created {created.image_id} ({created.name}) from {instance_id}")
        if wait:
            _wait(created, conn, target)
        _show(created)

    @create.command("from-snapshot")
    @click.argument("snapshot_ids", metavar="SNAP...", nargs=-1, required=True)
    @click.option("--family", required=True, help="Image family (lower-case, digits, '-').")
    @click.option("--version", "version", required=True, help="The new version, e.g. 1.4.0.")
    @click.option(
        "--arch",
        "architecture",
        type=click.Choice(ARCHITECTURES),
        default="x86_64",
        show_default=True,
    )
    @click.option(
        "--root-device",
        default="/dev/xvda",
        show_default=True,
        help="Device of the first snapshot; the others are /dev/sdf, /dev/sdg, ...",
    )
    @click.option("--boot-mode", type=click.Choice(BOOT_MODES), help="Boot mode of the image.")
    @click.option("--ena/--no-ena", default=True, show_default=True, help="ENA support.")
    @click.option("--imds", type=click.Choice(["v2.0"]), help="v2.0: instances require IMDSv2.")
    @click.option("--tpm", type=click.Choice(["v2.0"]), help="v2.0: NitroTPM (needs uefi).")
    @click.option("--description", help="Image description (default: family, version, source).")
    @click.option("--wait", is_flag=True, help="Wait until the image is available.")
    @TAG_OPTION
    @global_options
    def from_snapshot_cmd(
        snapshot_ids: tuple[str, ...],
        family: str,
        version: str,
        architecture: str,
        root_device: str,
        boot_mode: str | None,
        ena: bool,
        imds: str | None,
        tpm: str | None,
        description: str | None,
        wait: bool,
        tag_values: tuple[str, ...],
    ) -> None:
        """RegisterImage over SNAP... (the first is the root volume) as the family's new version.

        Block device mappings keep each snapshot's size (gp3, deleted on termination);
        the image and the snapshots are tagged with family, version, amictl:created-by
        and amictl:source-snapshots.
        """
        tags = parse_tags(tag_values)
        conn = context.connector()
        target = single_target(conn)
        created = build.from_snapshots(
            conn,
            target,
            snapshot_ids,
            family,
            version,
            architecture=architecture,
            root_device=root_device,
            boot_mode=boot_mode,
            ena=ena,
            imds=imds,
            tpm=tpm,
            description=description,
            extra_tags=tags,
        )
        info(f"registered {created.image_id} ({created.name}) from {', '.join(snapshot_ids)}")
        if wait:
            _wait(created, conn, target)
        _show(created)
