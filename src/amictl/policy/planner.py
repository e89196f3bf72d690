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
import fnmatch
import functools
import gc
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..durations import human_duration
from ..model import IN_USE_KINDS, Image, Inventory, Snapshot, iso, parse_time
from ..pricing import monthly_cost
from .holds import hold_reasons
from .model import Policy, Rule
from .plan_model import ACTION_TYPES, Action, Decision, Plan
from .serial import policy_to_dict

MARK_TAG = "amictl:retire-since"
BY_TAG = "amictl:retired-by"
DEPRECATION_SLACK = dt.timedelta(minutes=10)
STAGES = ("deprecate", "disable", "deregister")
SNAPSHOT_MODE_ORDER = {"keep": 0, "archive": 1, "delete": 2}  # lower = more conservative


@dataclass
class _Eval:
    image: Image
    rule: Rule | None
    held: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    in_use: bool = (
        False  # something can still launch it (whether or not the rule keeps it for that)
    )

    @property
    def kept(self) -> bool:
        return self.rule is None or bool(self.held) or bool(self.keep) or bool(self.blocked)


@dataclass
class _SnapPlan:
    snap: Snapshot
    mode: str
    after: list[str] = field(default_factory=list)
    rules: set[str] = field(default_factory=set)
    images: list[str] = field(default_factory=list)
    family: str | None = None


def _days(td: dt.timedelta) -> str:
    return (
        f"{td.days}d"
        if td.days or not td.total_seconds()
        else f"{int(td.total_seconds() // 3600)}h"
    )


@functools.lru_cache(maxsize=1024)
def _glob_re(globs: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


def _selects(rule: Rule, img: Image, now: dt.datetime) -> bool:
    s = rule.select
    if img.family is None:
        if not s.unfamilied:
            return False
    elif s.families is not None and not _glob_re(s.families).match(img.family):
        return False
    if s.name is not None and not _glob_re((s.name,)).match(img.name or ""):
        return False
    if s.tags and any(img.tags.get(k) != v for k, v in s.tags):
        return False
    if s.regions is not None and not _glob_re(s.regions).match(img.region):
        return False
    return not (
        s.older_than is not None and (img.created_at is None or now - img.created_at < s.older_than)
    )


def _holds(
    policy: Policy, inv: Inventory, img: Image, now: dt.datetime, warnings: list[str]
) -> list[str]:
    """Holds on the image, and on each of its snapshots (a held snapshot holds its image)."""
    out = hold_reasons(
        img.tags,
        img.protected,
        img.deregistration_protection,
        policy.holds,
        now,
        warnings,
        img.image_id,
    )
    for sid in img.snapshot_ids:
        snap = inv.snapshot_by_id.get(sid)
        if snap is not None and snap.tags:
            out.extend(
                f"{r} (on its snapshot {sid})" for r in snapshot_holds(policy, snap, now, warnings)
            )
    return out


def snapshot_holds(
    policy: Policy, snap: Snapshot, now: dt.datetime, warnings: list[str] | None = None
) -> list[str]:
    return hold_reasons(snap.tags, False, "disabled", policy.holds, now, warnings, snap.snapshot_id)


def _evaluate(
    inv: Inventory,
    policy: Policy,
    img: Image,
    rule: Rule,
    now: dt.datetime,
    warnings: list[str],
    explain: bool = False,
) -> _Eval:
    """Holds and keep conditions of one selected image. With ``explain``, every condition is
    also recorded as a check (held or not) with its detail; plans skip that work."""
    ev = _Eval(img, rule, held=_holds(policy, inv, img, now, warnings) if policy.holds else [])
    k = rule.keep
    checks = ev.checks
    refs = inv.refs_by_image.get(img.image_id, ())
    use = [r for r in refs if r.kind in IN_USE_KINDS]
    if k.latest is not None and img.family:
        rank, size = inv.family_rank.get(img.image_id, (None, 0))
        hit = rank is not None and rank <= k.latest
        if hit or explain:
            detail = (
                f"version {img.version} is #{rank} of {size} in family {img.family} ({img.region})"
            )
            checks.append((f"latest {k.latest}", hit, detail))
            if hit:
                ev.keep.append(f"among the {k.latest} newest of its family: {detail}")
    if k.newer_than is not None:
        age = now - img.created_at if img.created_at else dt.timedelta(0)
        hit = age < k.newer_than
        if explain:
            checks.append((f"newer_than {_days(k.newer_than)}", hit, f"{age.days} days old"))
        if hit:
            ev.keep.append(f"newer than {_days(k.newer_than)}: {age.days} days old")
    ev.in_use = bool(use)
    if use:
        checks.append(("in_use", True, "; ".join(r.detail for r in use)))
        if k.in_use:
            ev.keep.extend(f"in use: {r.detail}" for r in use)
        else:
            ev.unsafe.extend(f"in use ({r.detail}) but the rule says in_use: false" for r in use)
    elif explain:
        checks.append(
            (
                "in_use",
                False,
                "no instance, launch template version, launch configuration, "
                "ASG, SSM parameter or channel uses it",
            )
        )
    if k.launched_within is not None:
        last = img.last_launched_time
        hit = last is not None and now - last <= k.launched_within
        if explain:
            checks.append(
                (
                    f"launched_within {_days(k.launched_within)}",
                    hit,
                    f"last launched {iso(last)}" if last else "never launched (or not reported)",
                )
            )
        if hit and last is not None:
            ev.keep.append(
                f"launched {(now - last).days} days ago (within {_days(k.launched_within)})"
            )
    if img.public or img.shared_with:
        targets = (["public"] if img.public else []) + img.shared_with
        checks.append(("shared", True, ", ".join(targets)))
        if k.shared:
            ev.keep.append(f"shared: {', '.join(targets)}")
        else:
            # Another account can launch it: retiring it is as unsafe as retiring one in use.
            ev.unsafe.append(f"shared ({', '.join(targets)}) but the rule says shared: false")
    elif explain:
        checks.append(("shared", False, "private"))
    if k.channels and not (k.in_use and use):
        ev.keep.extend(f"channel: {r.detail}" for r in refs if r.kind == "channel")
    if k.tags:
        hit = all(img.tags.get(t) == v for t, v in k.tags)
        if explain:
            checks.append(("tags", hit, ", ".join(f"{t}={v}" for t, v in k.tags)))
        if hit:
            ev.keep.append("tags: " + ", ".join(f"{t}={v}" for t, v in k.tags))
    if img.state == "pending":
        ev.keep.append("still pending")
    if inv.incomplete_index:
        incomplete = inv.incomplete_index.get((img.account, img.region))
        if incomplete:
            ev.blocked.append(
                "not retired: the inventory of {}/{} is incomplete ({}): no destructive action".format(
                    img.account,
                    img.region,
                    ", ".join(f"{s.kind}: {s.error_code}" for s in incomplete),
                )
            )
        if k.ancestors:
            unread = [
                s
                for s in inv.incomplete_index.get((img.account, "*"), [])
                if s.kind == "images" and s.region != img.region
            ]
            if unread:
                ev.blocked.append(
                    "not retired: images built from it may exist in "
                    + ", ".join(sorted({s.region for s in unread}))
                    + " which could not be read"
                )
    return ev


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
    warnings: list[str] = []
    inv.resolve_families(policy.families)
    images = sorted(
        (i for i in inv.images if i.owned), key=lambda i: (i.account, i.region, i.image_id)
    )

    evals: dict[str, _Eval] = {}
    for img in images:
        rule = next((r for r in policy.rules if _selects(r, img, now)), None)
        evals[img.image_id] = (
            _evaluate(inv, policy, img, rule, now, warnings, explain) if rule else _Eval(img, None)
        )

    # keep.ancestors: an image a kept image was built from stays (to a fixed point).
    children: dict[str, list[str]] = defaultdict(list)
    for i in inv.images:
        if i.source_image_id:
            children[i.source_image_id].append(i.image_id)
    parents = [evals[p] for p in children if p in evals]
    changed = True
    while changed:
        changed = False
        for ev in parents:
            if ev.kept or ev.rule is None or not ev.rule.keep.ancestors:
                continue
            kept_kids = [
                c for c in children.get(ev.image.image_id, []) if c not in evals or evals[c].kept
            ]
            if kept_kids:
                ev.keep.append("ancestor of kept image(s): " + ", ".join(sorted(kept_kids)))
                changed = True

    # An image built from it whose launch permissions were not read may be shared (kept),
    # and so keep it: no destructive stage for it either (to a fixed point).
    doubted: dict[str, list[str]] = {}
    changed = unread == "block"
    while changed:
        changed = False
        for ev in parents:
            pid = ev.image.image_id
            if pid in doubted or ev.kept or ev.rule is None or not ev.rule.keep.ancestors:
                continue
            kids = [
                c
                for c in children.get(pid, [])
                if c in evals
                and not evals[c].kept
                and (evals[c].image.lp == "unread" or c in doubted)
            ]
            if kids:
                doubted[pid] = sorted(kids)
                changed = True

    prices = {"*": dict(policy.prices)} if policy.prices else None
    rate_cache: dict[tuple[str, str], float] = {}
    actions: list[Action] = []
    decisions: list[Decision] = []
    counter = iter(range(1, 10**9))

    def new(
        type_: str, ev: _Eval, reasons: list[str], after: tuple[str, ...] = (), size_gib: int = 0
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

    def decide(ev: _Eval, verdict: str, rule_name: str | None, reasons: list[str]) -> None:
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

    deregistered: dict[str, tuple[Action, _Eval]] = {}
    for img in images:
        ev = evals[img.image_id]
        marked = MARK_TAG in img.tags
        owner = img.tags.get(BY_TAG)
        # A mark belongs to the policy named in amictl:retired-by. A mark without it (made
        # before marks recorded their policy) is adopted by a policy that selects the image.
        ours = marked and (owner == policy.name if owner else ev.rule is not None)
        foreign = marked and not ours

        if foreign and ev.rule is not None:
            left = (
                f"in retirement by policy {owner!r} (amictl:retired-by): "
                "left to it; this policy neither advances nor restores it"
            )
            decide(ev, "keep", ev.rule.name, [left, *ev.held, *ev.keep, *ev.blocked])
            continue
        if ev.kept:
            reasons = ev.held + ev.keep + ev.blocked
            if ev.rule is None:
                if not ours:
                    continue  # not selected and not marked by this policy: not part of this plan
                reasons = ["no rule selects it any more"]
            if ours:
                # undeprecate / enable first: they check the mark is this policy's, which
                # unmark removes
                restore = ["kept again: " + (reasons[0] if reasons else "")]
                first = []
                if img.deprecation_time is not None:
                    first.append(new("undeprecate", ev, restore).id)
                if img.state == "disabled":
                    first.append(new("enable", ev, restore).id)
                new("unmark", ev, restore, after=tuple(first))
            decide(ev, "keep", ev.rule.name if ev.rule else None, reasons)
            continue

        assert ev.rule is not None
        rule = ev.rule
        why = [f"rule {rule.name}: nothing keeps it"] + ev.unsafe
        since = None
        if marked:
            try:
                since = parse_time(img.tags[MARK_TAG])
            except ValueError:
                warnings.append(
                    f"{img.image_id}: bad {MARK_TAG} tag {img.tags[MARK_TAG]!r}: not advanced"
                )
                why.append(f"its {MARK_TAG} tag is not a time: no stage is due")
        chain: list[Action] = []
        if not marked:
            chain.append(new("mark", ev, why))
            since = now
        elif owner is None:
            # adopt a mark made before marks recorded their policy
            chain.append(new("mark", ev, [*why, f"records {BY_TAG}={policy.name}"]))
        if since is not None and marked:
            why.append(f"marked for retirement since {iso(since)}")
        if img.lp == "cached" and img.lp_read_at is not None:
            why.append(
                f"launch permissions cached: read {human_duration(max(now - img.lp_read_at, dt.timedelta(0)))} ago "
                "(apply re-reads them live)"
            )
        blind = (img.lp == "unread" or img.image_id in doubted) and unread == "block"
        stopped_blind = False
        reached = "mark"
        for stage in STAGES:
            delay = getattr(rule.retire, stage)
            if delay is None or since is None or since + delay > now:
                continue
            if blind:
                why.append(
                    f"{stage} stage due but its launch permissions could not be read: "
                    "no destructive stage"
                    if img.image_id not in doubted
                    else f"{stage} stage due but the launch permissions of images built "
                    f"from it ({', '.join(doubted[img.image_id])}) could not be read: "
                    "no destructive stage"
                )
                stopped_blind = True
                if blocked is not None:
                    blocked.add(img.image_id)
                break
            after = (chain[-1].id,) if chain else ()
            if stage == "deprecate":
                reached = stage
                # apply deprecates "at the next whole minute" (AWS refuses past times): a
                # deprecation that close counts as done, a far-future one is brought forward.
                if not img.deprecated_at(now + DEPRECATION_SLACK):
                    chain.append(
                        new(
                            "deprecate",
                            ev,
                            why + [f"deprecate stage due ({_days(delay)} after mark)"],
                            after,
                        )
                    )
            elif stage == "disable":
                reached = stage
                if img.state != "disabled":
                    chain.append(
                        new(
                            "disable",
                            ev,
                            why + [f"disable stage due ({_days(delay)} after mark)"],
                            after,
                        )
                    )
            else:
                if img.protected:
                    why.append(
                        f"deregister stage due but deregistration protection is "
                        f"{img.deregistration_protection}: not deregistered"
                    )
                    continue
                reached = stage
                a = new(
                    "deregister",
                    ev,
                    why + [f"deregister stage due ({_days(delay)} after mark)"],
                    after,
                    size_gib=img.size_gib,
                )
                chain.append(a)
                deregistered[img.image_id] = (a, ev)
        if blind and not stopped_blind and img.lp == "unread":
            why.append("launch permissions not read: marking does not need them")
        decide(ev, reached, rule.name, why)

    # Snapshots of deregistered images: only when no staying image uses them.
    snap_plans: dict[str, _SnapPlan] = {}
    for image_id, (dereg, ev) in deregistered.items():
        assert ev.rule is not None
        for sid in ev.image.snapshot_ids:
            users = inv.images_by_snapshot.get(sid, [])
            staying = sorted(u.image_id for u in users if u.image_id not in deregistered)
            if staying:
                warnings.append(
                    f"snapshot {sid} of {image_id} stays: also used by {', '.join(staying)}"
                )
                continue
            snap = inv.snapshot_by_id.get(sid)
            if snap is None or (snap.owner_id and snap.owner_id != snap.account):
                continue
            held = snapshot_holds(policy, snap, now, warnings) if policy.holds else []
            if held:
                warnings.append(f"snapshot {sid} of {image_id} stays: {held[0]}")
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
            if inv.images_by_snapshot.get(snap.snapshot_id) or snap.snapshot_id in snap_plans:
                continue
            if snap.owner_id and snap.owner_id != snap.account:
                continue
            if snap.start_time is None or now - snap.start_time < o.older_than:
                continue
            made_for = snap.made_for_image
            if o.only_from_images and (made_for is None or made_for in inv.by_id):
                continue
            if inv.incomplete_index.get((snap.account, snap.region)):
                continue
            if policy.holds and snapshot_holds(policy, snap, now, warnings):
                reported += 1
                continue
            if o.action == "report" or (o.action == "archive" and snap.storage_tier == "archive"):
                reported += 1
                continue
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
