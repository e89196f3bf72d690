"""``allowed-images status|set``, ``lineage``, ``usage``: the AMI governance APIs (issue 20)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape

from ..distribute.common import check_image_id, find_image
from ..durations import parse_duration, plural
from ..errors import InputError
from ..governance import allowed, lineage, references, usage
from ..governance.watermarks import DEFAULT_TEMPLATE, watermark_name
from ..model import Image, Inventory
from . import context
from .common import emit, global_options, info, settings
from .confirm import ask
from .output import fmt_time, indented, wrap_width

STATUS_COLUMNS = ["account", "region", "state", "managed_by", "criteria", "noncompliant"]
INSTANCE_COLUMNS = [
    "account",
    "region",
    "instance_id",
    "name",
    "image_id",
    "image_name",
    "image_owner",
    "reason",
]
# What an instance table of `allowed-images` is read for: which instance, and why it is
# not allowed (issue 31: `reason` was dropped at 80 columns, an empty `name` kept).
INSTANCE_KEYS = ["instance_id", "image_id", "reason"]
LAUNCHER_COLUMNS = ["region", "kind", "id", "image_id", "image_name", "image_owner"]
LINEAGE_COLUMNS = ["depth", "image_id", "region", "name", "owner", "state", "created", "watermarks"]
USAGE_COLUMNS = ["image_id", "region", "account_id", "instances", "launch_templates", "report_id"]


def _criteria_text(criteria: list[dict[str, Any]]) -> str:
    return "; ".join(json.dumps(c, sort_keys=True, default=str) for c in criteria) or "-"


def _caller(conn: Any, targets: list[Any]) -> str | None:
    try:
        return conn.identity(targets[0].role_arn if targets else None)["arn"]
    except Exception:  # noqa: BLE001 - the journal is still useful without it
        return None


def emit_aws_refs(inv: Inventory, img: Image, rows: list[dict[str, Any]]) -> None:
    """`refs --aws`: amictl's rows, AWS's references and where they disagree."""
    conn = context.connector()
    by_image, disagree, problems = references.second_opinion(
        conn, conn.targets(), inv, [img.image_id]
    )
    aws_refs = by_image.get(img.image_id, [])
    problem = problems[0] if problems else None
    if problem:
        info(f"warning: {problem}")
    aws_rows = [{"kind": r.kind, "id": r.id, "detail": r.detail} for r in aws_refs]
    data = {
        "references": rows,
        "aws_references": aws_rows,
        "disagreements": disagree,
        "aws_error": problem,
    }
    if settings().output != "table":
        emit(data)
        return
    emit(rows, ["kind", "id", "detail"], title=f"references to {img.image_id}")
    emit(aws_rows, ["kind", "id", "detail"], title="AWS DescribeImageReferences")
    for d in disagree:
        info(f"disagreement: {d}")
    if not disagree and not problem:
        info("AWS and amictl agree on the instances, launch templates and SSM parameters")


def _say(text: str) -> None:
    """A line on stderr that fits the width: a criterion's JSON continues under it,
    indented, between words (issue 31: it ran past the terminal)."""
    for line in indented(text, wrap_width(), 6):
        info(escape(line))


def register(cli: click.Group) -> None:
    @cli.group("allowed-images")
    @global_options
    def allowed_images() -> None:
        """Allowed AMIs: which images the account may discover and launch (per region).

        AWS never restricts the images the account owns. `status` shows the settings and
        the running instances whose image is not allowed; `set --from-channels` builds
        the criteria from what the release channels point at.
        """

    @allowed_images.command("status")
    @global_options
    def status_cmd() -> None:
        """State (disabled, audit-mode, enabled), criteria, and non-compliant instances.

        Non-compliant: running or pending instances whose image AWS reports as not
        allowed (DescribeInstanceImageMetadata ImageAllowed); while the setting is
        disabled, amictl evaluates the stored criteria itself. Read-only.
        """
        conn = context.connector()
        rows = allowed.status(conn, conn.targets())
        table = [
            {
                **r,
                "criteria": _criteria_text(r["criteria"]),
                "noncompliant": len(r["noncompliant_instances"]),
            }
            for r in rows
        ]
        emit(rows, STATUS_COLUMNS, "Allowed AMIs", table)
        if settings().output == "table":
            for r in rows:
                for c in r["criteria"]:
                    _say(f"{r['account']}/{r['region']} criterion: {_criteria_text([c])}")
        bad = [i for r in rows for i in r["noncompliant_instances"]]
        if bad and settings().output == "table":
            emit(
                bad,
                INSTANCE_COLUMNS,
                f"{plural(len(bad), 'instance')} on images not allowed",
                keep=INSTANCE_KEYS,
            )

    @allowed_images.command("set")
    @click.option(
        "--from-channels",
        is_flag=True,
        required=True,
        help="Allow what the release channels point at (watermark or owner + name pattern).",
    )
    @click.option(
        "--also",
        "also",
        multiple=True,
        metavar="PROVIDER",
        help="Also allow every image of: amazon, aws-marketplace, aws-backup-vault or an "
        "account id (repeat, or comma list).",
    )
    @click.option(
        "--mode",
        type=click.Choice(allowed.MODES),
        required=True,
        help="audit-mode: only report (ImageAllowed); enabled: hide and refuse the others.",
    )
    @click.option(
        "--allow-noncompliant",
        "allow_noncompliant",
        multiple=True,
        metavar="INSTANCE",
        help="With --mode enabled: accept that this running instance's (or launcher's: "
        "template id, group, configuration or parameter name) image is not allowed "
        "(repeat, or comma list).",
    )
    @click.option(
        "--watermark",
        default=DEFAULT_TEMPLATE,
        show_default=True,
        metavar="TEMPLATE",
        help="The family watermark's name, as `create` and `bake` attach it.",
    )
    @click.option(
        "--scan-max-severity",
        metavar="SEVERITY",
        help="Add a ScanResultCondition: only images Amazon Inspector scanned, with no "
        "finding worse than this (informational|low|medium|high|critical).",
    )
    @click.option(
        "--scan-max-age",
        type=click.IntRange(0),
        metavar="DAYS",
        help="Add a ScanResultCondition: only images Inspector scanned within DAYS.",
    )
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @global_options
    def set_cmd(
        from_channels: bool,
        also: tuple[str, ...],
        mode: str,
        allow_noncompliant: tuple[str, ...],
        watermark: str,
        scan_max_severity: str | None,
        scan_max_age: int | None,
        yes: bool,
    ) -> None:
        """Set the Allowed AMIs criteria from the release channels, and the mode.

        Per region: a family whose channel images all carry its watermark is allowed by
        it, else by its owner account and a name pattern. Shows the change and the
        running instances that would become non-compliant, asks (or --yes), applies
        (to enabled: ReplaceImageCriteria, then EnableAllowedImagesSettings; to
        audit-mode: the state first, then the criteria) and journals it.
        Every other launcher (launch-template versions, Auto Scaling groups, launch
        configurations, SSM parameters, every kind the inventory reads) is checked too.
        --mode enabled is refused (exit 3) while a running instance or a launcher would
        become non-compliant, unless --allow-noncompliant names it (instance id, template
        id, group, configuration or parameter name), or while a kind could not be read.
        """
        watermark_name("family", watermark)  # a bad template: exit 2 before any AWS call
        extra = allowed.check_also(list(also))
        named = [i.strip() for v in allow_noncompliant for i in v.split(",") if i.strip()]
        conn = context.connector()
        targets = conn.targets()
        from ..findings import scan_condition

        scan = scan_condition(scan_max_severity, scan_max_age)  # issue 28
        plans = allowed.plan_set(conn, targets, mode, extra, watermark, scan)
        if settings().output == "table":
            for p in plans:
                info(f"{p['account']}/{p['region']}: {p['current_state']} -> {p['new_state']}")
                for w in p["why"]:
                    _say(f"  allow {w}")
                for line in p["diff"] or ["  (criteria unchanged)"]:
                    _say(f"  {line}")
            bad = [r for p in plans for r in p["would_be_noncompliant"]]
            if bad:
                emit(
                    bad,
                    INSTANCE_COLUMNS,
                    f"{plural(len(bad), 'running instance')} would be non-compliant",
                    keep=INSTANCE_KEYS,
                )
            broken = [r for p in plans for r in p["would_break"]]
            if broken:
                emit(
                    broken,
                    LAUNCHER_COLUMNS,
                    f"{plural(len(broken), 'launcher')} could no longer launch their image",
                )
            for line in (x for p in plans for x in p["not_read"]):
                info(f"warning: {line}: what launches there was not checked")
        allowed.check_refusal(plans, named)
        ask(
            yes,
            f"Set Allowed AMIs to {mode} with these criteria in "
            f"{plural(len(plans), 'account/region')}?",
            "change Allowed AMIs",
            "review the change above, then pass --yes",
        )
        run_id = allowed.apply_set(conn, plans, context.store(), _caller(conn, targets))
        for p in plans:
            p.pop("role_arn", None)
        emit(
            {"journal": run_id, "changes": plans},
            ["account", "region", "current_state", "new_state", "criteria"],
            "Allowed AMIs set",
            [{**p, "criteria": _criteria_text(p["criteria"])} for p in plans],
        )
        info(f"journaled as {run_id} (`amictl journal --plan {run_id}`)")

    @cli.command("lineage")
    @click.argument("image_id", metavar="AMI")
    @global_options
    def lineage_cmd(image_id: str) -> None:
        """The images AMI was made from, back to the root, with each one's state now.

        From AWS's GetImageAncestry (CopyImage across regions, CreateImage); without it
        (no permission, API missing) from SourceImageId and amictl's lineage tags. An
        ancestor deregistered or not visible to the account is `gone`.
        """
        conn = context.connector()
        rows, how, why = lineage.lineage(conn, conn.targets(), check_image_id(image_id))
        if why:
            info(f"warning: GetImageAncestry not used ({why}): following lineage tags")
        emit(
            {"image_id": image_id, "source": how, "ancestry": rows},
            LINEAGE_COLUMNS,
            f"lineage of {image_id} ({how})",
            rows,
        )

    @cli.command("usage")
    @click.argument("image_ids", metavar="AMI...", nargs=-1, required=True)
    @click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="ID",
        help="Only these consumer accounts (repeat, or comma list); default every account.",
    )
    @click.option(
        "--max-age",
        default="24h",
        show_default=True,
        help="Reuse a report on the image created at most this long ago.",
    )
    @click.option(
        "--poll",
        default=15,
        show_default=True,
        type=click.IntRange(1, 300),
        help="Seconds between checks while a report is pending.",
    )
    @global_options
    def usage_cmd(
        image_ids: tuple[str, ...], accounts: tuple[str, ...], max_age: str, poll: int
    ) -> None:
        """Which other accounts run instances or keep launch templates of your images.

        Runs (or reuses, --max-age) an image usage report per image and waits for it:
        one row per consumer account with its instance and launch template counts.
        """
        try:
            age = parse_duration(max_age)
        except ValueError as exc:
            raise InputError(str(exc), key="--max-age") from None
        ids = [check_image_id(i) for i in image_ids]
        accts = [a.strip() for v in accounts for a in v.split(",") if a.strip()]
        for a in accts:
            if not a.isdigit() or len(a) != 12:
                raise InputError(f"{a!r} is not a 12-digit AWS account id", key="--account")
        conn = context.connector()
        targets = conn.targets()
        reports, rows = [], []
        for iid in ids:
            found = find_image(conn, targets, iid)
            rep = usage.usage_report(
                conn, found.target, iid, accts or None, max_age=age, wait_delay=poll
            )
            reports.append(rep)
            info(
                f"{iid}: report {rep['report_id']} "
                f"({'reused' if rep['reused'] else 'new'}, created {fmt_time(rep['created'])})"
            )
            for acct, counts in sorted(rep["consumers"].items()):
                rows.append(
                    {
                        "image_id": iid,
                        "region": rep["region"],
                        "account_id": acct,
                        "instances": counts.get("ec2:Instance", 0),
                        "launch_templates": counts.get("ec2:LaunchTemplate", 0),
                        "report_id": rep["report_id"],
                    }
                )
        if not rows and settings().output == "table":
            info("no other account uses these images")
            return
        emit(reports, USAGE_COLUMNS, "image usage by other accounts", rows)
