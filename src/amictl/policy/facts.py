"""Per-image facts a plan needs, read only where a decision needs them.

The scan lists images without their launch permissions (one DescribeImageAttribute per
image, throttled per account and region). Sharing can only keep an image (or make its
retirement unsafe), so a first planning pass that takes every unread image as private,
but gives it no destructive stage, reports each unread image that had one due (deprecate,
disable, deregister); only those, and the images built from them (a kept descendant
keeps its ancestors), need their launch permissions. They are read (``read``: live or from the state store's cache),
then the plan is made again. Reading can only add reasons to keep, so the second pass
retires a subset of the first; an image whose read failed stays unread and the planner
gives it no destructive stage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from ..keep.decide import STAGES
from ..model import Image, Inventory, Reference
from .model import Policy
from .plan_model import Plan
from .planner import plan

STAGE_ACTIONS = STAGES  # the retirement stages (amictl.keep.decide)
# image ids -> (AWS's references, disagreements with the inventory, problems asking)
SecondOpinion = Callable[[list[str]], tuple[list[Reference], list[str], list[str]]]


def needs_snapshots(policy: Policy) -> bool:
    """Whether any decision of this policy can depend on the snapshots: holds (a held
    snapshot holds its image), snapshot actions after a deregister, orphaned snapshots.
    A policy that needs none plans the same without reading them."""
    if policy.holds or policy.orphaned is not None:
        return True
    return any(
        r.retire.deregister is not None and r.retire.snapshots != "keep" for r in policy.rules
    )


def with_descendants(inv: Inventory, ids: set[str]) -> list[Image]:
    """The unread images among ``ids`` and every image built from them (a kept
    descendant keeps its ancestors)."""
    wanted = set(ids) | inv.descendants(set(ids))
    return [inv.by_id[i] for i in sorted(wanted) if i in inv.by_id and inv.by_id[i].lp == "unread"]


def plan_reading_sharing(
    inv: Inventory,
    policy: Policy,
    now: dt.datetime,
    read: Callable[..., object],
    created_at: dt.datetime | None = None,
    extra: list[Image] | None = None,
    explain: bool = False,
    second_opinion: SecondOpinion | None = None,
) -> Plan:
    """The plan, after reading the launch permissions of the images it could retire
    (and of ``extra`` images, e.g. the one being explained). ``read(images, live=False)``:
    ``live`` bypasses the state store's cache.

    The first pass plans unread images without any destructive stage and reports those
    that had one due; when there are none (a plan that only marks, or everything read
    already) that first plan is the plan."""
    inv.resolve_families(policy.families)
    if extra:
        read([i for i in extra if i.lp == "unread"])
    blocked: set[str] = set()
    first = plan(inv, policy, now, created_at=created_at, explain=explain, blocked=blocked)
    if not blocked:
        return with_second_opinion(first, inv, policy, now, created_at, explain, second_opinion)
    del first
    needed = with_descendants(inv, blocked)
    # An image read because it may keep the image it was built from (keep.ancestors) is
    # read live: apply re-reads the sharing of the image it acts on, not of its
    # descendants, so a cached read of those could make it retire a kept ancestor.
    kids = {i.image_id for i in inv.images if i.source_image_id in blocked}
    descendants = {i.image_id for i in with_descendants(inv, kids)}
    cached_ok = [i for i in needed if i.image_id not in descendants]
    if cached_ok:
        read(cached_ok)
    live = [i for i in needed if i.image_id in descendants]
    if live:
        read(live, True)
    final = plan(inv, policy, now, created_at=created_at, explain=explain)
    return with_second_opinion(final, inv, policy, now, created_at, explain, second_opinion)


def retiring(p: Plan) -> list[str]:
    return sorted({a.image_id or "" for a in p.actions if a.type in STAGE_ACTIONS} - {""})


def with_second_opinion(
    p: Plan,
    inv: Inventory,
    policy: Policy,
    now: dt.datetime,
    created_at: dt.datetime | None,
    explain: bool,
    second_opinion: SecondOpinion | None,
) -> Plan:
    """AWS's own reference check (DescribeImageReferences) for the images the plan would
    retire: every reference it reports is added to the inventory (kind ``aws-reference``,
    a reason to keep) and the plan is made again; where AWS and amictl's graph disagree,
    or AWS could not be asked, the plan's warnings say so (once) and amictl's graph stands."""
    ids = retiring(p)
    if second_opinion is None or not ids:
        return p
    refs, disagreements, problems = second_opinion(ids)
    notes = [f"AWS reference check: {d}" for d in disagreements] + list(dict.fromkeys(problems))
    if refs:
        inv.references.extend(refs)
        inv.facts_changed()
        p = plan(inv, policy, now, created_at=created_at, explain=explain)
    if not notes:
        return p
    return replace(p, warnings=tuple(sorted({*p.warnings, *notes})))
