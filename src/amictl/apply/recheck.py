"""Re-check before every destructive action, from live state.

Per (account, region) the reference kinds are re-read once when apply starts (and
again when older than ``max_age``): instances, every launch-template version,
launch configurations, ASGs, SSM parameters. Each image is then re-read just
before its action (state, tags, protection, launch permissions). An image that is
now in use, held, shared, protected or changed since the plan is skipped.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from typing import Any

from ..aws.session import Connector, Target
from ..inventory.collectors import launch_permission_targets
from ..inventory.scan import scan
from ..model import Reference
from ..policy.holds import hold_reasons
from ..policy.model import Hold
from ..policy.plan_model import Action
from ..policy.planner import IN_USE_KINDS

REFERENCE_KINDS = [
    "instances",
    "launch-templates",
    "launch-configurations",
    "auto-scaling-groups",
    "ssm-parameters",
]
DEFAULT_HOLDS = (
    Hold(tag="legal-hold"),
    Hold(tag="retain-until", until_value=True),
    Hold(deregistration_protection=True),
)


class References:
    """Live references per (account, region), refreshed when older than max_age seconds."""

    def __init__(self, connector: Connector, max_age: float = 300.0) -> None:
        self.connector = connector
        self.max_age = max_age
        self._data: dict[tuple[str, str], tuple[float, dict[str, list[Reference]], str | None]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def get(self, target: Target) -> tuple[dict[str, list[Reference]], str | None]:
        """(image id -> references, error or None)."""
        key = (target.account, target.region)
        with self._locks[key]:
            cached = self._data.get(key)
            if cached and time.monotonic() - cached[0] < self.max_age:
                return cached[1], cached[2]
            inv = scan(self.connector, [target], kinds=REFERENCE_KINDS, workers=4)
            refs: dict[str, list[Reference]] = defaultdict(list)
            for r in inv.references:
                refs[r.image_id].append(r)
            bad = inv.incomplete_slices()
            error = "; ".join(f"{s.kind}: {s.error_code}" for s in bad) if bad else None
            self._data[key] = (time.monotonic(), dict(refs), error)
            return dict(refs), error

    def invalidate(self) -> None:
        self._data.clear()


def recheck_image(
    ec2: Any,
    action: Action,
    refs: dict[str, list[Reference]],
    refs_error: str | None,
    holds: tuple[Hold, ...],
) -> tuple[str, str | None]:
    """('go', None) | ('skip', reason) | ('gone', reason) for a deprecate/disable/deregister."""
    if refs_error:
        return (
            "skip",
            f"could not re-read the references of {action.account}/{action.region}: {refs_error}",
        )
    from botocore.exceptions import ClientError

    try:
        imgs = ec2.describe_images(
            ImageIds=[action.image_id], IncludeDisabled=True, IncludeDeprecated=True
        )["Images"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in (
            "InvalidAMIID.Unavailable",
            "InvalidAMIID.NotFound",
        ):
            return "gone", "image no longer exists"
        raise
    if not imgs:
        return "gone", "image no longer exists"
    img = imgs[0]
    expect = dict(action.expect)
    tags = {t["Key"]: t["Value"] for t in img.get("Tags", [])}
    protection = img.get("DeregistrationProtection") or "disabled"
    # Conservative: a "disabled-until" cooldown counts as protection whatever its time.
    protected = protection.startswith(("enabled", "disabled-until"))
    reasons = hold_reasons(tags, protected, protection, holds, dt.datetime.now(dt.UTC))
    if reasons:
        return "skip", f"now {reasons[0]}"
    use = [r for r in refs.get(action.image_id or "", []) if r.kind in IN_USE_KINDS]
    if use and not expect.get("in_use", False):
        return "skip", "now in use: " + "; ".join(r.detail for r in use[:3])
    public = bool(img.get("Public"))
    targets: list[str] = []
    if img.get("State") != "disabled":
        perms = ec2.describe_image_attribute(ImageId=action.image_id, Attribute="launchPermission")
        public2, targets = launch_permission_targets(perms.get("LaunchPermissions", []))
        public = public or public2
    if (public or targets) and not expect.get("shared", False):
        return "skip", "now shared: " + ", ".join((["public"] if public else []) + targets)
    if (
        action.type == "deregister"
        and protection != "disabled"
        and not protection.startswith("disabled")
    ):
        return "skip", f"deregistration protection is {protection}"
    state = img.get("State")
    planned_state = expect.get("state")
    if planned_state and state not in (planned_state, "disabled", "available"):
        return "skip", f"image state changed since the plan: {planned_state} -> {state}"
    return "go", None
