"""Retention rules: read them into a Coverage, and create the ones amictl needs.

ListRules returns rule *summaries* (identifier, description, retention, lock state,
ARN): not their resource tags, exclusion tags or status. So every listed rule is read
with GetRule to tell Region-level rules from tag-level ones (a Region can have up to 250
rules; GetRule is one call per rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error, error_code
from ..errors import AwsError, InputError
from .model import (
    EBS_SNAPSHOT,
    EC2_IMAGE,
    NOUNS,
    RESOURCE_TYPES,
    UNIT_DAYS,
    Coverage,
    ResourceCoverage,
    Rule,
    pair_text,
    tag_pairs,
)

MIN_DAYS, MAX_DAYS = 1, 365  # EBS snapshots and EBS-backed AMIs (AWS Recycle Bin docs)
MAX_TAGS = 50  # tag key/value pairs per retention rule (AWS quota)


def _days(period: Mapping[str, Any] | None) -> int | None:
    period = period or {}
    value, unit = period.get("RetentionPeriodValue"), period.get("RetentionPeriodUnit", "DAYS")
    if value is None or unit not in UNIT_DAYS:
        return None
    return int(value) * UNIT_DAYS[unit]


def _rule(summary: Mapping[str, Any], rtype: str, detail: Mapping[str, Any] | None) -> Rule:
    d = detail or {}
    return Rule(
        id=str(summary.get("Identifier") or d.get("Identifier")),
        resource_type=str(d.get("ResourceType") or rtype),
        days=_days(d.get("RetentionPeriod") or summary.get("RetentionPeriod")),
        resource_tags=tag_pairs(d.get("ResourceTags")),
        exclude_tags=tag_pairs(d.get("ExcludeResourceTags")),
        status=str(d.get("Status") or ("unknown" if detail is None else "available")),
        lock_state=d.get("LockState") or summary.get("LockState"),
        description=str(d.get("Description") or summary.get("Description") or ""),
        arn=d.get("RuleArn") or summary.get("RuleArn"),
    )


def list_rules(rbin: Any, rtype: str) -> list[Rule]:
    """Every retention rule for ``rtype`` (paginated), each read with GetRule.

    ListRules failing raises (botocore errors); a GetRule failure other than "not found"
    keeps the rule with ``detail_error`` set (its scope is then unknown).
    """
    out: list[Rule] = []
    for page in rbin.get_paginator("list_rules").paginate(ResourceType=rtype):
        for summary in page.get("Rules", []):
            try:
                detail = rbin.get_rule(Identifier=summary["Identifier"])
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    continue  # deleted between ListRules and GetRule
                rule = _rule(summary, rtype, None)
                out.append(replace(rule, detail_error=error_code(exc) or "Unknown"))
                continue
            out.append(_rule(summary, rtype, detail))
    return out


def rbin_client(connector: Connector, target: Target, max_attempts: int | None = None) -> Any:
    return connector.client("rbin", target.region, target.role_arn, max_attempts=max_attempts)


def coverage(connector: Connector, target: Target, max_attempts: int | None = None) -> Coverage:
    """Whether deregistered images and deleted snapshots in ``target`` will be recoverable.

    Never raises for AWS errors: a resource type whose rules could not be listed has
    ``recoverable=None``, ``scope="unknown"`` and the AWS error code. ``max_attempts``
    lowers the retries for advisory checks (apply's pre-flight).
    """
    per: dict[str, ResourceCoverage] = {}
    try:
        rbin = rbin_client(connector, target, max_attempts)
    except Exception as exc:  # noqa: BLE001 - AssumeRole etc.: the coverage is unknown
        err = exc if isinstance(exc, AwsError) else aws_error(exc, "ListRules", target.region)
        return Coverage(
            target.account,
            target.region,
            ResourceCoverage.failed(EC2_IMAGE, err.code, err.message),
            ResourceCoverage.failed(EBS_SNAPSHOT, err.code, err.message),
            role_arn=target.role_arn,
        )
    for rtype in RESOURCE_TYPES:
        try:
            per[rtype] = ResourceCoverage.from_rules(rtype, list_rules(rbin, rtype))
        except (ClientError, BotoCoreError) as exc:
            err = aws_error(exc, "ListRules", target.region)
            per[rtype] = ResourceCoverage.failed(rtype, err.code, err.message)
    return Coverage(
        target.account,
        target.region,
        per[EC2_IMAGE],
        per[EBS_SNAPSHOT],
        role_arn=target.role_arn,
    )


def check_retention(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise InputError(f"retention must be a whole number of days, not {days!r}", key="retention")
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise InputError(
            f"retention must be {MIN_DAYS} to {MAX_DAYS} days (AWS limit for snapshots and AMIs), "
            f"not {days}",
            key="retention",
        )
    return days


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (tags or {}).items():
        if not isinstance(k, str) or not 1 <= len(k) <= 128:
            raise InputError(f"tag key must be 1 to 128 characters: {k!r}", key="tag")
        if not isinstance(v, str) or len(v) > 256:
            raise InputError(
                f"tag value must be a string of at most 256 characters: {v!r}", key="tag"
            )
        out[k] = v
    if len(out) > MAX_TAGS:
        raise InputError(f"at most {MAX_TAGS} tags per retention rule", key="tag")
    return out


def _matching(rules: list[Rule], days: int, tags: dict[str, str]) -> Rule | None:
    """An existing rule that already keeps what the requested rule would keep, as long."""
    want = set(tags.items())
    usable = [
        r
        for r in rules
        if r.status in ("available", "pending")
        and not r.detail_error
        and (r.days or 0) >= days
        and (
            (r.scope == "region" and not r.exclude_tags)
            or (bool(want) and r.scope == "tagged" and want <= set(r.resource_tags))
        )
    ]

    def rank(r: Rule) -> tuple[int, int, int]:
        same_scope = (r.scope == "tagged") == bool(want)
        return (0 if same_scope else 1, 0 if r.days == days else 1, -(r.days or 0))

    return min(usable, key=rank, default=None)


def _description(rtype: str, days: int, tags: dict[str, str]) -> str:
    what = "deregistered AMIs" if rtype == "EC2_IMAGE" else "deleted EBS snapshots"
    text = f"amictl: keep {what} {days} days"
    if tags:
        text += " if tagged " + " or ".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return text if len(text) <= 255 else text[:252] + "..."


def _row(target: Target, rule: Rule, status: str) -> dict[str, Any]:
    return {
        "account": target.account,
        "region": target.region,
        "resource_type": rule.resource_type,
        "status": status,
        "rule_id": rule.id,
        "retention_days": rule.days,
        "scope": rule.scope,
        "tags": [pair_text(p) for p in rule.resource_tags],
        "rule_status": rule.status,
        "description": rule.description,
    }


def ensure(
    connector: Connector,
    target: Target,
    retention_days: int,
    tags: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A retention rule for images and one for snapshots in ``target``, created if needed.

    Region-wide without ``tags``; tag-level with them (a resource with any one of the
    pairs is kept). An existing available/pending rule that keeps the same resources at
    least as long is reused (``status: exists``) instead of adding another. Returns one
    row per resource type. Raises InputError for a bad retention/tags, AwsError when AWS
    refuses.
    """
    days = check_retention(retention_days)
    want = check_tags(tags)
    rbin = rbin_client(connector, target)
    out: list[dict[str, Any]] = []
    for rtype in RESOURCE_TYPES:
        try:
            existing = _matching(list_rules(rbin, rtype), days, want)
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, "ListRules", target.region) from None
        if existing is not None:
            out.append(_row(target, existing, "exists"))
            continue
        req: dict[str, Any] = {
            "ResourceType": rtype,
            "RetentionPeriod": {"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"},
            "Description": _description(rtype, days, want),
        }
        if want:
            req["ResourceTags"] = [
                {"ResourceTagKey": k, "ResourceTagValue": v} for k, v in sorted(want.items())
            ]
        try:
            resp = rbin.create_rule(**req)
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, f"CreateRule ({NOUNS[rtype]})", target.region) from None
        out.append(_row(target, _rule(resp, rtype, resp), "created"))
    return out
