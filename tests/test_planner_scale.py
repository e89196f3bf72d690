"""Issue 30.3: the planner's shortcuts at 100,000 images change no plan. The orphan scan
skips untagged snapshots a registered image uses without building their keep reasons
(``keep.orphan_candidates``); with the shortcut patched out the plan, its warnings and its
checksum are the same, and without the reasons' own check ("used by registered image")
the shortcut is what keeps those snapshots (the twin). Likewise the assessment's hold and
lock shortcuts (``keep.decide._Facts``): off, the plan is the same; wrong, held images
retire (the twin)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amictl.keep import decide as keep_decide
from amictl.keep import managed
from amictl.keep import snapshots as keep_snapshots
from amictl.model import Image, made_for_image
from amictl.policy import parse_policy_text, plan
from amictl.policy import planner as planner_mod
from amictl.policy.model import Rule, Select
from amictl.tagnames import BY_TAG, MARK_TAG

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _case(from_images: bool = True) -> tuple[Any, Any, dt.datetime]:
    sys.path.insert(0, str(BENCH))
    try:
        import plan as bench
    finally:
        sys.path.remove(str(BENCH))
    inv = bench.build(400, 700, 60, seed=4)
    for n, img in enumerate(inv.images):  # few families: many retire, many snapshots go
        img.tags["family"] = f"ci-{n % 7}" if n % 2 else f"app-{n % 7}"
    # tagged snapshots: held, held by a date that is not one (a warning), merely tagged;
    # some belong to registered images, some are orphans
    for k, snap in enumerate(inv.snapshots[::37]):
        snap.tags = [{"legal-hold": "true"}, {"retain-until": "soon"}, {"team": "x"}][k % 3]
    text = bench.POLICY
    if not from_images:  # then "used by registered image(s)" is the only reason left
        text = text.replace("only_from_images: true", "only_from_images: false")
    return inv, parse_policy_text(text, "p.yaml"), bench.NOW


def _plan_with(monkeypatch: pytest.MonkeyPatch, shortcut: Any, from_images: bool = True) -> Any:
    inv, policy, now = _case(from_images)
    monkeypatch.setattr(planner_mod, "orphan_candidates", shortcut)
    return plan(inv, policy, now)


@pytest.mark.parametrize("from_images", [True, False])
def test_orphan_shortcut_changes_no_plan(
    monkeypatch: pytest.MonkeyPatch, from_images: bool
) -> None:
    fast = _plan_with(monkeypatch, keep_snapshots.orphan_candidates, from_images)
    slow = _plan_with(monkeypatch, lambda view, snaps: list(snaps), from_images)
    assert fast.summary["delete-snapshot"] > 0 and fast.warnings
    assert fast.to_dict() == slow.to_dict() and fast.checksum == slow.checksum


def test_twin_without_the_reason_the_shortcut_alone_keeps_used_snapshots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Drop the "used by registered image(s)" reason: with the shortcut the plan deletes no
    snapshot a registered image uses (it never asks); without it, it does."""
    real = keep_snapshots.snapshot_keep_reasons

    def no_users(*a: Any, **kw: Any) -> list[str]:
        return [r for r in real(*a, **kw) if not r.startswith("used by registered")]

    monkeypatch.setattr(planner_mod, "snapshot_keep_reasons", no_users)
    inv, policy, now = _case(from_images=False)
    used = set(inv.images_by_snapshot)
    fast = plan(inv, policy, now)
    gone = {a.snapshot_id for a in fast.actions if a.snapshot_id and a.rule == "snapshots.orphaned"}
    assert not gone & {s.snapshot_id for s in inv.snapshots if not s.tags} & used
    slow = _plan_with(monkeypatch, lambda view, snaps: list(snaps), from_images=False)
    gone = {a.snapshot_id for a in slow.actions if a.snapshot_id and a.rule == "snapshots.orphaned"}
    assert gone & used  # the guard removed: snapshots in use would be deleted


class _AnyTag(frozenset[str]):
    """A hold-tag set that every image's tags meet: hold_reasons is asked for each."""

    def isdisjoint(self, other: Any) -> bool:
        return False


def _held_case() -> tuple[Any, Any, dt.datetime]:
    """Holds on images (tags, a date that is not one, protection) and on their snapshots,
    locked snapshots: what the assessment's shortcuts skip looking at for other images."""
    inv, policy, now = _case(from_images=False)
    for n, img in enumerate(inv.images[::9]):
        kind = n % 4
        if kind == 0:
            img.tags["legal-hold"] = "yes"
        elif kind == 1:
            img.tags["retain-until"] = "later"
        elif kind == 2:
            img.deregistration_protection = "enabled"
        else:
            img.tags["legal-hold"] = "false"
    for k, snap in enumerate(inv.snapshots[::23]):
        snap.lock_state, snap.lock_until = "governance", ("2099-01-01T00:00:00Z", None)[k % 2]
    return inv, policy, now


def _plan_facts(monkeypatch: pytest.MonkeyPatch, shortcut: str) -> Any:
    real = keep_decide._Facts.__post_init__

    def post_init(self: Any) -> None:
        real(self)
        if shortcut == "off":  # every image's holds asked, every snapshot looked up
            self.hold_tags, self.protection_holds = _AnyTag(), True
            self.tagged = self.locked = dict(self.inv.snapshot_by_id)
        elif shortcut == "broken":  # the shortcuts wrongly say nothing is held or locked
            self.hold_tags, self.protection_holds, self.tagged, self.locked = (
                frozenset(), False, {}, {}
            )  # fmt: skip

    monkeypatch.setattr(keep_decide._Facts, "__post_init__", post_init)
    inv, policy, now = _held_case()
    return plan(inv, policy, now)


def test_hold_and_lock_shortcuts_change_no_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The assessment asks hold_reasons only for an image with a tag a hold reads (or
    protection), and looks up only tagged / locked snapshots: the plan is the same as when
    every image and snapshot is asked."""
    fast = _plan_facts(monkeypatch, "on")
    slow = _plan_facts(monkeypatch, "off")
    held = [d for d in fast.decisions if any(r.startswith(("held:", "its snapshot")) for r in d.reasons)]  # fmt: skip
    assert len(held) > 10 and any("on its snapshot" in r for d in held for r in d.reasons)
    assert fast.to_dict() == slow.to_dict() and fast.checksum == slow.checksum


def test_twin_shortcuts_that_miss_holds_retire_held_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = _plan_facts(monkeypatch, "on")
    broken = _plan_facts(monkeypatch, "broken")
    kept = {d.image_id for d in fast.decisions if d.verdict == "keep"}
    retired = {d.image_id for d in broken.decisions if d.verdict != "keep"}
    assert kept & retired  # held or locked images the broken shortcut would retire


@pytest.mark.parametrize(
    ("description", "want"),
    [
        ("Created by CreateImage(i-0abc) for ami-0123abcd from vol-1", "ami-0123abcd"),
        ("Created by CreateImage() for ami-1f", "ami-1f"),
        ("Copied for DestinationAmi ami-00ff from SourceAmi ami-1", "ami-00ff"),
        ("Created by CreateImage(i-0abc) for snap-1", None),
        (" Copied for DestinationAmi ami-00ff", None),  # AWS writes it from the start
        ("Created by CreateImage(i-(x)) for ami-1", None),
        ("", None),
        (None, None),
    ],
)
def test_made_for_image_one_match_for_both_descriptions(
    description: str | None, want: str | None
) -> None:
    """The orphan scan reads every candidate's description with one regular expression,
    which gives what CreateImage's and CopyImage's descriptions each said."""
    assert made_for_image(description) == want


TAG_KEYS = ["family", "version", "Ec2ImageBuilderArn", "CreatedBy", "aws:dlm:lifecycle-policy-id",
            "aws:dlm:lifecycle-schedule-name", "aws:backup:source-resource", "aws:backup:x", "team"]  # fmt: skip
TAG_VALUES = ["", "x", "EC2 Image Builder", "arn:aws:imagebuilder:1"]
IMAGE_TAGS = st.lists(
    st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=4),
    min_size=1,
    max_size=12,
)
DESCRIPTIONS = st.sampled_from(
    ["", "x", managed.BACKUP_DESCRIPTION, managed.BACKUP_DESCRIPTION + "!"]
)


@settings(max_examples=60, deadline=None)
@given(IMAGE_TAGS, st.lists(DESCRIPTIONS, min_size=12, max_size=12))
def test_managed_by_with_inert_keys_is_managed_by(
    tags: list[dict[str, str]], descs: list[str]
) -> None:
    """The assessment asks managed_by with the tag keys met so far that say nothing of a
    managing service: for a run of images, the same owners as asking each afresh."""
    inert: set[str] = set()
    for t, d in zip(tags, descs, strict=False):
        assert managed.managed_by(t, d, inert) == managed.managed_by(t, d)
    assert not inert & managed.MARKER_KEYS and not any(k.startswith("aws:backup:") for k in inert)


def test_twin_inert_keys_that_hold_a_marker_miss_a_managed_image() -> None:
    tags = {"family": "web", "aws:dlm:lifecycle-policy-id": "policy-1"}
    assert managed.managed_by(tags, "", set()) is not None
    assert managed.managed_by(tags, "", {"family", "aws:dlm:lifecycle-policy-id"}) is None


AGES = st.one_of(
    st.none(), st.integers(0, 40).map(lambda h: NOW_S - dt.timedelta(hours=h))
)  # fmt: skip
NOW_S = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)


@settings(max_examples=80, deadline=None)
@given(AGES, st.sampled_from([None, 0, 1, 24, 25, 10**9]))
def test_selector_age_limit_is_the_rules(created: dt.datetime | None, hours: int | None) -> None:
    """Selector compares the creation time with now - older_than once computed (or, when
    that is before year 1, as the rule says it): the same verdict as now - created >=
    older_than, at the limit too."""
    older = None if hours is None else dt.timedelta(hours=hours)
    rule = Rule("r", select=Select(families=("*",), older_than=older))
    img = Image("ami-1", "1", "r", owner_id="1", created_at=created, family="web")
    want = older is None or (created is not None and NOW_S - created >= older)
    assert keep_decide.Selector(rule, NOW_S)(img) is want
    assert keep_decide.selects(rule, img, NOW_S) is want


def _marked_case() -> tuple[Any, Any, dt.datetime]:
    """Marks of this policy (kept again: restored; retiring: advanced), of another policy
    and without a policy, on kept and retiring images."""
    inv, policy, now = _held_case()
    since = "2026-10-01T00:00:00Z"
    marks = [
        {MARK_TAG: since},
        {MARK_TAG: since, BY_TAG: "other"},
        {MARK_TAG: since, BY_TAG: policy.name},
        {MARK_TAG: "not a time"},
    ]
    for n, img in enumerate(inv.images[::5]):
        img.tags.update(marks[n % 4])
    return inv, policy, now


def test_plainly_kept_shortcut_changes_no_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner takes a kept image with no mark (keep.plainly_kept) without asking
    image_decision: off, every image asked, the plan is the same."""
    inv, policy, now = _marked_case()
    assert MARK_TAG in inv.images[0].tags
    fast = plan(inv, policy, now)
    monkeypatch.setattr(planner_mod, "plainly_kept", lambda ev: False)
    slow = plan(*_marked_case())
    assert fast.summary["unmark"] > 0 and fast.summary["mark"] > 0
    assert fast.to_dict() == slow.to_dict() and fast.checksum == slow.checksum


def test_twin_plainly_kept_that_ignores_marks_restores_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shortcut that took every kept image (marks not looked at) would leave this
    policy's marks on images kept again: no unmark, undeprecate or enable."""
    fast = plan(*_marked_case())
    monkeypatch.setattr(planner_mod, "plainly_kept", lambda ev: ev.kept)
    broken = plan(*_marked_case())
    assert fast.summary["unmark"] > 0 and broken.summary["unmark"] == 0


def _ranks_by_hand(inv: Any) -> dict[str, tuple[int, int]]:
    """usable_ranks as it reads (policy.md): no shortcut."""
    from amictl.tagnames import bake_unusable

    out: dict[str, tuple[int, int]] = {}
    for imgs in inv.families.values():
        ranked = [i for i in imgs if not bake_unusable(i.tags)]
        size = len([i for i in ranked if i.state == "available"])
        newer = 0
        for img in ranked:
            newer += img.state == "available"
            out[img.image_id] = (newer if img.state == "available" else newer + 1, size)
    return out


STATES = st.sampled_from(["available", "available", "pending", "disabled", "failed"])
BAKES = st.sampled_from([None, None, "building", "failed", "abandoned", "passed"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 9), STATES, BAKES), max_size=25))
def test_usable_ranks_shortcut_is_the_rule(rows: list[tuple[int, int, str, str | None]]) -> None:
    """Families with only available images and no bake status are ranked in one step
    (#n of their size): the same ranks as counting each image, in every family."""
    from amictl.model import Inventory

    images = []
    for n, (fam, ver, state, bake) in enumerate(rows):
        tags = {"family": f"f{fam}", "version": str(ver)}
        if bake:
            tags["amictl:bake-status"] = bake
        images.append(Image(f"ami-{n}", "1", "r", owner_id="1", state=state, tags=tags,
                            family=f"f{fam}", version=str(ver)))  # fmt: skip
    inv = Inventory(images=images)
    assert keep_decide.usable_ranks(inv) == _ranks_by_hand(inv)


def test_twin_usable_ranks_shortcut_blind_to_bakes_counts_a_failed_bake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the shortcut did not see bake statuses, a failed bake would count among the
    newest and push a usable version out of them."""
    from amictl.model import Inventory

    def inv() -> Inventory:
        return Inventory(images=[
            Image("ami-2", "1", "r", owner_id="1", tags={"amictl:bake-status": "failed"},
                  family="f", version="2"),
            Image("ami-1", "1", "r", owner_id="1", family="f", version="1"),
        ])  # fmt: skip

    assert keep_decide.usable_ranks(inv())["ami-1"] == (1, 1)
    monkeypatch.setattr(keep_decide, "BAKE_STATUS_TAG", "no-such-tag")
    assert keep_decide.usable_ranks(inv())["ami-1"] == (2, 2)


def _history_case() -> tuple[Any, Any, dt.datetime, str]:
    """A retiring image that only a channel's history keeps (a rollback target)."""
    from amictl.model import Reference

    inv, policy, now = _case()
    first = plan(inv, policy, now)
    gone = next(d for d in first.decisions if d.verdict != "keep")
    img = next(i for i in inv.images if i.image_id == gone.image_id)
    inv, policy, now = _case()  # (a fresh inventory: its indexes not built yet)
    ref = Reference("channel-history", "/ch/web#1", "channel web, 1 step back", img.image_id,
                    img.account, img.region)  # fmt: skip
    inv.references.append(ref)
    return inv, policy, now, img.image_id


def test_channel_shortcut_keeps_a_rollback_target_and_its_twin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The assessment filters an image's references for channels only when the inventory
    has a channel's reference: here it has one, and it keeps the image; a shortcut that
    wrongly said there is none would retire it."""
    inv, policy, now, image_id = _history_case()
    kept = {d.image_id: d for d in plan(inv, policy, now).decisions}[image_id]
    assert kept.verdict == "keep" and any("channel history" in r for r in kept.reasons)
    real = keep_decide._Facts.__post_init__

    def blind(self: Any) -> None:
        real(self)
        self.channel_refs = False

    monkeypatch.setattr(keep_decide._Facts, "__post_init__", blind)
    inv, policy, now, image_id = _history_case()
    assert {d.image_id: d for d in plan(inv, policy, now).decisions}[image_id].verdict != "keep"
