"""The demo's lifecycle steps after the inventory: plan, explain, apply, journal, idempotence."""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from typing import Any

from ..policy import parse_policy_text, plan
from .demo_apply import run_apply
from .demo_release import run_release
from .plan_cmd import print_plan


def demo_policy_text() -> str:
    return files("amictl").joinpath("data/demo-policy.yaml").read_text()


def run_lifecycle(ctx: Any) -> None:
    con = ctx.con
    policy = parse_policy_text(demo_policy_text(), "demo-policy.yaml")
    con.rule("2. Plan: a pure function of (inventory, policy, now)")
    con.print(
        "Policy: keep the 2 newest of each family and anything in use, shared, held, recent or launched "
        "in the last 30 days. CI images are retired in stages (deprecated now, deregistered 14 days "
        "later); the rest are retired at once with their snapshots; orphaned snapshots made for images "
        "are deleted. Nothing changes yet."
    )
    now = dt.datetime.now(dt.UTC)
    p = plan(ctx.inv, policy, now)
    print_plan(p)
    ctx.plan = p
    ctx.policy = policy
    con.rule("3. Explain: every reason, for kept and retired images")
    for alias in ("web-server-v5", "app-db-v2", "base-al2023-v1", "ci-runner-v3"):
        ami = ctx.aliases[alias]
        d = p.decision(ami)
        if d is None:
            continue
        con.print(f"[bold]{alias}[/] ({ami}): {d.verdict} (rule {d.rule})")
        for r in d.reasons:
            con.print(f"    - {r}")
    run_apply(ctx)
    run_release(ctx)
