"""Issue 30.3: the planner's shortcuts at 100,000 images change no plan. The orphan scan
skips untagged snapshots a registered image uses without building their keep reasons
(``keep.may_be_orphan``); with the shortcut patched out the plan, its warnings and its
checksum are the same, and without the reasons' own check ("used by registered image")
the shortcut is what keeps those snapshots (the twin)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

from amictl.keep import snapshots as keep_snapshots
from amictl.policy import parse_policy_text, plan
from amictl.policy import planner as planner_mod

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
    monkeypatch.setattr(planner_mod, "may_be_orphan", shortcut)
    return plan(inv, policy, now)


@pytest.mark.parametrize("from_images", [True, False])
def test_orphan_shortcut_changes_no_plan(
    monkeypatch: pytest.MonkeyPatch, from_images: bool
) -> None:
    fast = _plan_with(monkeypatch, keep_snapshots.may_be_orphan, from_images)
    slow = _plan_with(monkeypatch, lambda view, snap: True, from_images)
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
    slow = _plan_with(monkeypatch, lambda view, snap: True, from_images=False)
    gone = {a.snapshot_id for a in slow.actions if a.snapshot_id and a.rule == "snapshots.orphaned"}
    assert gone & used  # the guard removed: snapshots in use would be deleted
