"""The one decision: which rule governs an image, every reason to keep it, and which
retirement stages are due. A pure function of (policy, a view of the account, now).

The view is an :class:`~amictl.model.Inventory`: the scanned one when planning, a live
one (read just before the action, scoped to its account and region) when applying.

Reasons to keep an image (policy.md): holds (the policy's and the built-in ones, on
the image or any of its snapshots, deregistration protection); keep-latest-N over the
family (SemVer precedence, failed or unfinished bakes never counted); newer-than;
every reference kind that can launch it (instances, any launch-template version,
launch configurations, ASGs, SSM parameters, channels); the previous values of its
channels' history (rollback targets, ``keep.channel_history``); shared or public;
launched within; keep tags; still pending; ancestor of a kept image or copy; an
incomplete inventory of its account/region; a mark made by another policy; managed by
another service (Image Builder, DLM, AWS Backup) that the rule does not adopt
(``keep.managed``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter

from ..durations import human_duration
from ..model import IN_USE, Image, Inventory, Reference, Snapshot, iso, parse_time
from ..policy.model import Hold, Policy, Retain, Rule
from ..tagnames import BAKE_STATUS_TAG, BY_TAG, MARK_TAG, bake_status, bake_unusable
from .holds import hold_reasons
from .managed import managed_by, managed_reason
from .retention import image_retention_reasons, notice_wait, retain_reasons

STAGES = ("deprecate", "disable", "deregister")
DEPRECATION_SLACK = dt.timedelta(minutes=10)
# Always enforced, whatever holds a policy (or an edited plan) carries.
DEFAULT_HOLDS = (
    Hold(tag="legal-hold"),
    Hold(tag="retain-until", until_value=True),
    Hold(deregistration_protection=True),
)
CHANNEL_HISTORY_KIND = "channel-history"
_image_id = attrgetter("image_id")


def effective_holds(holds: tuple[Hold, ...]) -> tuple[Hold, ...]:
    """The built-in holds, then the policy's own (duplicates dropped)."""
    out = list(DEFAULT_HOLDS)
    for h in holds:
        if not any(
            h.tag == d.tag
            and h.deregistration_protection == d.deregistration_protection
            and h.until_value == d.until_value
            for d in out
        ):
            out.append(h)
    return tuple(out)


def released_holds(before: dict[str, str], changes: dict[str, str], now: dt.datetime) -> list[str]:
    """The built-in holds that tagging an image with ``changes`` would release
    (``legal-hold=false``, a ``retain-until`` in the past or not a date any more...):
    the holds of ``before`` that the tags after the change no longer give."""
    out = []
    for h in DEFAULT_HOLDS:
        if h.tag is None:
            continue
        held = hold_reasons(before, False, "disabled", (h,), now)
        if held and not hold_reasons({**before, **changes}, False, "disabled", (h,), now):
            out.extend(held)
    return out


def history_depth(ref_id: str) -> int:
    """A channel-history reference's id is ``<parameter>#<steps back>``."""
    _, _, depth = ref_id.rpartition("#")
    return int(depth) if depth.isdigit() else 1


@dataclass(slots=True)
class Eval:
    image: Image
    rule: Rule | None
    held: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    in_use: bool = False  # something can still launch it (whether or not the rule keeps it)
    notes: list[str] = field(default_factory=list)  # said with a retirement (who owns it)

    @property
    def kept(self) -> bool:
        return self.rule is None or bool(self.held) or bool(self.keep) or bool(self.blocked)

    @property
    def reasons(self) -> list[str]:
        return self.held + self.keep + self.blocked


@dataclass
class Assessment:
    """Every owned image of the view, evaluated."""

    evals: dict[str, Eval]
    doubted: dict[str, list[str]]  # parent -> children whose sharing was not read
    warnings: list[str]
    holds: tuple[Hold, ...]


@dataclass(slots=True)
class ImageDecision:
    """What the policy wants for one image now.

    ``chain``: the retirement actions still to do, in order (``mark`` first when the
    image is not marked yet); ``due``: every stage due now, also those already in effect
    (apply's executors are idempotent); ``restore``: the actions that undo this policy's
    marks on a kept image.
    """

    verdict: str  # keep | mark | deprecate | disable | deregister
    reasons: list[str]
    chain: list[tuple[str, list[str]]] = field(default_factory=list)
    due: set[str] = field(default_factory=set)
    restore: list[tuple[str, list[str]]] = field(default_factory=list)
    marked_by_policy: bool = False
    blind: bool = False  # a stage was due but launch permissions were not read
    foreign: str | None = None  # the other policy that marked it


@functools.lru_cache(maxsize=256)
def days(td: dt.timedelta) -> str:
    return (
        f"{td.days}d"
        if td.days or not td.total_seconds()
        else f"{int(td.total_seconds() // 3600)}h"
    )


@functools.lru_cache(maxsize=1024)
def _glob_re(globs: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


class Selector:
    """A rule's ``select``, matched against many images at one ``now`` (an assessment):
    each family's verdict is made once, the age limit computed once."""

    __slots__ = ("rule", "select", "now", "verdicts", "cutoff")

    def __init__(self, rule: Rule, now: dt.datetime) -> None:
        s = self.select = rule.select
        self.rule, self.now = rule, now
        # family -> verdict, as met; an image without a family only with select.unfamilied
        self.verdicts: dict[str | None, bool] = {None: s.unfamilied}
        # created at or before it: old enough (None: no older_than, or a limit before year 1)
        self.cutoff: dt.datetime | None = None
        if s.older_than is not None:
            try:  # in UTC: elapsed time, not a zone's clock across a DST change
                self.cutoff = (now.astimezone(dt.UTC) if now.tzinfo else now) - s.older_than
            except OverflowError:
                self.cutoff = None

    def __call__(self, img: Image) -> bool:
        """The rule selects the image."""
        s = self.select
        if s.images is not None:
            if img.image_id not in s.images:
                return False
        else:
            family = img.family
            hit = self.verdicts.get(family)
            if hit is None:
                assert family is not None
                hit = s.families is None or _glob_re(s.families).match(family) is not None
                self.verdicts[family] = hit
            if not hit:
                return False
        if s.name is not None and not _glob_re((s.name,)).match(img.name or ""):
            return False
        if s.tags and any(img.tags.get(k) != v for k, v in s.tags):
            return False
        if s.regions is not None and not _glob_re(s.regions).match(img.region):
            return False
        if s.older_than is None:
            return True
        created = img.created_at
        if created is None:
            return False
        if self.cutoff is not None:
            return created <= self.cutoff  # now - created >= older_than, without a timedelta
        return not self.now - created < s.older_than


def selects(rule: Rule, img: Image, now: dt.datetime) -> bool:
    """The rule selects the image (:class:`Selector`, for one image)."""
    return Selector(rule, now)(img)


class RuleTexts:
    """What :func:`evaluate` says of the images a rule keeps, the parts that are the same for
    every image: made once per rule and assessment, not once per image."""

    __slots__ = (
        "latest", "latest_keep", "newer", "newer_keep", "launched", "launched_keep", "tags",
    )  # fmt: skip

    def __init__(self, rule: Rule) -> None:
        k = rule.keep
        self.latest = f"latest {k.latest}"
        self.latest_keep = f"among the {k.latest} newest of its family: "
        newer = days(k.newer_than) if k.newer_than is not None else ""
        self.newer, self.newer_keep = f"newer_than {newer}", f"newer than {newer}: "
        within = days(k.launched_within) if k.launched_within is not None else ""
        self.launched, self.launched_keep = f"launched_within {within}", f" (within {within})"
        self.tags = ", ".join(f"{t}={v}" for t, v in k.tags)


def snapshot_holds(
    holds: tuple[Hold, ...], snap: Snapshot, now: dt.datetime, warnings: list[str] | None = None
) -> list[str]:
    return hold_reasons(snap.tags, False, "disabled", holds, now, warnings, snap.snapshot_id)


@dataclass(slots=True)
class _Facts:
    """What :func:`evaluate` reads for every image, looked up once per assessment."""

    inv: Inventory
    now: dt.datetime
    holds: tuple[Hold, ...]
    ranks: dict[str, tuple[int, int]]
    warnings: list[str]
    explain: bool
    retain: tuple[Retain, ...]
    # the tags a hold reads, and whether a hold reads deregistration protection: an image
    # with none of those tags and no protection has no hold (hold_reasons is not asked)
    hold_tags: frozenset[str] = frozenset()
    protection_holds: bool = False
    # the snapshots with tags (only those can hold an image) and with a lock state (only
    # those can keep it by their lock): usually few of an account's, so most images'
    # block devices are not looked up at all
    tagged: dict[str, Snapshot] = field(default_factory=dict)
    locked: dict[str, Snapshot] = field(default_factory=dict)
    refs: dict[str, list[Reference]] = field(default_factory=dict)  # inv.refs_by_image
    # whether any reference is a channel's (or its history's): without one, the channels
    # keep nothing and, unless explained, say nothing (their references are not filtered)
    channel_refs: bool = False
    # tag keys met so far that say nothing of another service managing an image
    # (keep.managed.managed_by): an image with only such keys is asked no more
    inert_keys: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.refs = self.inv.refs_by_image
        self.hold_tags = frozenset(
            h.tag for h in self.holds if h.tag is not None and not h.deregistration_protection
        )
        self.protection_holds = any(h.deregistration_protection for h in self.holds)
        snaps = self.inv.snapshot_by_id
        self.tagged = {sid: s for sid, s in snaps.items() if s.tags}
        self.locked = {sid: s for sid, s in snaps.items() if s.lock_state}
        self.channel_refs = any(
            r.kind == "channel" or r.kind == CHANNEL_HISTORY_KIND
            for refs in self.refs.values()
            for r in refs
        )


def _image_holds(f: _Facts, img: Image) -> list[str]:
    """Holds on the image, and on each of its snapshots (a held snapshot holds its image)."""
    if not f.hold_tags.isdisjoint(img.tags) or (
        # (Image.protected, asked only where it can be true: not of the usual "disabled")
        f.protection_holds and img.deregistration_protection != "disabled" and img.protected
    ):
        out = hold_reasons(
            img.tags,
            img.protected,
            img.deregistration_protection,
            f.holds,
            f.now,
            f.warnings,
            img.image_id,
        )
    else:
        out = []  # what hold_reasons says of it, without asking each hold
    if not f.tagged:
        return out
    holds, now, warnings = f.holds, f.now, f.warnings
    by_id = f.tagged  # an untagged snapshot has no hold
    for b in img.block_devices:
        sid = b.get("snapshot_id")
        snap = by_id.get(sid) if sid else None
        if snap is not None and snap.tags:
            out.extend(
                f"{r} (on its snapshot {sid})" for r in snapshot_holds(holds, snap, now, warnings)
            )
    return out


def usable_ranks(inv: Inventory) -> dict[str, tuple[int, int]]:
    """image id -> (rank, newest = 1; the count of usable versions). Only images that can
    launch count: one still building, failed or abandoned by bake, or whose AWS state is not
    ``available`` (pending, failed, disabled) never pushes another out of the newest N.

    Such an image is ranked itself by the usable versions newer than it (a disabled newest
    is #1 and stays, and the version before it is #1 too), except a failed, abandoned or
    unfinished bake, which is not ranked at all: it never counts among the newest."""
    out: dict[str, tuple[int, int]] = {}
    # the families where an image may not count (not available, or a bake status that
    # bake_unusable may refuse); in every other family each version is #n of len(family)
    odd = {
        (i.account, i.region, i.family)
        for i in inv.images
        if i.state != "available" or BAKE_STATUS_TAG in i.tags
    }
    for key, imgs in inv.families.items():
        if key not in odd:
            size = len(imgs)
            ranks = zip(range(1, size + 1), repeat(size, size), strict=True)
            out.update(zip(map(_image_id, imgs), ranks, strict=True))
            continue
        ranked = [i for i in imgs if not bake_unusable(i.tags)]  # newest first
        size = len([i for i in ranked if i.state == "available"])
        newer = 0
        for img in ranked:
            if img.state == "available":
                newer += 1
                out[img.image_id] = (newer, size)
            else:
                out[img.image_id] = (newer + 1, size)
    return out


def evaluate(f: _Facts, img: Image, rule: Rule, texts: RuleTexts | None = None) -> Eval:
    """Holds and keep conditions of one selected image. With ``f.explain``, every condition
    is also recorded as a check (held or not) with its detail; plans skip that work.
    ``texts``: the rule's :class:`RuleTexts` (made here when not given)."""
    inv, now, explain = f.inv, f.now, f.explain
    t = texts if texts is not None else RuleTexts(rule)
    # (_image_holds asked only where it can find one: see its first test)
    held = (
        _image_holds(f, img)
        if f.tagged
        or not f.hold_tags.isdisjoint(img.tags)
        or (f.protection_holds and img.deregistration_protection != "disabled")
        else []
    )
    keep: list[str] = []
    checks: list[tuple[str, bool, str]] = []
    unsafe: list[str] = []
    notes: list[str] = []
    owner = managed_by(img.tags, img.description, f.inert_keys)
    if owner is not None:
        reason = managed_reason(owner, rule.select.managed)
        if reason:
            keep.append(reason)
        else:
            notes.append(f"managed by {owner.label}, adopted by rule {rule.name}")
        if explain:
            checks.append(("managed", reason is not None, owner.label))
    # Only a locked snapshot or a store task keeps an image by retention AWS enforces (and
    # an unlocked snapshot keeps nothing: only the locked ones are looked at).
    if f.locked or img.store_task is not None:
        held.extend(image_retention_reasons(img, f.locked, now))
    if f.retain:
        held.extend(retain_reasons(f.retain, inv, img, now))
    k = rule.keep
    refs = f.refs.get(img.image_id)
    use: Sequence[Reference] = [r for r in refs if r.kind in IN_USE] if refs else ()
    if k.latest is not None and img.family:
        rank, size = f.ranks.get(img.image_id, (None, 0))
        hit = rank is not None and rank <= k.latest
        if hit or explain:
            if rank is None:
                why = (
                    f"bake status {bake_status(img.tags)}"
                    if bake_unusable(img.tags)
                    else f"state {img.state}"
                )
                detail = f"{why}: not counted among the newest of family {img.family}"
            else:
                detail = (
                    f"version {img.version} is #{rank} of {size} in family {img.family} "
                    f"({img.region})"
                )
            checks.append((t.latest, hit, detail))
            if hit:
                keep.append(t.latest_keep + detail)
    if k.newer_than is not None:
        age = now - img.created_at if img.created_at else dt.timedelta(0)
        hit = age < k.newer_than
        if explain:
            checks.append((t.newer, hit, f"{age.days} days old"))
        if hit:
            keep.append(f"{t.newer_keep}{age.days} days old")
    if use:
        checks.append(("in_use", True, "; ".join([r.detail for r in use])))
        if k.in_use:
            keep.extend([f"in use: {r.detail}" for r in use])
        else:
            unsafe.extend([f"in use ({r.detail}) but the rule says in_use: false" for r in use])
    elif explain:
        checks.append(
            (
                "in_use",
                False,
                "no instance, launch template version, launch configuration, "
                "ASG, SSM parameter, channel, Spot request, fleet, EMR cluster, Batch "
                "compute environment, CloudFormation stack, Beanstalk environment, "
                "Image Builder recipe/distribution or infrastructure code uses it",
            )
        )
    if k.launched_within is not None:
        last = img.last_launched_time
        hit = last is not None and now - last <= k.launched_within
        if explain:
            checks.append(
                (
                    t.launched,
                    hit,
                    f"last launched {iso(last)}" if last else "never launched (or not reported)",
                )
            )
        if hit and last is not None:
            keep.append(f"launched {(now - last).days} days ago{t.launched_keep}")
    if img.public or img.shared_with:
        targets = (["public"] if img.public else []) + img.shared_with
        checks.append(("shared", True, ", ".join(targets)))
        if k.shared:
            keep.append(f"shared: {', '.join(targets)}")
        else:
            # Another account can launch it: retiring it is as unsafe as retiring one in use.
            unsafe.append(f"shared ({', '.join(targets)}) but the rule says shared: false")
    elif explain:
        checks.append(("shared", False, "private"))
    if k.channels and (explain or (refs and f.channel_refs)):
        refs = refs or []
        if not (k.in_use and use):
            keep.extend([f"channel: {r.detail}" for r in refs if r.kind == "channel"])
        history = [
            r
            for r in refs
            if r.kind == CHANNEL_HISTORY_KIND and history_depth(r.id) <= k.channel_history
        ]
        if history or explain:
            checks.append(
                (
                    f"channel_history {k.channel_history}",
                    bool(history),
                    "; ".join(r.detail for r in history) or "no channel's recent history",
                )
            )
        if history:
            keep.extend([f"channel history: {r.detail}" for r in history])
    if k.tags:
        hit = all(img.tags.get(key) == v for key, v in k.tags)
        if explain:
            checks.append(("tags", hit, t.tags))
        if hit:
            keep.append("tags: " + t.tags)
    if img.state == "pending":
        keep.append("still pending")
    blocked = _blocked(inv, img, k.ancestors) if inv.incomplete_index else []
    return Eval(img, rule, held, keep, checks, unsafe, blocked, bool(use), notes)


def _blocked(inv: Inventory, img: Image, ancestors: bool) -> list[str]:
    """Why an incomplete inventory forbids retiring the image (its own account and region,
    or, when a kept image keeps its ancestors, a region whose images could not be read)."""
    out = []
    incomplete = inv.incomplete_index.get((img.account, img.region))
    if incomplete:
        out.append(
            "not retired: the inventory of {}/{} is incomplete ({}): no destructive action".format(
                img.account,
                img.region,
                ", ".join(f"{s.kind}: {s.error_code}" for s in incomplete),
            )
        )
    if ancestors:
        unread = [
            s
            for s in inv.incomplete_index.get((img.account, "*"), [])
            if s.kind == "images" and s.region != img.region
        ]
        if unread:
            out.append(
                "not retired: images built from it may exist in "
                + ", ".join(sorted({s.region for s in unread}))
                + " which could not be read"
            )
    return out


def assess(
    inv: Inventory,
    policy: Policy,
    now: dt.datetime,
    *,
    explain: bool = False,
    unread: str = "block",
) -> Assessment:
    """Evaluate every owned image of the view (to a fixed point over ancestry)."""
    now = now.astimezone(dt.UTC)
    warnings: list[str] = []
    holds = effective_holds(policy.holds)
    inv.resolve_families(policy.families)
    facts = _Facts(inv, now, holds, usable_ranks(inv), warnings, explain, policy.retain)
    evals: dict[str, Eval] = {}
    selectors = [(Selector(r, now), RuleTexts(r)) for r in policy.rules]
    for img in inv.images:
        if not img.owned:
            continue
        for select, texts in selectors:
            if select(img):
                evals[img.image_id] = evaluate(facts, img, select.rule, texts)
                break
        else:
            evals[img.image_id] = Eval(img, None)

    # keep.ancestors: an image a kept image (or copy) was built from stays (to a fixed point).
    children = inv.children
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
    return Assessment(evals, doubted, warnings, holds)


def plainly_kept(ev: Eval) -> bool:
    """:func:`image_decision` keeps the image with the evaluation's reasons and nothing more
    (no action, no restore, no warning): it is kept, and carries no mark of any policy.
    Most images of a plan are: the planner asks this first and, when it holds, takes
    ``ev.reasons`` without building the decision."""
    return ev.kept and MARK_TAG not in ev.image.tags


def image_decision(
    ev: Eval,
    policy: Policy,
    now: dt.datetime,
    doubted: dict[str, list[str]],
    *,
    unread: str = "block",
    warnings: list[str] | None = None,
    live: bool = False,
) -> ImageDecision:
    """The stages the policy wants for one image. ``live``: the marks are those read from
    the account just now (apply): a destructive stage is due only for an image marked by
    THIS policy, counted from its live mark time and the real clock."""
    warnings = warnings if warnings is not None else []
    img = ev.image
    if plainly_kept(ev):  # most images: kept, and no mark of any policy to undo
        reasons = ev.reasons if ev.rule is not None else ["no rule selects it any more"]
        return ImageDecision("keep", reasons, [], set(), [], False)
    marked = MARK_TAG in img.tags
    owner = img.tags.get(BY_TAG)
    # A mark belongs to the policy named in amictl:retired-by. A mark without it (made
    # before marks recorded their policy) is adopted by a policy that selects the image.
    ours = marked and (owner == policy.name if owner else ev.rule is not None)
    if marked and not ours and ev.rule is not None:
        left = (
            f"in retirement by policy {owner!r} (amictl:retired-by): "
            "left to it; this policy neither advances nor restores it"
        )
        return ImageDecision("keep", [left, *ev.reasons], foreign=owner)
    if ev.kept:
        reasons = ev.reasons if ev.rule is not None else ["no rule selects it any more"]
        out = ImageDecision("keep", reasons, marked_by_policy=ours)
        if ours:
            # undeprecate / enable first: they check the mark is this policy's, which
            # unmark removes
            restore = ["kept again: " + (reasons[0] if reasons else "")]
            if img.deprecation_time is not None:
                out.restore.append(("undeprecate", restore))
            if img.state == "disabled":
                out.restore.append(("enable", restore))
            out.restore.append(("unmark", restore))
        return out

    assert ev.rule is not None
    rule = ev.rule
    why = [f"rule {rule.name}: nothing keeps it", *ev.unsafe, *ev.notes]
    out = ImageDecision("mark", why, marked_by_policy=ours)
    since: dt.datetime | None = None
    if marked:
        try:
            since = parse_time(img.tags[MARK_TAG])
        except ValueError:
            since = None
        if since is None:
            warnings.append(
                f"{img.image_id}: bad {MARK_TAG} tag {img.tags[MARK_TAG]!r}: not advanced"
            )
            why.append(f"its {MARK_TAG} tag is not a time: no stage is due")
    if not marked:
        if live:
            out.reasons = [*why, f"not marked for retirement by policy {policy.name!r}"]
            out.chain.append(("mark", list(why)))
            return out
        out.chain.append(("mark", list(why)))
        since = now
    elif owner is None:
        # adopt a mark made before marks recorded their policy
        out.chain.append(("mark", [*why, f"records {BY_TAG}={policy.name}"]))
        if live:
            out.reasons = [*why, f"its mark does not name policy {policy.name!r} yet"]
            return out
    if since is not None and marked:
        why.append(f"marked for retirement since {iso(since)}")
    if img.lp == "cached" and img.lp_read_at is not None:
        why.append(
            "launch permissions cached: read "
            f"{human_duration(max(now - img.lp_read_at, dt.timedelta(0)))} ago "
            "(apply re-reads them live)"
        )
    blind = (img.lp == "unread" or img.image_id in doubted) and unread == "block"
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
            out.blind = True
            break
        if stage == "deregister" and policy.notify_before is not None:
            wait = notice_wait(img, policy.notify_before, now)
            if wait:
                why.append(wait)
                continue
        if stage == "deregister" and img.protected:
            why.append(
                f"deregister stage due but deregistration protection is "
                f"{img.deregistration_protection}: not deregistered"
            )
            continue
        out.verdict = stage
        out.due.add(stage)
        reason = f"{stage} stage due ({days(delay)} after mark)"
        if stage == "deprecate":
            # apply deprecates "at the next whole minute" (AWS refuses past times): a
            # deprecation that close counts as done, a far-future one is brought forward.
            if not img.deprecated_at(now + DEPRECATION_SLACK):
                out.chain.append(("deprecate", [*why, reason]))
        elif stage == "disable":
            if img.state != "disabled":
                out.chain.append(("disable", [*why, reason]))
        else:
            out.chain.append(("deregister", [*why, reason]))
    if blind and not out.blind and img.lp == "unread":
        why.append("launch permissions not read: marking does not need them")
    out.reasons = why
    return out
