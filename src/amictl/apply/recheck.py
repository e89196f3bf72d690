"""Re-derive every safety fact from the live account just before each action.

Nothing the plan file says can make apply less careful (policy.md, safety rule 7).
The plan contributes only what it asks for (the action, its rule, the policy's
holds and options); whether it may happen is decided here, from live reads:

- images: exists, owned, state, holds (image tags, each snapshot's tags, the
  built-in holds, deregistration protection), in use (every reference kind of the
  account/region, re-read at most ``max_age`` ago, plus a targeted instance
  lookup), shared/public, launched lately, marked by THIS policy, and the stage
  due by the live mark time and the real clock. An image in use or shared is touched
  only if the planner flagged the action ``unsafe``, its rule says ``in_use: false``
  (or ``shared: false``) and apply was given ``--force-unsafe``. ``expect`` (what the
  planner saw) only adds refusals: any drift from it skips the action.
- snapshots: exists, owned, held, not shared, no registered image uses it, and its
  origin is still what the plan says (the image it came from is gone and the snapshot
  really was that image's, or it is still orphaned by the policy's criteria).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..aws.session import Connector, Target
from ..durations import human_duration
from ..inventory.collectors import launch_permission_targets
from ..inventory.scan import scan
from ..model import IN_USE_KINDS, Reference, Snapshot, iso, parse_time
from ..policy.holds import hold_reasons
from ..policy.model import Hold, Policy, Rule
from ..policy.plan_model import Action
from ..policy.planner import BY_TAG, MARK_TAG

REFERENCE_KINDS = [
    "instances",
    "launch-templates",
    "launch-configurations",
    "auto-scaling-groups",
    "ssm-parameters",
]
# Always enforced, whatever holds the plan carries: a plan edited to drop its holds still
# cannot retire what these protect.
DEFAULT_HOLDS = (
    Hold(tag="legal-hold"),
    Hold(tag="retain-until", until_value=True),
    Hold(deregistration_protection=True),
)
# What the live re-checks and refusals read (registered for `amictl iam-policy apply`).
RECHECK_PERMISSIONS = (
    "ec2:DescribeImages",
    "ec2:DescribeImageAttribute",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSnapshotAttribute",
    "ec2:DescribeInstances",
    "rbin:ListRules",
    "rbin:GetRule",
)
GONE_IMAGE = {"InvalidAMIID.Unavailable", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed"}
GONE_SNAPSHOT = {"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"}
RUNNING_STATES = ["pending", "running", "stopping", "stopped"]


def effective_holds(plan_holds: tuple[Hold, ...]) -> tuple[Hold, ...]:
    out = list(DEFAULT_HOLDS)
    for h in plan_holds:
        if not any(
            h.tag == d.tag
            and h.deregistration_protection == d.deregistration_protection
            and h.until_value == d.until_value
            for d in out
        ):
            out.append(h)
    return tuple(out)


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Verdict:
    kind: str  # go | skip | gone
    reason: str = ""
    snapshots: tuple[str, ...] = ()  # an image's live snapshot ids (recorded as their origin)

    @property
    def go(self) -> bool:
        return self.kind == "go"


def _skip(reason: str) -> Verdict:
    return Verdict("skip", reason)


class References:
    """Live references per (account, region), re-read when older than ``max_age`` seconds,
    or (``fresh=True``, before each deregister) as soon as the launch templates changed:
    one DescribeLaunchTemplates call tells whether a template was created or got a new
    version or default, the way a deployment during a clean-up shows."""

    def __init__(self, connector: Connector, max_age: float = 60.0) -> None:
        self.connector = connector
        self.max_age = max_age
        self._data: dict[
            tuple[str, str], tuple[float, dict[str, list[Reference]], str | None, Any]
        ] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def _templates(self, target: Target) -> Any:
        ec2 = self.connector.client("ec2", target.region, target.role_arn)
        out = []
        for page in ec2.get_paginator("describe_launch_templates").paginate():
            for t in page.get("LaunchTemplates", []):
                out.append(
                    (
                        t["LaunchTemplateId"],
                        t.get("LatestVersionNumber"),
                        t.get("DefaultVersionNumber"),
                    )
                )
        return sorted(out)

    def get(
        self, target: Target, fresh: bool = False
    ) -> tuple[dict[str, list[Reference]], str | None]:
        """(image id -> references, error or None)."""
        key = (target.account, target.region)
        with self._locks[key]:
            cached = self._data.get(key)
            recent = cached is not None and time.monotonic() - cached[0] < self.max_age
            if cached and recent and (not fresh or self._templates(target) == cached[3]):
                return cached[1], cached[2]
            templates = self._templates(target)
            inv = scan(self.connector, [target], kinds=REFERENCE_KINDS, workers=4)
            refs: dict[str, list[Reference]] = defaultdict(list)
            for r in inv.references:
                refs[r.image_id].append(r)
            bad = inv.incomplete_slices()
            error = "; ".join(f"{s.kind}: {s.error_code}" for s in bad) if bad else None
            self._data[key] = (time.monotonic(), dict(refs), error, templates)
            return dict(refs), error


@dataclass
class Context:
    """What the re-checks know besides the live account: the plan's policy and the flags."""

    policy: Policy
    holds: tuple[Hold, ...]
    force_unsafe: bool = False
    # image id -> its snapshot ids as read live by this plan's deregister re-check
    origins: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.policy.rules if r.name == name), None)


def describe_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    try:
        imgs = ec2.describe_images(
            ImageIds=[image_id], IncludeDisabled=True, IncludeDeprecated=True
        )["Images"]
    except ClientError as exc:
        if code_of(exc) in GONE_IMAGE:
            return None
        raise
    img = imgs[0] if imgs else None
    if img is not None and img.get("State") == "deregistered":
        return None
    return img


def _describe_snapshot(ec2: Any, snapshot_id: str) -> dict[str, Any] | None:
    try:
        snaps = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as exc:
        if code_of(exc) in GONE_SNAPSHOT:
            return None
        raise
    return snaps[0] if snaps else None


def tags_of(d: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in d.get("Tags", []) or []}


def _protection(img: dict[str, Any]) -> tuple[bool, str]:
    protection = img.get("DeregistrationProtection") or "disabled"
    # Conservative: a "disabled-until" cooldown counts as protection whatever its time.
    return protection.startswith(("enabled", "disabled-until")), protection


def _may_override(action: Action, rule: Rule | None, ctx: Context, what: str) -> bool:
    """In use / shared images: only with unsafe + the rule's explicit false + --force-unsafe."""
    if not (action.unsafe and ctx.force_unsafe and rule is not None):
        return False
    return (rule.keep.in_use is False) if what == "in_use" else (rule.keep.shared is False)


def recheck_image(
    ec2: Any,
    action: Action,
    refs: dict[str, list[Reference]],
    refs_error: str | None,
    ctx: Context,
) -> Verdict:
    """The verdict for a deprecate / disable / deregister, from live state."""
    if refs_error:
        return _skip(
            f"could not re-read the references of {action.account}/{action.region}: {refs_error}"
        )
    img = describe_image(ec2, action.image_id or "")
    if img is None:
        return Verdict("gone", "image not found")
    now = utcnow()
    if img.get("OwnerId") != action.account:
        return _skip(f"not owned by {action.account} (owner {img.get('OwnerId')})")
    state = img.get("State")
    if state not in ("available", "disabled"):
        return _skip(f"image state is {state}")
    tags = tags_of(img)
    protected, protection = _protection(img)
    held = hold_reasons(tags, protected, protection, ctx.holds, now)
    if held:
        return _skip(f"now {held[0]}")
    if action.type == "deregister" and protection != "disabled":
        return _skip(f"deregistration protection is {protection}")
    snap_ids = tuple(
        m["Ebs"]["SnapshotId"]
        for m in img.get("BlockDeviceMappings", []) or []
        if (m.get("Ebs") or {}).get("SnapshotId")
    )
    for sid in snap_ids:
        # None: not visible to this account (another owner's). Any other error propagates:
        # the action fails rather than skip the hold check.
        snap = _describe_snapshot(ec2, sid)
        if snap is not None:
            sheld = hold_reasons(tags_of(snap), False, "disabled", ctx.holds, now)
            if sheld:
                return _skip(f"its snapshot {sid} is {sheld[0]}")
    rule = ctx.rule(action.rule)
    if rule is None:
        return _skip(f"the plan's policy has no rule {action.rule!r}")
    # The mark: made by THIS policy, and the stage due by the live mark time and the real clock.
    if tags.get(BY_TAG) != ctx.policy.name:
        who = tags.get(BY_TAG)
        return _skip(
            f"marked for retirement by policy {who!r}, not {ctx.policy.name!r}"
            if who
            else f"not marked for retirement by policy {ctx.policy.name!r}"
        )
    try:
        since = parse_time(tags.get(MARK_TAG))
    except ValueError:
        since = None
    if since is None:
        return _skip(f"no valid {MARK_TAG} mark")
    delay = getattr(rule.retire, action.type, None)
    if delay is None:
        return _skip(f"rule {rule.name} has no {action.type} stage")
    if since + delay > now:
        return _skip(f"the {action.type} stage is due only at {iso(since + delay)}")
    # In use: every reference kind (re-read), and the instances right now.
    use = [r.detail for r in refs.get(action.image_id or "", []) if r.kind in IN_USE_KINDS]
    if action.type == "deregister":
        use.extend(_instances_using(ec2, action.image_id or ""))
    expect = dict(action.expect)
    if "in_use" in expect and bool(use) != expect["in_use"]:
        return _skip(
            f"changed since the plan: in use was {expect['in_use']}, now {bool(use)}"
            + (f" ({'; '.join(use[:3])})" if use else "")
        )
    if use and not _may_override(action, rule, ctx, "in_use"):
        return _skip("in use: " + "; ".join(use[:3]))
    public = bool(img.get("Public"))
    targets: list[str] = []
    if state != "disabled":
        perms = ec2.describe_image_attribute(ImageId=action.image_id, Attribute="launchPermission")
        public2, targets = launch_permission_targets(perms.get("LaunchPermissions", []))
        public = public or public2
    shared = public or bool(targets)
    if "shared" in expect and shared != expect["shared"]:
        return _skip(f"changed since the plan: shared was {expect['shared']}, now {shared}")
    if shared and not _may_override(action, rule, ctx, "shared"):
        return _skip("shared: " + ", ".join((["public"] if public else []) + targets))
    if "protected" in expect and protected != expect["protected"]:
        return _skip(f"changed since the plan: protection is now {protection}")
    if rule.keep.launched_within is not None:
        last = parse_time(img.get("LastLaunchedTime"))
        if last is not None and now - last <= rule.keep.launched_within:
            return _skip(
                f"launched at {iso(last)}, within {human_duration(rule.keep.launched_within)}"
            )
    planned = expect.get("state")
    if planned and state != planned and not (planned == "available" and state == "disabled"):
        return _skip(f"image state changed since the plan: {planned} -> {state}")
    return Verdict("go", snapshots=snap_ids)


def _instances_using(ec2: Any, image_id: str) -> list[str]:
    out = []
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "image-id", "Values": [image_id]},
            {"Name": "instance-state-name", "Values": RUNNING_STATES},
        ]
    ):
        for res in page.get("Reservations", []):
            for inst in res.get("Instances", []):
                out.append(f"instance {inst['InstanceId']} ({inst['State']['Name']})")
    return out


def _images_using_snapshot(ec2: Any, snapshot_id: str) -> list[str]:
    out: list[str] = []
    for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"],
        IncludeDisabled=True,
        IncludeDeprecated=True,
        Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snapshot_id]}],
    ):
        out.extend(i["ImageId"] for i in page.get("Images", []))
    return out


def recheck_snapshot(ec2: Any, action: Action, ctx: Context) -> Verdict:
    """The verdict for a delete-snapshot / archive-snapshot, from live state."""
    sid = action.snapshot_id or ""
    snap = _describe_snapshot(ec2, sid)
    if snap is None:
        return Verdict("gone", "snapshot not found")
    now = utcnow()
    if snap.get("OwnerId") != action.account:
        return _skip(f"not owned by {action.account} (owner {snap.get('OwnerId')})")
    held = hold_reasons(tags_of(snap), False, "disabled", ctx.holds, now)
    if held:
        return _skip(f"now {held[0]}")
    users = _images_using_snapshot(ec2, sid)
    if users:
        return _skip("used by registered image(s) " + ", ".join(users[:5]))
    perms = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
    shared = [
        p.get("UserId") or p.get("Group") or "?" for p in perms.get("CreateVolumePermissions", [])
    ]
    if shared:
        return _skip("shared with " + ", ".join(shared))
    model = Snapshot(
        snapshot_id=sid,
        account=action.account,
        region=action.region,
        size_gib=int(snap.get("VolumeSize") or 0),
        description=snap.get("Description") or "",
        tags=tags_of(snap),
    )
    if action.image_id:
        # A snapshot of an image this plan deregisters: that image must be gone, and the
        # snapshot must really have been that image's.
        if describe_image(ec2, action.image_id) is not None:
            return _skip(f"its image {action.image_id} is still registered")
        with ctx.lock:
            recorded = ctx.origins.get(action.image_id)
        if not (
            (recorded is not None and sid in recorded) or model.made_for_image == action.image_id
        ):
            return _skip(f"cannot verify that it was a snapshot of {action.image_id}")
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
    # An orphaned snapshot: still orphaned by the policy's criteria.
    o = ctx.policy.orphaned
    if o is None or o.action != action.type.split("-")[0]:
        return _skip("the plan's policy does not say to " + action.type.replace("-", " ") + "s")
    started = parse_time(snap.get("StartTime"))
    if started is None or now - started < o.older_than:
        return _skip(f"younger than {human_duration(o.older_than)}")
    made_for = model.made_for_image
    if o.only_from_images:
        if made_for is None:
            return _skip("not made for an image (a volume backup)")
        if describe_image(ec2, made_for) is not None:
            return _skip(f"the image it was made for, {made_for}, is registered")
    return Verdict("go")
