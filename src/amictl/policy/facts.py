"""Per-image facts a plan needs, read only where a decision needs them.

The scan lists images without their launch permissions (one DescribeImageAttribute per
image, throttled per account and region). Sharing can only keep an image (or make its
retirement unsafe), so a first planning pass that takes every unread image as private
finds every image that could get a destructive stage (deprecate, disable, deregister);
only those, and the images built from them (a kept descendant keeps its ancestors), need
their launch permissions. They are read (``read``: live or from the state store's cache),
then the plan is made again. Reading can only add reasons to keep, so the second pass
retires a subset of the first; an image whose read failed stays unread and the planner
gives it no destructive stage.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable

from ..model import Image, Inventory
from .model import Policy
from .plan_model import Plan
from .planner import plan

STAGE_ACTIONS = ("deprecate", "disable", "deregister")


def images_needing_sharing(inv: Inventory, policy: Policy, now: dt.datetime) -> list[Image]:
    """Unread images a plan could retire now (taking unread ones as private), and their
    descendants."""
    if not any(i.lp == "unread" for i in inv.images):
        return []
    first = plan(inv, policy, now, unread="assume-private")
    wanted = {a.image_id for a in first.actions if a.type in STAGE_ACTIONS and a.image_id}
    children: dict[str, list[str]] = defaultdict(list)
    for i in inv.images:
        if i.source_image_id:
            children[i.source_image_id].append(i.image_id)
    stack = list(wanted)
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in wanted:
                wanted.add(c)
                stack.append(c)
    return [inv.by_id[i] for i in sorted(wanted) if i in inv.by_id and inv.by_id[i].lp == "unread"]


def plan_reading_sharing(
    inv: Inventory,
    policy: Policy,
    now: dt.datetime,
    read: Callable[[list[Image]], object],
    created_at: dt.datetime | None = None,
    extra: list[Image] | None = None,
    explain: bool = False,
) -> Plan:
    """The plan, after reading the launch permissions of the images it could retire
    (and of ``extra`` images, e.g. the one being explained)."""
    inv.resolve_families(policy.families)
    needed = images_needing_sharing(inv, policy, now)
    needed += [i for i in extra or [] if i.lp == "unread" and i not in needed]
    if needed:
        read(needed)
    return plan(inv, policy, now, created_at=created_at, explain=explain)
