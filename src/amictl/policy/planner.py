"""The planner: a pure function (inventory, policy, now) -> Plan.

Safety rules (shared/spec/policy.md), never broken:
1. only images the account owns are acted on;
2. holds always win; in-use images are kept unless ``keep.in_use: false`` (such
   actions are flagged ``unsafe`` and apply needs ``--force-unsafe``);
3. an incomplete (account, region) gets no destructive action, nor a new mark;
4. a snapshot still used by a registered image that this plan does not
   deregister is never deleted or archived.
"""

from __future__ import annotations

import datetime as dt
import gc
from dataclasses import dataclass, field
from typing import Any

from ..keep import Eval, assess, image_decision, snapshot_keep_reasons
from ..model import Inventory, Snapshot, iso
from ..pricing import monthly_cost
from .model import Policy
from .plan_model import ACTION_TYPES, Action, Decision, Plan
from .serial import policy_to_dict

SNAPSHOT_MODE_ORDER = {"keep": 0, "archive": 1, "delete": 2}  # lower = more conservative


@dataclass
class _SnapPlan:
    snap: Snapshot
    mode: str
    after: list[str] = field(default_factory=list)
    rules: set[str] = field(default_factory=set)
    images: list[str] = field(default_factory=list)
    family: str | None = None


def plan(
    inv: Inventory,
    policy: Policy,
    now: dt.datetime,
    created_at: dt.datetime | None = None,
    explain: bool = False,
    unread: str = "block",
    blocked: set[str] | None = None,
) -> Plan:
    """Compute the plan. Pure: the same (inventory, policy, now) gives the same plan.

    Images whose launch permissions were not read (``Image.lp == "unread"``) get no
    destructive stage (``unread="block"``); ``unread="assume-private"`` plans them as
    private. ``blocked`` (a set, filled in) receives the unread images that had a
    destructive stage due: ``policy.facts`` reads their sharing and plans again.

    The cyclic garbage collector is paused while planning: the planner makes many small
    objects and no cycles, and full collections over a 100k-image inventory cost more than
    the planning itself (bench/plan.py).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _plan(inv, policy, now, created_at, explain, unread, blocked)
    finally:
        if enabled:
            gc.enable()


def _plan(
    inv: Inventory,
    policy: Policy,
    now: dt.datetime,
    created_at: dt.datetime | None,
    explain: bool,
    unread: str = "block",
    blocked: set[str] | None = None,
) -> Plan:
    now = now.astimezone(dt.UTC)
    # The one decision (amictl.keep): apply calls the same function on a live view.
    assessment = assess(inv, policy, now, explain=explain, unread=unread)
    evals = assessment.evals
    warnings = assessment.warnings
    holds = assessment.holds
    images = sorted(
        evals.values(), key=lambda e: (e.image.account, e.image.region, e.image.image_id)
    )

    prices = {"*": dict(policy.prices)} if policy.prices else None
    rate_cache: dict[tuple[str, str], float] = {}
    actions: list[Action] = []
    decisions: list[Decision] = []
    counter = iter(range(1, 10**9))

    def new(
        type_: str, ev: Eval, reasons: list[str], after: tuple[str, ...] = (), size_gib: int = 0
    ) -> Action:
        img = ev.image
        a = Action(
            id=f"a{next(counter)}",
            type=type_,
            account=img.account,
            region=img.region,
            rule=ev.rule.name if ev.rule else "",
            reasons=tuple(reasons),
            image_id=img.image_id,
            after=after,
            unsafe=bool(ev.unsafe) and type_ in ("deprecate", "disable", "deregister"),
            family=img.family,
            size_gib=size_gib,
            expect=(
                ("in_use", ev.in_use),
                ("protected", img.protected),
                ("shared", img.shared),
                ("state", img.state),
            )
            if type_ in ("deprecate", "disable", "deregister")
            else (),
        )
        actions.append(a)
        return a

    def decide(ev: Eval, verdict: str, rule_name: str | None, reasons: list[str]) -> None:
        img = ev.image
        decisions.append(
            Decision(
                img.image_id,
                img.region,
                img.account,
                verdict,
                rule_name,
                tuple(reasons),
                img.family,
                img.version,
                tuple(ev.checks),
            )
        )

    deregistered: dict[str, tuple[Action, Eval]] = {}
    for ev in images:
        img = ev.image
        d = image_decision(ev, policy, now, assessment.doubted, unread=unread, warnings=warnings)
        if d.verdict == "keep":
            if ev.rule is None and not d.restore:
                continue  # not selected and not marked by this policy: not part of this plan
            first: list[str] = []
            for type_, reasons in d.restore:
                after = tuple(first) if type_ == "unmark" else ()
                a = new(type_, ev, reasons, after=after)
                if type_ != "unmark":
                    first.append(a.id)
            decide(ev, "keep", ev.rule.name if ev.rule else None, d.reasons)
            continue
        assert ev.rule is not None
        if d.blind and blocked is not None:
            blocked.add(img.image_id)
        chain: list[Action] = []
        for type_, reasons in d.chain:
            after = (chain[-1].id,) if chain else ()
            a = new(
                type_, ev, reasons, after, size_gib=img.size_gib if type_ == "deregister" else 0
            )
            chain.append(a)
            if type_ == "deregister":
                deregistered[img.image_id] = (a, ev)
        decide(ev, d.verdict, ev.rule.name, d.reasons)

    # Snapshots of deregistered images: only when no staying image uses them.
    snap_plans: dict[str, _SnapPlan] = {}
    leaving = frozenset(deregistered)
    for image_id, (dereg, ev) in deregistered.items():
        assert ev.rule is not None
        for sid in ev.image.snapshot_ids:
            snap = inv.snapshot_by_id.get(sid)
            if snap is None:
                continue
            stays = snapshot_keep_reasons(
                inv, policy, holds, snap, now, of_image=image_id, leaving=leaving, warnings=warnings
            )
            if stays:
                warnings.append(f"snapshot {sid} of {image_id} stays: {stays[0]}")
                continue
            sp = snap_plans.setdefault(
                sid, _SnapPlan(snap, ev.rule.retire.snapshots, family=ev.image.family)
            )
            if SNAPSHOT_MODE_ORDER[ev.rule.retire.snapshots] < SNAPSHOT_MODE_ORDER[sp.mode]:
                sp.mode = ev.rule.retire.snapshots
            sp.after.append(dereg.id)
            sp.rules.add(ev.rule.name)
            sp.images.append(image_id)
    savings = 0.0
    for sid in sorted(
        snap_plans, key=lambda s: (snap_plans[s].snap.account, snap_plans[s].snap.region, s)
    ):
        sp = snap_plans[sid]
        if sp.mode == "keep" or (sp.mode == "archive" and sp.snap.storage_tier == "archive"):
            continue
        imgs = sorted(sp.images)
        reason = f"snapshot of deregistered image {', '.join(imgs)}; no staying image uses it"
        a = Action(
            id=f"a{next(counter)}",
            type=f"{sp.mode}-snapshot",
            account=sp.snap.account,
            region=sp.snap.region,
            rule=",".join(sorted(sp.rules)),
            reasons=(reason,),
            image_id=imgs[0],
            snapshot_id=sid,
            after=tuple(sorted(sp.after)),
            size_gib=sp.snap.size_gib,
            family=sp.family,
        )
        actions.append(a)
        savings += _saving(a, prices, rate_cache)

    # Orphaned snapshots (no registered image uses them).
    reported = 0
    o = policy.orphaned
    if o is not None:
        for snap in inv.snapshots:
            if snap.snapshot_id in snap_plans:
                continue
            stays = snapshot_keep_reasons(
                inv, policy, holds, snap, now, of_image=None, warnings=warnings
            )
            held = [r for r in stays if r.startswith("held:")]
            if len(held) != len(stays):
                continue  # not an orphan by the policy's criteria
            if (
                held
                or o.action == "report"
                or (o.action == "archive" and snap.storage_tier == "archive")
            ):
                reported += 1
                continue
            assert snap.start_time is not None
            made_for = snap.made_for_image
            origin = (
                f"made for {made_for} (no longer registered)" if made_for else "a volume backup"
            )
            a = Action(
                id=f"a{next(counter)}",
                type=f"{o.action}-snapshot",
                account=snap.account,
                region=snap.region,
                rule="snapshots.orphaned",
                reasons=(
                    f"orphaned: no registered image uses it; {origin}; "
                    f"{(now - snap.start_time).days} days old",
                ),
                snapshot_id=snap.snapshot_id,
                size_gib=snap.size_gib,
            )
            actions.append(a)
            savings += _saving(a, prices, rate_cache)

    summary: dict[str, int | float] = {t: 0 for t in ACTION_TYPES}
    for a in actions:
        summary[a.type] += 1
    summary["images_selected"] = len(decisions)
    summary["images_kept"] = sum(1 for d in decisions if d.verdict == "keep")
    summary["orphaned_snapshots_reported"] = reported
    summary["unsafe_actions"] = sum(1 for a in actions if a.unsafe)
    summary["monthly_savings_usd"] = round(savings, 2)
    sizes: dict[str, int] = {}
    for a in actions:
        if a.type == "deregister" and a.family:
            key = f"{a.account}/{a.region}/{a.family}"
            if key not in sizes:
                sizes[key] = len(inv.families.get((a.account, a.region, a.family), []))
    summary_out: dict[str, Any] = dict(summary)
    summary_out["family_sizes"] = dict(sorted(sizes.items()))
    complete = inv.complete
    return Plan(
        created_at=iso(created_at or now) or "",
        now=iso(now) or "",
        policy=policy_to_dict(policy),
        inventory={
            "complete": complete,
            "regions": inv.regions,
            "accounts": inv.accounts,
            "fingerprint": inv.fingerprint(),
            "incomplete": [
                f"{s.account}/{s.region}/{s.kind}: {s.error_code}" for s in inv.incomplete_slices()
            ],
        },
        actions=tuple(actions),
        decisions=tuple(decisions),
        summary=summary_out,
        warnings=tuple(sorted(set(warnings))),
    )


def _saving(
    a: Action, prices: dict[str, dict[str, float]] | None, cache: dict[tuple[str, str], float]
) -> float:
    def rate(tier: str) -> float:
        key = (a.region, tier)
        if key not in cache:
            cache[key] = monthly_cost(1, a.region, tier, prices)
        return cache[key]

    if a.type == "delete-snapshot":
        return a.size_gib * rate("standard")
    if a.type == "archive-snapshot":
        return a.size_gib * (rate("standard") - rate("archive"))
    return 0.0
