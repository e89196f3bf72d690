"""The demo's release story: create a version, promote to staging, launch, promote to prod,
roll back. The same library calls as `amictl create`, `promote`, `launch`, `rollback`."""

from __future__ import annotations

from typing import Any

from ..aws.session import Target
from ..channels.ops import promote, rollback
from ..creation.create import from_instance
from ..durations import plural
from ..errors import AmictlError
from ..launch.resolve import check_launchable, resolve
from ..launch.run import launch


def run_release(ctx: Any) -> None:
    con = ctx.con
    con.rule("7. Release: create -> staging -> launch -> prod -> rollback")
    inv = ctx.inv
    family = "web-server"
    source = next(
        (
            r
            for r in inv.references
            if r.kind == "instance"
            and r.region == "us-east-1"
            and (img := inv.by_id.get(r.image_id)) is not None
            and img.family == family
        ),
        None,
    )
    if source is None:
        con.print("(no running web-server instance in the demo fleet: skipped)")
        return
    target = Target(source.account, source.region)
    created = from_instance(ctx.conn, target, source.id, family, bump="minor", no_reboot=True)
    con.print(
        f"`amictl create from-instance {source.id} --family {family} --bump minor`: "
        f"{created.image_id} ({created.name}), tags family/version/lineage on the image and "
        f"its {plural(len(created.snapshot_ids), 'snapshot')}; parent {created.source_image}."
    )
    for row in promote(ctx.conn, [target], family, created.version, "staging"):
        con.print(f"`amictl promote {family} {created.version} --channel staging`: {_row(row)}")
    resolved = resolve(ctx.conn, target, f"{family}@staging")
    check_launchable(resolved.found, allow_deprecated=False)
    out = launch(ctx.conn, resolved, instance_type="t3.micro")
    con.print(
        f"`amictl launch {family}@staging --type t3.micro`: {resolved.reason}; "
        f"started {', '.join(out.get('instance_ids', []))}."
    )
    previous = _previous_version(inv, family, created.version)
    if previous is not None:
        try:
            for row in promote(ctx.conn, [target], family, previous, "prod"):
                con.print(f"`amictl promote {family} {previous} --channel prod`: {_row(row)}")
        except AmictlError as exc:
            con.print(f"promotion of {previous} refused: {exc.message}")
    for row in promote(ctx.conn, [target], family, created.version, "prod"):
        con.print(f"`amictl promote {family} {created.version} --channel prod`: {_row(row)}")
    try:
        for row in rollback(ctx.conn, [target], family, "prod"):
            con.print(f"`amictl rollback {family} --channel prod`: {_row(row)}")
    except AmictlError as exc:
        con.print(f"rollback refused: {exc.message}")
    con.print(
        "Launch templates that say `resolve:ssm:/amictl/channels/web-server/prod` follow the "
        "channel, and the inventory counts the image it points at as in use."
    )


def _previous_version(inv: Any, family: str, version: str) -> str | None:
    from ..model import version_key

    versions = sorted(
        {
            i.version
            for i in inv.images
            if i.family == family and i.version and i.region == "us-east-1" and i.owned
        },
        key=version_key,
    )
    older = [v for v in versions if version_key(v) < version_key(version)]
    return older[-1] if older else None


def _row(row: dict[str, Any]) -> str:
    keys = ("region", "image_id", "version", "status", "previous_image_id")
    return ", ".join(f"{k} {row[k]}" for k in keys if row.get(k))
