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
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from ..keep import (
    Assessment,
    Eval,
    ImageDecision,
    assess,
    image_decision,
    orphan_candidates,
    snapshot_keep_reasons,
)
from ..keep.decide import STAGES, plainly_kept
from ..memory import gc_paused
from ..model import Inventory, Snapshot, iso
from ..pricing import monthly_cost
from .model import Hold, Policy
from .plan_model import ACTION_TYPES, Action, Decision, Plan
from .serial import policy_to_dict

SNAPSHOT_MODE_ORDER = {"keep": 0, "archive": 1, "delete": 2}  # lower = more conservative


@dataclass(slots=True)
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
    with gc_paused(promote=True):
        return _plan(inv, policy, now, created_at, explain, unread, blocked)


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
    b = _Builder(inv, policy, now, assessment.warnings)
    deregistered = b.image_actions(assessment, unread, blocked)
    snap_plans = b.snapshot_actions(deregistered, assessment.holds)
    reported = b.orphan_actions(set(snap_plans), assessment.holds)
    return Plan(
        created_at=iso(created_at or now) or "",
        now=iso(now) or "",
        policy=policy_to_dict(policy),
        inventory={
            "complete": inv.complete,
            "regions": inv.regions,
            "accounts": inv.accounts,
            "fingerprint": inv.fingerprint(),
            "incomplete": [
                f"{s.account}/{s.region}/{s.kind}: {s.error_code}" for s in inv.incomplete_slices()
            ],
        },
        actions=tuple(b.actions),
        decisions=tuple(b.decisions),
        summary=b.summary(reported),
        warnings=tuple(sorted(set(b.warnings))),
    )


class _Builder:
    """The plan's actions and decisions as they are made, numbered in order (``a1``, ``a2``,
    ...), with the monthly saving of each snapshot action."""

    def __init__(
        self, inv: Inventory, policy: Policy, now: dt.datetime, warnings: list[str]
    ) -> None:
        self.inv, self.policy, self.now, self.warnings = inv, policy, now, warnings
        self.prices = {"*": dict(policy.prices)} if policy.prices else None
        self.rate_cache: dict[tuple[str, str], float] = {}
        self.actions: list[Action] = []
        self.decisions: list[Decision] = []
        self.savings = 0.0
        # an action's expectations, one tuple per distinct value (actions never change them)
        self._expects: dict[tuple[bool, bool, bool, str], tuple[tuple[str, Any], ...]] = {}

    def next_id(self) -> str:
        """The id of the next action added: ``a1``, ``a2``, ... in the order added."""
        return f"a{len(self.actions) + 1}"

    def add(self, a: Action) -> Action:
        self.actions.append(a)
        self.savings += _saving(a, self.prices, self.rate_cache)
        return a

    def expect(self, ev: Eval) -> tuple[tuple[str, Any], ...]:
        """What apply checks the image still is before a retirement stage."""
        img = ev.image
        key = (ev.in_use, img.protected, img.shared, img.state)
        out = self._expects.get(key)
        if out is None:
            out = self._expects[key] = tuple(
                zip(("in_use", "protected", "shared", "state"), key, strict=True)
            )
        return out

    def image_action(
        self,
        type_: str,
        ev: Eval,
        reasons: list[str],
        after: tuple[str, ...] = (),
        size_gib: int = 0,
    ) -> Action:
        img = ev.image
        stage = type_ in STAGES
        a = Action(  # (by position: a call by keywords costs more than the object)
            self.next_id(),  # id
            type_,
            img.account,
            img.region,
            ev.rule.name if ev.rule else "",  # rule
            tuple(reasons),
            img.image_id,
            None,  # snapshot_id
            after,
            size_gib,
            bool(ev.unsafe) and stage,  # unsafe
            img.family,
            self.expect(ev) if stage else (),
        )
        self.actions.append(a)  # (no saving: only snapshot actions save)
        return a

    def decide(self, ev: Eval, verdict: str, rule_name: str | None, reasons: list[str]) -> None:
        img = ev.image
        self.decisions.append(
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

    def image_actions(
        self, assessment: Assessment, unread: str, blocked: set[str] | None
    ) -> dict[str, tuple[Action, Eval]]:
        """Each selected image's decision and its actions (the marks a kept image loses, or
        its retirement chain); returns the images deregistered, with their deregister."""
        deregistered: dict[str, tuple[Action, Eval]] = {}
        # by (account, region, image id): two stable sorts on C key functions, not a
        # Python key tuple per image
        evals = sorted(assessment.evals.values(), key=attrgetter("image.image_id"))
        evals.sort(key=attrgetter("image.account", "image.region"))
        policy, now, doubted, warnings = self.policy, self.now, assessment.doubted, self.warnings
        for ev in evals:
            if plainly_kept(ev):  # image_decision would say "keep", ev.reasons, no action
                if ev.rule is not None:  # else: not part of this plan
                    self.decide(ev, "keep", ev.rule.name, ev.reasons)
                continue
            d = image_decision(ev, policy, now, doubted, unread=unread, warnings=warnings)
            if d.verdict == "keep":
                if d.restore:
                    self._restore(ev, d)
                elif ev.rule is not None:  # else: not part of this plan
                    self.decide(ev, "keep", ev.rule.name, d.reasons)
                continue
            assert ev.rule is not None
            if d.blind and blocked is not None:
                blocked.add(ev.image.image_id)
            chain: list[Action] = []
            for type_, reasons in d.chain:
                size = ev.image.size_gib if type_ == "deregister" else 0
                a = self.image_action(type_, ev, reasons, (chain[-1].id,) if chain else (), size)
                chain.append(a)
                if type_ == "deregister":
                    deregistered[ev.image.image_id] = (a, ev)
            self.decide(ev, d.verdict, ev.rule.name, d.reasons)
        return deregistered

    def _restore(self, ev: Eval, d: ImageDecision) -> None:
        """A kept image (selected, or marked by this policy): the actions that undo this
        policy's marks (unmark last)."""
        first: list[str] = []
        for type_, reasons in d.restore:
            a = self.image_action(
                type_, ev, reasons, after=tuple(first) if type_ == "unmark" else ()
            )
            if type_ != "unmark":
                first.append(a.id)
        self.decide(ev, "keep", ev.rule.name if ev.rule else None, d.reasons)

    def snapshot_actions(
        self, deregistered: dict[str, tuple[Action, Eval]], holds: tuple[Hold, ...]
    ) -> dict[str, _SnapPlan]:
        """Snapshots of deregistered images: only when no staying image uses them."""
        snap_plans: dict[str, _SnapPlan] = {}
        leaving = frozenset(deregistered)
        for image_id, (dereg, ev) in deregistered.items():
            assert ev.rule is not None
            for sid in ev.image.snapshot_ids:
                snap = self.inv.snapshot_by_id.get(sid)
                if snap is None:
                    continue
                stays = snapshot_keep_reasons(
                    self.inv, self.policy, holds, snap, self.now,
                    of_image=image_id, leaving=leaving, warnings=self.warnings,
                )  # fmt: skip
                if stays:
                    self.warnings.append(f"snapshot {sid} of {image_id} stays: {stays[0]}")
                    continue
                mode = ev.rule.retire.snapshots
                sp = snap_plans.setdefault(sid, _SnapPlan(snap, mode, family=ev.image.family))
                if SNAPSHOT_MODE_ORDER[mode] < SNAPSHOT_MODE_ORDER[sp.mode]:
                    sp.mode = mode
                sp.after.append(dereg.id)
                sp.rules.add(ev.rule.name)
                sp.images.append(image_id)
        for sid in sorted(snap_plans, key=lambda s: (snap_plans[s].snap.account, snap_plans[s].snap.region, s)):  # fmt: skip
            sp = snap_plans[sid]
            if sp.mode == "keep" or (sp.mode == "archive" and sp.snap.storage_tier == "archive"):
                continue
            imgs = sorted(sp.images)
            self.add(
                Action(  # (by position, as image_action)
                    self.next_id(),  # id
                    f"{sp.mode}-snapshot",  # type
                    sp.snap.account,
                    sp.snap.region,
                    ",".join(sorted(sp.rules)),  # rule
                    (
                        f"snapshot of deregistered image {', '.join(imgs)}; "
                        "no staying image uses it",
                    ),  # reasons
                    imgs[0],  # image_id
                    sid,  # snapshot_id
                    tuple(sorted(sp.after)),  # after
                    sp.snap.size_gib,
                    False,  # unsafe
                    sp.family,
                )
            )
        return snap_plans

    def orphan_actions(self, planned: set[str], holds: tuple[Hold, ...]) -> int:
        """Orphaned snapshots (no registered image uses them); returns how many are only
        reported (held, ``action: report``, or already archived)."""
        o = self.policy.orphaned
        if o is None:
            return 0
        reported = 0
        inv, policy, now, warnings = self.inv, self.policy, self.now, self.warnings
        type_ = f"{o.action}-snapshot"
        for snap in orphan_candidates(inv, inv.snapshots):
            if snap.snapshot_id in planned:
                continue
            stays = snapshot_keep_reasons(
                inv, policy, holds, snap, now, of_image=None, warnings=warnings
            )
            if stays:
                if any(not r.startswith("held:") for r in stays):
                    continue  # not an orphan by the policy's criteria
                reported += 1  # held
                continue
            if o.action == "report" or (o.action == "archive" and snap.storage_tier == "archive"):  # fmt: skip
                reported += 1
                continue
            assert snap.start_time is not None
            made_for = snap.made_for_image
            origin = (
                f"made for {made_for} (no longer registered)" if made_for else "a volume backup"
            )
            self.add(
                Action(  # (by position, as image_action)
                    self.next_id(),  # id
                    type_,
                    snap.account,
                    snap.region,
                    "snapshots.orphaned",  # rule
                    (
                        f"orphaned: no registered image uses it; {origin}; "
                        f"{(now - snap.start_time).days} days old",
                    ),
                    None,  # image_id
                    snap.snapshot_id,
                    (),  # after
                    snap.size_gib,
                )
            )
        return reported

    def summary(self, reported: int) -> dict[str, Any]:
        summary: dict[str, Any] = {t: 0 for t in ACTION_TYPES}
        for a in self.actions:
            summary[a.type] += 1
        summary["images_selected"] = len(self.decisions)
        summary["images_kept"] = sum(1 for d in self.decisions if d.verdict == "keep")
        summary["orphaned_snapshots_reported"] = reported
        summary["unsafe_actions"] = sum(1 for a in self.actions if a.unsafe)
        summary["monthly_savings_usd"] = round(self.savings, 2)
        sizes: dict[str, int] = {}
        for a in self.actions:
            if a.type == "deregister" and a.family:
                key = f"{a.account}/{a.region}/{a.family}"
                if key not in sizes:
                    sizes[key] = len(self.inv.families.get((a.account, a.region, a.family), []))
        summary["family_sizes"] = dict(sorted(sizes.items()))
        return summary


def _saving(
    a: Action, prices: dict[str, dict[str, float]] | None, cache: dict[tuple[str, str], float]
) -> float:
    """The monthly saving of an action: its size times :func:`_per_gib`."""
    return a.size_gib * _per_gib(a.type, a.region, prices, cache)


def _per_gib(
    type_: str,
    region: str,
    prices: dict[str, dict[str, float]] | None,
    cache: dict[tuple[str, str], float],
) -> float:
    """What an action of this type saves a month per GiB in ``region`` (only snapshot
    actions save: a deleted GiB its standard price, an archived one the difference)."""
    if type_ == "delete-snapshot":
        return _rate(region, "standard", prices, cache)
    if type_ == "archive-snapshot":
        return _rate(region, "standard", prices, cache) - _rate(region, "archive", prices, cache)
    return 0.0


def _rate(
    region: str,
    tier: str,
    prices: dict[str, dict[str, float]] | None,
    cache: dict[tuple[str, str], float],
) -> float:
    """The monthly price of one GiB in ``region`` and ``tier``, looked up once per plan."""
    key = (region, tier)
    if key not in cache:
        cache[key] = monthly_cost(1, region, tier, prices)
    return cache[key]
