"""Recycle Bin for the sandbox (moto has none): retention rules and what they keep.

Rules (rest-json ``rbin`` API: CreateRule, GetRule, ListRules, UpdateRule, DeleteRule)
live per (account, region). The EC2 side (``patches.recycle_bin``) moves a deregistered
image or a deleted snapshot into the bin when a rule for its resource type matches its
tags, and serves ListImagesInRecycleBin / RestoreImageFromRecycleBin and the snapshot
equivalents. Rule locks (LockRule / UnlockRule, Region-level rules only) keep a rule from
being modified or deleted until its unlock delay has passed. Not emulated: the
up-to-30-minute activation of an account's first rule (rules are ``available`` at once).

As on AWS: a tag-level rule keeps a resource that has *at least one* of its tag pairs (a
pair without a value matches any value of that key); a Region-level rule keeps every
resource of its type except those with one of its exclusion tags; the two kinds do not
mix in one rule; ListRules returns rule summaries (no tags, no status: GetRule has them)
and paginates with MaxResults (1..1000) + NextToken.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from typing import Any

RULES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
LOCK = threading.Lock()
UNITS = {"DAYS": dt.timedelta(days=1)}


class RbinError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _pair_matches(t: dict[str, Any], tags: dict[str, str]) -> bool:
    key = t["ResourceTagKey"]
    if key not in tags:
        return False
    return "ResourceTagValue" not in t or tags[key] == t["ResourceTagValue"]


def _tags_match(rule: dict[str, Any], tags: dict[str, str]) -> bool:
    """Tag-level: any one of the rule's pairs; Region-level: none of its exclusion pairs."""
    want = rule.get("ResourceTags") or []
    if want:
        return any(_pair_matches(t, tags) for t in want)
    excl = rule.get("ExcludeResourceTags") or []
    return not any(_pair_matches(t, tags) for t in excl)


def _pairs(tags: list[dict[str, Any]] | None) -> set[tuple[str, Any]]:
    return {(t["ResourceTagKey"], t.get("ResourceTagValue")) for t in tags or []}


def retention_for(
    account: str, region: str, resource_type: str, tags: dict[str, str]
) -> dt.timedelta | None:
    """The longest retention of the rules that keep this resource, or None."""
    with LOCK:
        rules = [
            r
            for r in RULES.get((account, region), {}).values()
            if r["ResourceType"] == resource_type
            and r["Status"] == "available"
            and _tags_match(r, tags)
        ]
    if not rules:
        return None
    return max(int(r["RetentionPeriod"]["RetentionPeriodValue"]) * UNITS["DAYS"] for r in rules)


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    return {
        k: r[k]
        for k in ("Identifier", "Description", "RetentionPeriod", "LockState", "RuleArn")
        if k in r
    }


def _list_rules(rules: dict[str, dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    if data.get("ResourceType") not in ("EC2_IMAGE", "EBS_SNAPSHOT", "EBS_VOLUME"):
        raise RbinError(400, "ValidationException", "ResourceType is required")
    out = [r for r in rules.values() if r["ResourceType"] == data["ResourceType"]]
    if data.get("ResourceTags"):
        want = _pairs(data["ResourceTags"])
        out = [r for r in out if want <= _pairs(r["ResourceTags"])]
    if data.get("ExcludeResourceTags"):
        want = _pairs(data["ExcludeResourceTags"])
        out = [r for r in out if want <= _pairs(r["ExcludeResourceTags"])]
    if data.get("LockState"):
        out = [r for r in out if r["LockState"] == data["LockState"]]
    size = int(data.get("MaxResults") or 1000)
    if not 1 <= size <= 1000:
        raise RbinError(400, "ValidationException", "MaxResults must be between 1 and 1000")
    token = data.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise RbinError(400, "ValidationException", f"invalid NextToken {token!r}") from None
    page: dict[str, Any] = {"Rules": [_summary(r) for r in out[start : start + size]]}
    if start + size < len(out):
        page["NextToken"] = str(start + size)
    return page


LOCKED = ("locked", "pending_unlock")


def _settle(rule: dict[str, Any]) -> None:
    """A rule whose unlock delay has passed is unlocked (its state is computed when read)."""
    end = rule.get("LockEndTime")
    if rule.get("LockState") == "pending_unlock" and end and time.time() >= end:
        rule["LockState"] = "unlocked"
        rule.pop("LockEndTime", None)


def _lock_rule(
    rules: dict[str, dict[str, Any]], rid: str, verb: str, data: dict[str, Any]
) -> dict[str, Any]:
    """LockRule / UnlockRule: Region-level rules only; an unlocked rule stays locked for its
    unlock delay (7-30 days), ``pending_unlock``, then becomes ``unlocked``."""
    rule = rules.get(rid)
    if rule is None:
        raise RbinError(404, "ResourceNotFoundException", f"rule {rid} not found")
    _settle(rule)
    if verb == "lock":
        if rule.get("ResourceTags"):
            raise RbinError(
                400, "ValidationException", "only Region-level retention rules can be locked"
            )
        delay = ((data.get("LockConfiguration") or {}).get("UnlockDelay")) or {}
        value = int(delay.get("UnlockDelayValue") or 0)
        if not 7 <= value <= 30 or delay.get("UnlockDelayUnit", "DAYS") != "DAYS":
            raise RbinError(
                400, "ValidationException", "UnlockDelayValue must be between 7 and 30 DAYS"
            )
        rule["LockConfiguration"] = {
            "UnlockDelay": {"UnlockDelayValue": value, "UnlockDelayUnit": "DAYS"}
        }
        rule["LockState"] = "locked"
        rule.pop("LockEndTime", None)
        return rule
    if rule.get("LockState") != "locked":
        raise RbinError(409, "ConflictException", f"rule {rid} is not locked")
    days = int(rule["LockConfiguration"]["UnlockDelay"]["UnlockDelayValue"])
    rule["LockState"] = "pending_unlock"
    rule["LockEndTime"] = time.time() + days * 86400  # epoch seconds, as rest-json sends them
    return rule


def handle(
    method: str, path: str, body: bytes, account: str, region: str
) -> tuple[int, dict[str, Any]]:
    data = json.loads(body or b"{}")
    key = (account, region)
    with LOCK:
        rules = RULES.setdefault(key, {})
        if method == "POST" and path == "/rules":
            if data.get("ResourceType") not in ("EC2_IMAGE", "EBS_SNAPSHOT"):
                raise RbinError(
                    400, "ValidationException", "ResourceType must be EC2_IMAGE or EBS_SNAPSHOT"
                )
            period = data.get("RetentionPeriod") or {}
            if not 1 <= int(period.get("RetentionPeriodValue", 0)) <= 3650:
                raise RbinError(
                    400, "ValidationException", "RetentionPeriodValue must be between 1 and 3650"
                )
            if period.get("RetentionPeriodUnit", "DAYS") != "DAYS":
                raise RbinError(400, "ValidationException", "RetentionPeriodUnit must be DAYS")
            if data.get("ResourceTags") and data.get("ExcludeResourceTags"):
                raise RbinError(
                    400,
                    "ValidationException",
                    "ExcludeResourceTags applies to Region-level rules only: a rule cannot have "
                    "both ResourceTags and ExcludeResourceTags",
                )
            for t in [*data.get("ResourceTags", []), *data.get("ExcludeResourceTags", [])]:
                if not t.get("ResourceTagKey"):
                    raise RbinError(400, "ValidationException", "ResourceTagKey is required")
            rid = uuid.uuid4().hex[:11]
            rule = {
                "Identifier": rid,
                "Description": data.get("Description", ""),
                "RetentionPeriod": period,
                "ResourceType": data["ResourceType"],
                "ResourceTags": data.get("ResourceTags", []),
                "ExcludeResourceTags": data.get("ExcludeResourceTags", []),
                "Status": "available",
                "LockState": "unlocked",
                "Tags": data.get("Tags", []),
                "RuleArn": f"arn:aws:rbin:{region}:{account}:rule/{rid}",
            }
            rules[rid] = rule
            return 201, rule
        if method == "POST" and path == "/list-rules":
            return 200, _list_rules(rules, data)
        m = re.match(r"^/rules/([^/]+)/(lock|unlock)$", path)
        if m and method == "PATCH":
            return 200, _lock_rule(rules, m.group(1), m.group(2), data)
        m = re.match(r"^/rules/([^/]+)$", path)
        if m:
            found = rules.get(m.group(1))
            if found is None:
                raise RbinError(404, "ResourceNotFoundException", f"rule {m.group(1)} not found")
            rule = found
            _settle(rule)
            if method == "GET":
                return 200, rule
            if method in ("DELETE", "PATCH") and rule.get("LockState") in LOCKED:
                raise RbinError(
                    409,
                    "ConflictException",
                    f"rule {rule['Identifier']} is {rule['LockState']}: it cannot be modified or "
                    "deleted until its unlock delay has passed",
                )
            if method == "DELETE":
                del rules[m.group(1)]
                return 204, {}
            if method == "PATCH":
                for k in ("RetentionPeriod", "Description", "ResourceTags", "ExcludeResourceTags"):
                    if k in data:
                        rule[k] = data[k]
                return 200, rule
    raise RbinError(404, "ResourceNotFoundException", f"no rbin operation {method} {path}")
