"""``create from-instance|from-snapshot``: make a new version of an image family."""

from __future__ import annotations

import click

from .. import creation
from ..aws.session import Connector, Target
from ..creation.create import ARCHITECTURES, BOOT_MODES, BUMPS, Created, single_target
from ..creation.volumes import parse_tags
from ..governance.watermarks import DEFAULT_TEMPLATE as WATERMARK_TEMPLATE
from ..governance.watermarks import watermark_name
from . import context
from .common import emit, global_options, info

TAG_HELP = "Extra tag on the image and its snapshots (repeat); not in the amictl: namespace."
COLUMNS = ["image_id", "name", "family", "version", "account", "region", "state", "snapshot_ids"]


def _watermark_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--no-watermark", is_flag=True, help="Attach no provenance watermark to the image."
    )(fn)
    return click.option(
        "--watermark",
        "watermark",
        default=WATERMARK_TEMPLATE,
        show_default=True,
        metavar="TEMPLATE",
        help="Name of the provenance watermark attached to the image ({family}: the family); "
        "images created or copied from it inherit it.",
    )(fn)


def _show(created: Created) -> None:
    for w in created.warnings:
        info(f"warning: {w}")
    data = created.to_dict()
    emit(data, COLUMNS, "Created image", [data])


def _wait(created: Created, conn: Connector, target: Target) -> None:
    info(f"waiting for {created.image_id} ({created.name}) to become available ...")
    image = creation.wait_available(conn, target, created.image_id)
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
    @click.option("--tag", "tags", multiple=True, metavar="K=V", help=TAG_HELP)
    @click.option("--wait", is_flag=True, help="Wait until the image is available.")
    @_watermark_options
    @global_options
    def from_instance_cmd(
        instance_id: str,
        family: str,
        version: str | None,
        bump: str | None,
        no_reboot: bool,
        description: str | None,
        tags: tuple[str, ...],
        wait: bool,
        watermark: str,
        no_watermark: bool,
    ) -> None:
        """CreateImage of INSTANCE as the family's new version (one snapshot per EBS volume).

        Tags image and snapshots with family, version, amictl:created-by,
        amictl:source-instance and amictl:source-image (the instance's image: the new
        image's lineage parent), and attaches the provenance watermark amictl/FAMILY
        (--watermark, --no-watermark). Give exactly one of --version and --bump.
        """
        if (version is None) == (bump is None):
            raise click.UsageError("give exactly one of --version and --bump")
        template = None if no_watermark else watermark
        if template:
            watermark_name(family, template)  # bad template: exit 2 before any AWS call
        user_tags = parse_tags(tags) or None  # bad input: exit 2 before any AWS call
        conn = context.connector()
        target = single_target(conn)
        created = creation.from_instance(
            conn,
            target,
            instance_id,
            family,
            version=version,
            bump=bump,
            no_reboot=no_reboot,
            description=description,
            extra_tags=user_tags,
            watermark=template,
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
    @click.option(
        "--volume",
        "volumes",
        multiple=True,
        metavar="N:K=V,..",
        help="Volume N (1 = root, or its device): type, size, iops, throughput, encrypted, "
        "kms-key; e.g. 1:type=io2,iops=4000 or 2:encrypted=true,kms-key=alias/ebs (repeat).",
    )
    @click.option("--tag", "tags", multiple=True, metavar="K=V", help=TAG_HELP)
    @click.option("--wait", is_flag=True, help="Wait until the image is available.")
    @_watermark_options
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
        volumes: tuple[str, ...],
        tags: tuple[str, ...],
        wait: bool,
        watermark: str,
        no_watermark: bool,
    ) -> None:
        """RegisterImage over SNAP... (the first is the root volume) as the family's new version.

        Block device mappings keep each snapshot's size (gp3, deleted on termination)
        unless --volume says otherwise (an encrypted volume is registered over an
        encrypted copy of its snapshot); the image and the snapshots are tagged with
        family, version, amictl:created-by, amictl:source-snapshots and each --tag; the
        provenance watermark amictl/FAMILY is attached (--watermark, --no-watermark).
        """
        template = None if no_watermark else watermark
        if template:
            watermark_name(family, template)
        user_tags = parse_tags(tags) or None  # bad input: exit 2 before any AWS call
        conn = context.connector()
        target = single_target(conn)
        created = creation.from_snapshots(
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
            volumes=volumes,
            extra_tags=user_tags,
            watermark=template,
        )
        info(f"registered {created.image_id} ({created.name}) from {', '.join(snapshot_ids)}")
        if wait:
            _wait(created, conn, target)
        _show(created)
