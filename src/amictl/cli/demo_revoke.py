"""The demo's revocation (issue 28): a base image turns out bad; `amictl revoke` pulls it
and everything built from it, moves the channels, and lists the fleets left to roll.
The same library calls as `amictl revoke`."""

from __future__ import annotations

from typing import Any

from .. import revoke
from ..durations import plural
from ..inventory import scan


def run_revoke(ctx: Any) -> None:
    con = ctx.con
    con.rule("Revoke: a bad base image and everything built from it")
    inv = scan(ctx.conn)
    bases = [i for i in inv.images if i.owned and i.family == "base-al2023" and i.version]
    bases.sort(key=lambda i: len(inv.descendants({i.image_id})), reverse=True)
    if not bases or not inv.descendants({bases[0].image_id}):
        con.print("(no base image with descendants left in the demo fleet: skipped)")
        return
    base = bases[0]
    ref = f"{base.family}@{base.version}"
    plan = revoke.make_plan(ctx.conn, inv, ref, "demo: CVE in the base's openssl")
    con.print(f"`amictl revoke {ref} --reason ...`: {plural(len(plan.tree), 'image')} revoked:")
    for row in plan.tree[:12]:
        con.print(f"    {row['tree']:<40} {row['region']:<10} {row['family']} {row['version']}")
    revoke.save_plan(ctx.store, plan)
    revoke.execute(ctx.conn, ctx.store, plan)
    for c in plan.channels:
        con.print(
            f"  channel {c['channel']} of {c['family']} ({c['region']}): "
            + (
                f"{c['version']} -> {c['new_version']}"
                if c["new_image_id"]
                else f"left on {c['version']}: {c['status']}"
            )
        )
    con.print(f"Still launching a revoked image: {plural(len(plan.in_use), 'reference')}")
    for r in plan.in_use[:6]:
        con.print(f"    {r['kind']:<24} {r['id']:<28} {r['rollout']}")
    con.print(
        "launch, promote, rollback, bake and rollout now refuse these images "
        f"(tag amictl:revoked); `amictl unrevoke {plan.revoke_id}` would undo it all."
    )
