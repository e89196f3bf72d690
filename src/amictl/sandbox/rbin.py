"""Recycle Bin for the sandbox (moto has none): retention rules and what they keep.

Rules (rest-json ``rbin`` API: CreateRule, GetRule, ListRules, UpdateRule, DeleteRule)
live per (account, region). The EC2 side (``patches.recycle_bin``) moves a deregistered
image or a deleted snapshot into the bin when a rule for its resource type matches its
tags, and serves ListImagesInRecycleBin / RestoreImageFromRecycleBin and the snapshot
equivalents. Rule locks are not emulated (LockState is always ``unlocked``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from typing import Any

RULES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
LOCK = threading.Lock()
UNITS = {"DAYS": dt.timedelta(days=1)}


class RbinError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _tags_match(rule: dict[str, Any], tags: dict[str, str]) -> bool:
    want = rule.get("ResourceTags") or []
    if want and not all(
        tags.get(t["ResourceTagKey"]) == t.get("ResourceTagValue", tags.get(t["ResourceTagKey"]))
        for t in want
    ):
        return False
    excl = rule.get("ExcludeResourceTags") or []
    return not any(
        t["ResourceTagKey"] in tags
        and tags[t["ResourceTagKey"]] == t.get("ResourceTagValue", tags[t["ResourceTagKey"]])
        for t in excl
    )


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
            out = [r for r in rules.values() if r["ResourceType"] == data.get("ResourceType")]
            if data.get("ResourceTags"):
                want = {
                    (t["ResourceTagKey"], t.get("ResourceTagValue")) for t in data["ResourceTags"]
                }
                out = [
                    r
                    for r in out
                    if want
                    <= {(t["ResourceTagKey"], t.get("ResourceTagValue")) for t in r["ResourceTags"]}
                ]
            return 200, {"Rules": [_summary(r) for r in out]}
        m = re.match(r"^/rules/([^/]+)$", path)
        if m:
            found = rules.get(m.group(1))
            if found is None:
                raise RbinError(404, "ResourceNotFoundException", f"rule {m.group(1)} not found")
            rule = found
            if method == "GET":
                return 200, rule
            if method == "DELETE":
                del rules[m.group(1)]
                return 204, {}
            if method == "PATCH":
                for k in ("RetentionPeriod", "Description", "ResourceTags", "ExcludeResourceTags"):
                    if k in data:
                        rule[k] = data[k]
                return 200, rule
    raise RbinError(404, "ResourceNotFoundException", f"no rbin operation {method} {path}")
