"""``inventory``, ``ls``, ``show``, ``refs``, ``snapshots``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ..aws.org import parse_shard
from ..durations import parse_duration, plural
from ..errors import InputError
from ..inventory import scan, views
from ..inventory.lt_cache import LtVersionCache
from ..model import Inventory
from ..policy.parse import iac_paths
from . import context
from .common import emit, err_console, global_options, info, settings
from .owners import owner_column
from .progress import scan_progress
from .scan_facts import add_iac, iac_option, say_incomplete

LS_COLUMNS = [
    "image_id",
    "account",
    "region",
    "name",
    "family",
    "version",
    "owner",
    "age_days",
    "state",
    "size_gib",
    "monthly_cost_usd",
    "references",
    "channels",
    "public",
    "shared_with",
    "deprecation_time",
    "last_launched_time",
]
# What `ls` leaves out first when the terminal is too narrow (lowest value first).
LS_DROP = [
    "owner",
    "channels",
    "shared_with",
    "deprecation_time",
    "public",
    "monthly_cost_usd",
    "size_gib",
    "last_launched_time",
    "family",
    "age_days",
    "state",
    "references",
    "version",
    "account",
    "region",
]


def load_inventory(
    from_state: bool = False,
    family_rule: Any = None,
    shard: str | None = None,
    iac: tuple[str, ...] = (),
    page_memo: bool = False,
) -> Inventory:
    """Scan live (and store the run), or take the latest stored run with --from-state.
    ``shard`` (``K/N``, ``auto``, ``auto/N``): scan only that shard of the accounts.
    ``iac``: infrastructure-code paths whose references join the scan's (and are stored).
    ``page_memo``: pages parsed before are not parsed again (aws.pagememo): only for the
    ``inventory`` command itself, never for a command that acts on what it reads."""
    st = context.store()
    if from_state:
        latest = st.latest_inventory()
        if latest is None:
            raise InputError("no stored inventory yet", hint="run `amictl inventory` first")
        inv = latest[1]
        if family_rule is not None:
            inv.resolve_families(family_rule)
        return inv
    sh = parse_shard(shard) if shard is not None else None  # bad input before any call
    conn = context.connector(page_memo=page_memo)
    if sh is not None:
        if not conn.role_arns:
            raise InputError(
                "--shard splits the accounts of --org, --accounts-file or --role-arn; none given",
                key="--shard",
            )
        total = len(conn.role_arns)
        conn.role_arns = sh.role_arns(conn.role_arns)
        info(f"shard {sh}: {len(conn.role_arns)} of {total} accounts")
        if not conn.role_arns:
            return Inventory(scanned_at=_now())  # nothing to scan, nothing stored
    with scan_progress("scanning") as cb:
        inv = scan(conn, family_rule=family_rule, progress=cb, lt_cache=LtVersionCache(st))
    add_iac(inv, iac_paths(iac))  # a file that does not parse: exit 2, nothing stored
    st.save_inventory(inv)
    say_incomplete(inv)
    if settings().verbosity > 0:
        for op, n in sorted(inv.api_calls.items()):
            err_console().print(f"  {n:6d}  {op}")
    return inv


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def inventory_summary(inv: Inventory) -> dict[str, Any]:
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for acct in inv.accounts:
        for reg in inv.regions:
            per[(acct, reg)] = {
                "account": acct,
                "region": reg,
                "images": 0,
                "snapshots": 0,
                "references": 0,
                "complete": inv.slice_complete(acct, reg),
                "incomplete_kinds": [],
            }
    for i in inv.images:
        if i.owned and (i.account, i.region) in per:
            per[(i.account, i.region)]["images"] += 1
    for sn in inv.snapshots:
        if (sn.account, sn.region) in per:
            per[(sn.account, sn.region)]["snapshots"] += 1
    for r in inv.references:
        if (r.account, r.region) in per:
            per[(r.account, r.region)]["references"] += 1
    for s in inv.incomplete_slices():
        per[(s.account, s.region)]["incomplete_kinds"].append(s.kind)
    return {
        "complete": inv.complete,
        "accounts": inv.accounts,
        "regions": inv.regions,
        "scanned_at": inv.to_dict()["scanned_at"],
        "duration_seconds": inv.duration,
        "api_calls": inv.api_calls,
        "api_calls_total": sum(inv.api_calls.values()),
        "per_region": list(per.values()),
        "incomplete": [s.to_dict() for s in inv.incomplete_slices()],
    }


def register(cli: click.Group) -> None:
    @cli.command("inventory")
    @click.option(
        "--shard",
        metavar="K/N|auto[/N]",
        help="Scan only the K-th of N shards of the accounts (--org / --accounts-file / "
        "--role-arn); auto: K from JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX or "
        "AMICTL_SHARD, N from auto/N or AMICTL_SHARDS.",
    )
    @iac_option
    @global_options
    def inventory_cmd(shard: str | None, iac: tuple[str, ...]) -> None:
        """Scan images, snapshots and references; print counts per region and completeness; store the run."""
        inv = load_inventory(shard=shard, iac=iac, page_memo=True)
        summary = inventory_summary(inv)
        if settings().output == "table":
            emit(
                summary["per_region"],
                [
                    "account",
                    "region",
                    "images",
                    "snapshots",
                    "references",
                    "complete",
                    "incomplete_kinds",
                ],
                title="inventory",
            )
            state = (
                "complete"
                if inv.complete
                else "INCOMPLETE: no destructive action will be planned there"
            )
            info(
                f"{len(inv.images)} images, {len(inv.snapshots)} snapshots, {len(inv.references)} references; "
                f"{summary['api_calls_total']} API calls in {inv.duration:.1f} s; {state}"
            )
        else:
            emit({**summary, "skipped_accounts": list(context.ORG_SKIPPED)})

    @cli.command("ls")
    @click.option("--family", help="Only this family (glob).")
    @click.option(
        "--unused",
        is_flag=True,
        help="Only images nothing refers to (references 0): no instance, launch template "
        "version, launch configuration, ASG, SSM parameter, channel, Spot request, fleet, EMR "
        "cluster or Batch compute environment uses them, and they are "
        "neither shared nor public (another account may launch a shared image).",
    )
    @click.option(
        "--shared", is_flag=True, help="Only images shared with other accounts or public."
    )
    @click.option("--deprecated", is_flag=True, help="Only deprecated images.")
    @click.option("--older-than", help="Only images older than this (e.g. 90d).")
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def ls_cmd(
        family: str | None,
        unused: bool,
        shared: bool,
        deprecated: bool,
        older_than: str | None,
        from_state: bool,
    ) -> None:
        """List owned images: id, name, family, version, age, state, size, cost, references, sharing."""
        try:
            older = parse_duration(older_than) if older_than else None
        except ValueError as exc:
            raise InputError(str(exc), key="--older-than") from None
        inv = load_inventory(from_state)
        rows = views.list_images(
            inv,
            _now(),
            family=family,
            unused=unused,
            shared=shared,
            deprecated=deprecated,
            older_than=older,
        )
        owner_column(inv.images, rows)
        emit(rows, LS_COLUMNS, title=plural(len(rows), "image"), drop=LS_DROP)

    @cli.command("show")
    @click.argument("ami")
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def show_cmd(ami: str, from_state: bool) -> None:
        """Everything about one image: its snapshots, references and lineage."""
        from .scan_facts import one_image_inventory  # one region's scan (issue 14)

        inv = load_inventory(True) if from_state else one_image_inventory(ami)[0]
        data = views.show(inv, ami, _now())
        from ..creation.bake import lineage_of

        data["bake"] = lineage_of(data.get("tags") or {})
        owner_column(inv.images, [data])
        from ..findings import summary
        from ..tagnames import revoked_reason

        found = inv.by_id.get(ami)
        scan = summary(found.scan_results if found else None)
        data["findings"] = scan.text  # issue 28: worst severity, days a fix is available
        data["findings_detail"] = scan.to_dict()
        data["revoked"] = revoked_reason(data.get("tags") or {})
        if settings().output != "table":
            emit(data)
            return
        skip = {"snapshots", "lineage", "references_detail", "family_versions", "tags", "children"}
        skip |= {"bake", "findings_detail"}
        emit({k: v for k, v in data.items() if k not in skip}, title=ami)
        emit(
            data["snapshots"],
            ["device", "snapshot_id", "size_gib", "storage_tier", "shared_by_images"],
            title="snapshots",
        )
        emit(data["references_detail"], ["kind", "id", "detail"], title="references")
        if data["lineage"]:
            emit(data["lineage"], ["image_id", "name", "region"], title="built from")
        if data["bake"]:
            emit({k: v for k, v in data["bake"].items() if v}, title="baked by amictl bake")
        if data["family_versions"]:
            emit(
                data["family_versions"],
                ["image_id", "version", "state"],
                title=f"family {data['family']}",
            )

    @cli.command("refs")
    @click.argument("ami")
    @click.option(
        "--launched-within",
        default="30d",
        show_default=True,
        help="Count a LastLaunchedTime this recent as a reference.",
    )
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @click.option(
        "--aws",
        "ask_aws",
        is_flag=True,
        help="Also ask AWS (DescribeImageReferences) and say where it disagrees with amictl.",
    )
    @iac_option
    @global_options
    def refs_cmd(
        ami: str, launched_within: str, from_state: bool, ask_aws: bool, iac: tuple[str, ...]
    ) -> None:
        """What uses the image: one row per reference (kind, id, detail).

        --aws adds AWS's own reference check and the disagreements between the two.
        """
        try:
            within = parse_duration(launched_within)
        except ValueError as exc:
            raise InputError(str(exc), key="--launched-within") from None
        from .scan_facts import one_image_inventory  # one region's scan (issue 14)

        inv = load_inventory(True) if from_state else one_image_inventory(ami)[0]
        add_iac(inv, iac_paths(iac))
        rows = views.refs_rows(inv, ami, _now(), within)
        img = inv.by_id[ami]
        if not inv.slice_complete(img.account, img.region):
            info(
                f"[yellow]warning:[/] the inventory of {img.account}/{img.region} is incomplete: "
                "there may be references not shown"
            )
        if ask_aws:  # issue 20: AWS's second opinion
            from .governance_cmd import emit_aws_refs

            emit_aws_refs(inv, img, rows)
            return
        emit(rows, ["kind", "id", "detail"], title=f"references to {ami}")

    @cli.command("snapshots")
    @click.option("--orphaned", is_flag=True, help="Only snapshots no registered image uses.")
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def snapshots_cmd(orphaned: bool, from_state: bool) -> None:
        """Owned snapshots and the images using them."""
        inv = load_inventory(from_state)
        rows = views.snapshot_rows(inv, _now(), orphaned=orphaned)
        emit(
            rows,
            [
                "snapshot_id",
                "region",
                "size_gib",
                "age_days",
                "storage_tier",
                "images",
                "origin",
                "monthly_cost_usd",
            ],
            title=plural(len(rows), "snapshot"),
        )
