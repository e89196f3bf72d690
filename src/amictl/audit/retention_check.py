"""Retention gaps (issue 29), checked when the audit is given a policy with ``retain``
rules: a version a rule names whose retention is not in place (decided by
:mod:`amictl.keep.retention`, as plan and apply decide it), and a Region-level Recycle Bin
rule that is not locked (anyone allowed to can delete it, and what it would keep)."""

from __future__ import annotations

from collections.abc import Iterator

from ..keep.retention import retain_selects, retention_gap
from .registry import AuditContext, Check, Finding, check


@check(
    "retention-gap",
    "high",
    "A version a retain rule names is not held by AWS",
    "amictl retain --policy POLICY --region {region}",
    ("ec2:DescribeLockedSnapshots", "ec2:DescribeStoreImageTasks"),
    "A version the policy's retain rules name (e.g. every version ever in prod) whose "
    "snapshots are not locked in the rule's mode, or that is not stored to the rule's S3 "
    "bucket. Checked with `audit --policy FILE`.",
)
def retention_gap_check(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    policy = ctx.options.policy
    if policy is None or not policy.retain:
        return
    ctx.inv.resolve_families(policy.families)
    for img in ctx.inv.images:
        if not img.owned:
            continue
        for rule in policy.retain:
            if retain_selects(rule, ctx.inv, img):
                gap = retention_gap(rule, ctx.inv, img, ctx.now)
                if gap:
                    yield c.finding(
                        img.account,
                        img.region,
                        img.image_id,
                        f"retain rule {rule.name}: {gap}",
                        img.name,
                    )


@check(
    "recycle-bin-rule-unlocked",
    "medium",
    "A Region-level Recycle Bin rule is not locked",
    "aws rbin lock-rule --identifier {resource} --lock-configuration "
    "'UnlockDelay={{UnlockDelayValue=7,UnlockDelayUnit=DAYS}}' --region {region}",
    ("rbin:ListRules", "rbin:GetRule"),
    "Anyone allowed to can delete an unlocked retention rule, and with it the "
    "recoverability of what it keeps. Checked with `audit --policy FILE` when the policy "
    "has retain rules.",
)
def recycle_bin_rule_unlocked(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    policy = ctx.options.policy
    if policy is None or not policy.retain:
        return
    for rs in ctx.regions:
        cov = rs.recycle_bin
        if cov is None:
            continue
        for res in (cov.images, cov.snapshots):
            for rule in res.rules:
                if rule.scope == "region" and rule.lock_state != "locked":
                    yield c.finding(
                        rs.account,
                        rs.region,
                        rule.id,
                        f"{res.resource_type} rule {rule.id} ({rule.days} days) is "
                        f"{rule.lock_state or 'never locked'}",
                    )


@check(
    "retired-without-notice",
    "high",
    "An image was deregistered without a delivered notice to its owner",
    "amictl notify PLAN before apply, and set notify: {{before: 7d}} in the policy",
    (),
    "apply's journal has a deregister done for an image whose owner had no notice delivered "
    "before it (amictl's notices journal in the state store). There must be none.",
)
def retired_without_notice(ctx: AuditContext, c: Check) -> Iterator[Finding]:
    for r in ctx.options.unnoticed or ():
        yield c.finding(
            r["account"],
            r["region"],
            r["resource"],
            f"deregistered {r['at']} by plan {r['plan_checksum'][:12]} with no notice delivered",
        )
