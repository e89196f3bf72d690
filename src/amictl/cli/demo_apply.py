"""The demo's apply steps: Recycle Bin status, apply, journal, the next plan is empty."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from ..apply import ApplyOptions, apply_plan
from ..apply.executor import describe_coverage, execute, prepare
from ..durations import plural
from ..inventory import scan
from ..policy import plan as make_plan
from .demo_recyclebin import ensure_rule, show_restore
from .output import wrap_width
from .plan_cmd import plan_line

LISTED = ("deregister", "delete-snapshot")
UNLISTED_WORDS = {"mark": "mark", "deprecate": "deprecation", "disable": "disabling"}


def run_apply(ctx: Any) -> None:
    con = ctx.con
    p = ctx.plan
    con.rule("4. Apply: checked, re-checked, journaled")
    con.print(
        "No override flag: the blast-radius limits stop policy bugs (a whole family, a quarter of "
        "a region), not routine work. Each image is re-checked live just before it is touched."
    )
    ensure_rule(ctx)
    prep = prepare(ctx.conn, p, ApplyOptions(), ctx.store)
    for where, c in sorted(prep.recycle_bin.items()):
        con.print(f"Recovery in {where}: {describe_coverage(c)}")

    con.print(
        "Listed as they happen: deregistrations, snapshot deletions and anything not done. "
        "Marks (a tag) and deprecations are done too, and counted below, but not listed."
    )
    listed: list[str] = []

    def progress(a, st, msg):  # type: ignore[no-untyped-def]
        if a.type in LISTED or st != "done":
            listed.append(a.id)
            head = f"  {st:<7} {a.id:<5} {a.type:<16} {a.snapshot_id or a.image_id} "
            plan_line(con, head, msg, wrap_width())

    result = execute(ctx.conn, ctx.store, prep, ApplyOptions(), progress)
    ctx.result = result
    by_id = {a.id: a for a in p.actions}
    shown, done = set(listed), set(result.done)
    listed_done = [i for i in listed if i in done]  # the skipped ones are counted apart
    unlisted = Counter(by_id[i].type for i in result.done if i not in shown)
    words = [plural(n, UNLISTED_WORDS.get(t, t)) for t, n in sorted(unlisted.items())]
    also = " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)
    con.print(
        f"{plural(len(result.done), 'action')} done ({len(listed_done)} listed above"
        + (f"; {also} not listed" if also else "")
        + f"), {len(result.skipped)} skipped, {len(result.failed)} failed; "
        f"caller {', '.join(result.caller.values())}."
    )
    gone = [a.image_id for a in p.actions if a.type == "deregister" and a.id in result.done]
    if gone:
        show_restore(ctx, gone[0])
    con.rule("5. Journal")
    rows = ctx.store.journal_rows(plan_checksum=p.checksum)
    counts = Counter((r["type"], r["status"]) for r in rows)
    for (typ, st), n in sorted(counts.items()):
        con.print(f"  {typ:<16} {st:<9} x{n}")
    con.print(
        "Each action was written as 'intended' before its AWS call and with its result after: a killed "
        "apply resumes from here (`amictl apply --resume`) without redoing or skipping anything."
    )
    con.rule("6. Idempotence: plan again")
    inv = scan(ctx.conn)
    again = make_plan(inv, ctx.policy, dt.datetime.now(dt.UTC))
    restored = {gone[0]} if gone else set()
    con.print(
        f"The next plan has {len(again.actions)} actions"
        + (
            ": the fleet is where the policy wants it."
            if not again.actions
            else ": "
            + ", ".join(f"{a.type} {a.snapshot_id or a.image_id}" for a in again.actions)
            + (
                " (the image restored above is still marked for retirement, so the policy "
                "retires it again unless someone tags it or uses it)"
                if any(a.image_id in restored for a in again.actions)
                else ""
            )
        )
    )
    second = apply_plan(ctx.conn, ctx.store, p, ApplyOptions())
    con.print(
        f"Re-running the same plan: {len(second.already_done)} actions already done, "
        f"{len(second.done)} redone."
    )
