"""Audit check ``managed-overlap`` (issue 26): an image that another service manages (EC2
Image Builder, Data Lifecycle Manager, AWS Backup: ``keep.managed``) and that a rule of the
policy given to ``audit --policy`` adopts (``select.managed``) is retired by two lifecycles
at once: amictl's rule and the service's own (the Image Builder build or lifecycle policy,
the DLM policy, the backup vault's retention the image's tags name). Without ``--policy``
the check has nothing to compare and finds nothing."""

from __future__ import annotations

from collections.abc import Iterator

from ..keep.decide import selects
from ..keep.managed import managed_by
from .checks import IMAGES
from .registry import AuditContext, Check, Finding, check


@check(
    "managed-overlap",
    "medium",
    "A policy rule and another service's lifecycle both govern the image",
    "let one of them retire it: drop {service} from rule {rule}'s select.managed, "
    "or the image from {owner}",
    IMAGES,
    "The policy (audit --policy) adopts an image Image Builder, DLM or AWS Backup manages; "
    "both lifecycles retire it.",
)
def managed_overlap(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    policy = ctx.options.policy
    if policy is None:
        return
    ctx.inv.resolve_families(policy.families)
    for img in sorted(ctx.inv.images, key=lambda i: (i.account, i.region, i.image_id)):
        owner = managed_by(img.tags, img.description) if img.owned else None
        if owner is None:
            continue
        rule = next((r for r in policy.rules if selects(r, img, ctx.now)), None)
        if rule is None or owner.service not in rule.select.managed:
            continue
        yield c.finding(
            img.account,
            img.region,
            img.image_id,
            f"rule {rule.name} of policy {policy.name} adopts it; {owner.label} manages it too",
            img.name,
            service=owner.service,
            rule=rule.name,
            owner=owner.resource or owner.service,
        )
