"""Apply's verdict on each action: the planner's own decision, on a live view.

Nothing the plan file says can make apply less careful (policy.md, safety rule 7). The
plan contributes only what it asks for (the action, its rule, the policy's holds and
options); whether it may happen is decided by ``amictl.keep`` — the very function
``plan`` calls — on a view of the account/region read just before the action
(``apply.live``). There is no second list of checks here, only the mapping from that
decision to go / skip / gone, and refusals that can only add care:

- an image action goes only when the live decision, for the plan's rule, has this stage
  due now (holds, every reference kind, channels and their history, keep-latest-N,
  newer-than, launched-within, sharing, ancestry of kept images and copies, failed
  bakes, the mark by THIS policy and its live time); an image in use or shared goes only
  when the planner flagged the action ``unsafe``, its rule says ``in_use: false`` (or
  ``shared: false``) and apply was given ``--force-unsafe``; ``expect`` (what the planner
  saw) only adds refusals;
- a snapshot action goes only when nothing keeps the snapshot (``keep.snapshots``): not
  held, not used by a registered image, not shared, and it belongs to the image it is
  retired with by AWS's own evidence (block device mappings recorded at deregister, or
  the CreateImage/CopyImage description), or is still an orphan by the policy.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..inventory.instance_store import describe_bundle
from ..inventory.lookup import describe_image
from ..keep import Assessment, image_decision, snapshot_keep_reasons
from ..model import IN_USE_KINDS, Snapshot
from ..policy.model import Hold, Policy, Rule
from ..policy.plan_model import Action
from .live import GONE_SNAPSHOT, VIEW_PERMISSIONS, View

# What the live view and the refusals read (registered for `amictl iam-policy apply`).
RECHECK_PERMISSIONS = (*VIEW_PERMISSIONS, "rbin:ListRules", "rbin:GetRule")


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Verdict:
    kind: str  # go | skip | gone
    reason: str = ""
    snapshots: tuple[str, ...] = ()  # an image's live snapshot ids (recorded as their origin)
    # kept by this policy now: the marks it made are removed (undeprecate/enable/unmark)
    restore: tuple[str, ...] = ()
    note: str = ""  # said with the outcome (the S3 bundle an instance-store image leaves)
    # a deregister whose every snapshot the same live decision lets go: the plan's
    # delete-snapshot actions done by its DeleteAssociatedSnapshots (``apply.associated``)
    with_snapshots: tuple[str, ...] = ()
    # what the view said of those snapshots, (id, tags, shares), checked again just before
    # the call: any change and the image goes alone (``apply.pipeline.still_as_decided``)
    snapshot_facts: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = ()

    @property
    def go(self) -> bool:
        return self.kind == "go"


def _skip(reason: str, restore: tuple[str, ...] = ()) -> Verdict:
    return Verdict("skip", reason, restore=restore)


@dataclass
class Context:
    """What the verdicts know besides the live view: the plan's policy and the flags."""

    policy: Policy
    holds: tuple[Hold, ...]
    force_unsafe: bool = False
    # image id -> its snapshot ids as read live by this plan's deregister (or recorded)
    origins: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.policy.rules if r.name == name), None)

    def recorded(self) -> dict[str, str]:
        """snapshot id -> the image whose block device mappings held it."""
        with self.lock:
            return {sid: image for image, sids in self.origins.items() for sid in sids}


def describe_snapshot(ec2: Any, snapshot_id: str) -> dict[str, Any] | None:
    try:
        snaps = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as exc:
        if code_of(exc) in GONE_SNAPSHOT:
            return None
        raise
    return snaps[0] if snaps else None


def tags_of(d: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in d.get("Tags", []) or []}


def _may_override(action: Action, rule: Rule, ctx: Context) -> bool:
    """In use / shared images: only with unsafe + the rule's explicit false + --force-unsafe."""
    return (
        action.unsafe
        and ctx.force_unsafe
        and (rule.keep.in_use is False or rule.keep.shared is False)
    )


def _absent(ec2: Any, action: Action, what: str) -> Verdict:
    """Not in the owned listing: gone, or not this account's (an edited plan)."""
    if what == "image":
        raw = describe_image(ec2, action.image_id or "")
    else:
        raw = describe_snapshot(ec2, action.snapshot_id or "")
    if raw is None:
        return Verdict("gone", f"{what} not found")
    return _skip(f"not owned by {action.account} (owner {raw.get('OwnerId')})")


def decide_image(
    ec2: Any, action: Action, view: View, assessment: Assessment, ctx: Context, now: dt.datetime
) -> Verdict:
    """The verdict for a mark / deprecate / disable / deregister, from the live view."""
    ev = assessment.evals.get(action.image_id or "")
    if ev is None:
        return _absent(ec2, action, "image")
    img = ev.image
    if view.error:
        return _skip(
            f"could not re-read {action.account}/{action.region} ({view.error}): "
            "nothing is decided on what was not read"
        )
    rule = ctx.rule(action.rule)
    if rule is None:
        return _skip(f"the plan's policy has no rule {action.rule!r}")
    if ev.rule is not None and ev.rule.name != rule.name:
        return _skip(f"now governed by rule {ev.rule.name!r}, not {rule.name!r}")
    if img.state not in ("available", "disabled"):
        return _skip(f"image state is {img.state}")
    d = image_decision(ev, ctx.policy, now, assessment.doubted, live=True)
    if d.verdict == "keep":
        # Kept by this policy's own reasons (not an unreadable account): its marks go.
        restore = tuple(t for t, _ in d.restore) if (ev.held or ev.keep) else ()
        return _skip("kept: " + "; ".join(d.reasons[:3]), restore)
    if action.type == "mark":
        return Verdict("go")  # a tag: the destructive stages after it are decided again
    if ev.unsafe and not _may_override(action, rule, ctx):
        return _skip("; ".join(ev.unsafe[:3]) + " (needs --force-unsafe and an unsafe action)")
    if action.type not in d.due:
        return _skip(f"the {action.type} stage is not due: " + "; ".join(d.reasons[-2:]))
    expect = dict(action.expect)
    use = [r.detail for r in view.inventory.refs(img.image_id) if r.kind in IN_USE_KINDS]
    if "in_use" in expect and ev.in_use != expect["in_use"]:
        return _skip(
            f"changed since the plan: in use was {expect['in_use']}, now {ev.in_use}"
            + (f" ({'; '.join(use[:3])})" if use else "")
        )
    if "shared" in expect and img.shared != expect["shared"]:
        return _skip(f"changed since the plan: shared was {expect['shared']}, now {img.shared}")
    if "protected" in expect and img.protected != expect["protected"]:
        return _skip(f"changed since the plan: protection is now {img.deregistration_protection}")
    if action.type == "deregister" and img.deregistration_protection != "disabled":
        return _skip(f"deregistration protection is {img.deregistration_protection}")
    planned = expect.get("state")
    if (
        planned
        and img.state != planned
        and not (planned == "available" and img.state == "disabled")
    ):
        return _skip(f"image state changed since the plan: {planned} -> {img.state}")
    bundle = describe_bundle(img.image_id, img.root_device_type, img.image_location)
    note = bundle["message"] if bundle and action.type == "deregister" else ""
    return Verdict("go", snapshots=tuple(img.snapshot_ids), note=note)


def decide_snapshot(
    ec2: Any,
    action: Action,
    view: View,
    ctx: Context,
    now: dt.datetime,
    leaving: frozenset[str] = frozenset(),
    dereg: Action | None = None,
) -> Verdict:
    """The verdict for a delete-snapshot / archive-snapshot, from the live view.
    ``leaving``: the image deregistered in the same call (DeleteAssociatedSnapshots), still
    in the view; nothing else is treated as gone. ``dereg``: the plan's deregister of the
    snapshot's image, whose rule ``decide_image`` checked against the rule governing the
    image live: the snapshot action must name that same rule (an edited plan may not borrow
    another family's ``snapshots: delete``)."""
    sid = action.snapshot_id or ""
    snap: Snapshot | None = view.inventory.snapshot_by_id.get(sid)
    if snap is None:
        return _absent(ec2, action, "snapshot")
    if view.error:
        return _skip(f"could not re-read {action.account}/{action.region} ({view.error})")
    stays = snapshot_keep_reasons(
        view.inventory,
        ctx.policy,
        ctx.holds,
        snap,
        now,
        of_image=action.image_id or None,
        leaving=leaving,
        recorded=ctx.recorded(),
        shared_with=view.snapshot_shares.get(sid),
    )
    if sid not in view.snapshot_shares:
        stays.append("its createVolumePermission was not read")
    if stays:
        return _skip("; ".join(stays[:3]))
    if action.image_id:
        if dereg is not None and dereg.rule != action.rule:
            return _skip(
                f"the plan's rule(s) {action.rule!r} are not those its image was deregistered "
                f"under ({dereg.rule!r})"
            )
        rules = [ctx.rule(n) for n in action.rule.split(",")]
        modes = {r.retire.snapshots for r in rules if r is not None}
        if (
            not rules
            or None in rules
            or "keep" in modes
            or (action.type == "delete-snapshot" and modes != {"delete"})
        ):
            return _skip(f"the plan's rule(s) {action.rule!r} do not say to {action.type}")
        return Verdict("go")
    o = ctx.policy.orphaned
    if o is None or o.action != action.type.split("-")[0]:
        return _skip("the plan's policy does not say to " + action.type.replace("-", " ") + "s")
    return Verdict("go")
