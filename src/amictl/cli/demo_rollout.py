"""The demo's fleet story (issue 31): what runs behind the channel (`amictl drift`), a canary
rollout to the Auto Scaling group that follows it (`amictl rollout --wait`), drift again,
then Allowed AMIs in audit mode (`amictl allowed-images set|status`). The same library
calls as those commands, on the demo fleet's family `web` (README's examples)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .. import rollout
from ..durations import plural
from ..errors import AmictlError
from ..governance import allowed
from ..inventory import scan
from ..rollout import drift as drift_mod

FAMILY, CHANNEL, REGION = "web", "prod", "us-east-1"  # README's lines: the default region


def _targets(ctx: Any) -> list[Any]:
    return [t for t in ctx.conn.targets() if t.region == REGION]


def _drift(ctx: Any, when: str) -> list[dict[str, Any]]:
    inv = scan(ctx.conn, _targets(ctx))
    rows = drift_mod.rows(drift_mod.drift(inv, FAMILY, CHANNEL))
    kinds = Counter(r["kind"] for r in rows)
    said = ", ".join(f"{plural(n, k)}" for k, n in sorted(kinds.items())) or "nothing"
    ctx.con.print(f"`amictl drift --family {FAMILY}` {when}: {said} behind {CHANNEL}")
    for r in rows:
        if r["kind"] != "instance":
            ctx.con.print(
                f"    {r['kind']:<24} {r['id']:<28} {r['version']} "
                f"({plural(r['versions_behind'], 'version')} behind {r['channel_version']})"
            )
    return rows


def _follow(con: Any) -> Any:
    seen: set[tuple[Any, ...]] = set()

    def show(e: dict[str, Any]) -> None:
        key = (e.get("phase"), e.get("asg"), e.get("status"), e.get("percent"))
        if key in seen or e.get("status") is None:
            return
        seen.add(key)
        why = f": {e['reason']}" if e.get("reason") else ""
        con.print(f"    {e['asg']}: {e['status']} {e.get('percent', 0)}%{why}")

    return show


def _images(ctx: Any, asg_name: str, region: str) -> Counter[str]:
    t = next(t for t in _targets(ctx) if t.region == region)
    asg = ctx.conn.client("autoscaling", region, t.role_arn)
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])
    ids = [i["InstanceId"] for g in groups["AutoScalingGroups"] for i in g["Instances"]]
    ec2 = ctx.conn.client("ec2", region, t.role_arn)
    res = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
    return Counter(i["ImageId"] for r in res for i in r["Instances"])


def run_rollout(ctx: Any) -> None:
    con = ctx.con
    con.rule("9. Roll out: drift, a canary instance refresh, drift again")
    before = _drift(ctx, "before")
    if not before:
        con.print("(nothing behind the channel in the demo fleet: skipped)")
        return
    try:
        plan = rollout.make_plan(ctx.conn, _targets(ctx), FAMILY, CHANNEL, canary=10)
    except AmictlError as exc:
        con.print(f"rollout refused: {exc.message}")
        return
    for r in plan.rows():
        con.print(
            f"`amictl rollout {FAMILY} --channel {CHANNEL} --canary 10% --wait`: {r['asg']} "
            f"({r['region']}): {r['to_replace']} of {r['instances']} instances "
            f"{r['current_version']} -> {r['new_version']}, canary 10% first"
        )
    con.print(
        "    (the sandbox runs Auto Scaling 1000x faster than AWS: the 600 s canary wait takes "
        "0.6 s, a batch 0.3 s)"
    )
    rollout.save_plan(ctx.store, plan)
    out = rollout.execute(
        ctx.conn, ctx.store, plan, rollout.Options(wait=True, poll=0.2), _follow(con)
    )
    for r in out.rows():
        running = _images(ctx, r["asg"], r["region"])
        chan = plan.new_images.get(f"{r['account']}/{r['region']}")
        con.print(
            f"rollout {out.status}: {r['asg']} runs "
            + ", ".join(f"{n} x {img}" for img, n in sorted(running.items()))
            + f" (the channel's image: {chan})"
        )
    _drift(ctx, "after")
    run_allowed(ctx)


def run_allowed(ctx: Any) -> None:
    con = ctx.con
    con.rule("10. Allowed AMIs in audit mode: what the channels allow, what would be blocked")
    targets = _targets(ctx)
    plans = allowed.plan_set(ctx.conn, targets, "audit-mode", ["amazon"])
    con.print("`amictl allowed-images set --from-channels --also amazon --mode audit-mode`:")
    for p in plans:
        con.print(f"  {p['region']}: {p['current_state']} -> {p['new_state']}")
        for w in p["why"]:
            con.print(f"    allow {w}")
    allowed.apply_set(ctx.conn, plans, ctx.store)
    con.print("`amictl allowed-images status`:")
    for r in allowed.status(ctx.conn, targets):
        bad = r["noncompliant_instances"]
        n = len(r["criteria"])
        con.print(
            f"  {r['region']}: {r['state']}, {n} {'criterion' if n == 1 else 'criteria'}; "
            + (
                f"{plural(len(bad), 'running instance')} on images not allowed"
                if bad
                else "every running instance's image is allowed (the account's own, or Amazon's)"
            )
        )
        for i in bad[:4]:
            con.print(f"    {i['instance_id']} {i['image_id']} {i.get('image_name') or ''}")
    con.print(
        "Audit mode only reports (ImageAllowed): nothing is blocked. `--mode enabled` hides "
        "and refuses the others, and is refused while a running instance or launcher would "
        "lose its image, unless `--allow-noncompliant` names it."
    )
