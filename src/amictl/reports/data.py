"""What the HTML report shows, as plain data: built from the inventory, the cost report,
the audit, the latest plan and the journal (no AWS calls here)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..findings import summary as scan_summary
from ..inventory import views
from ..model import Inventory, iso
from ..state.store import Store
from ..tagnames import REVOKED_AT_TAG, REVOKED_TAG
from ..yamlpos import read_text


@dataclass
class ReportData:
    title: str
    generated_at: str
    inventory: dict[str, Any]
    summary: dict[str, Any]
    images: list[dict[str, Any]]
    families: list[dict[str, Any]]
    cost: dict[str, Any]
    history: list[dict[str, Any]]
    audit: dict[str, Any] | None
    plan: dict[str, Any] | None
    plan_source: str | None
    journal: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)  # issue 21: rollout.drift groups


def latest_stored_plan(store: Store) -> tuple[dict[str, Any], str] | None:
    """The newest plan the state store keeps (apply stores every plan it runs)."""
    found = store.latest_plan()
    if found is None:
        return None
    body, checksum, stored_at = found
    return body, f"state store, plan {checksum[:12]} (stored {stored_at})"


def load_plan_file(path: str) -> dict[str, Any]:
    text = read_text(path, "plan file")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"not a JSON plan: {exc}", file=path, key="--plan") from None
    if not isinstance(data, dict) or not isinstance(data.get("actions", []), list):
        raise InputError("not an amictl plan (no actions list)", file=path, key="--plan")
    return data


def _families(
    inv: Inventory, rows: dict[str, dict[str, Any]], now: dt.datetime
) -> list[dict[str, Any]]:
    regions = {r for (_a, r, _f) in inv.families}
    accounts = {a for (a, _r, _f) in inv.families}
    out = []
    for (account, region, family), imgs in sorted(inv.families.items()):
        label = family
        if len(regions) > 1:
            label += f" ({region})"
        if len(accounts) > 1:
            label += f" [{account}]"
        versions = []
        for img in imgs:
            row = rows.get(img.image_id, {})
            src = inv.by_id.get(img.source_image_id or "")
            scan = scan_summary(img.scan_results, now)
            versions.append(
                {
                    "image_id": img.image_id,
                    "name": img.name,
                    "version": img.version,
                    "created_at": iso(img.created_at),
                    "age_days": row.get("age_days"),
                    "state": img.state,
                    "deprecated": row.get("deprecated", False),
                    "in_use": row.get("in_use", False),
                    "channels": [c.rstrip("/").rsplit("/", 1)[-1] for c in row.get("channels", [])],
                    "source_image_id": img.source_image_id,
                    "built_from": (
                        f"{src.name} ({src.version or src.image_id})"
                        if src
                        else img.source_image_id
                    ),
                    "monthly_cost_usd": row.get("monthly_cost_usd", 0.0),
                    # issue 28: `amictl revoke`'s tag (its reason) and Inspector's worst
                    # finding ("not scanned" / "no findings" / a severity and fix age)
                    "revoked": img.tags.get(REVOKED_TAG),
                    "revoked_at": img.tags.get(REVOKED_AT_TAG),
                    "severity": scan.worst if scan.scanned else None,
                    "findings": scan.text,
                }
            )
        out.append({"family": family, "label": label, "region": region, "versions": versions})
    return out


def scope_of(point: dict[str, Any]) -> str:
    """What a saved inventory covered, as a label: ``2 regions (eu-west-1, us-east-1)``."""
    regions = point.get("regions") or []
    accounts = point.get("accounts") or []
    label = f"{len(regions)} region{'s' if len(regions) != 1 else ''} ({', '.join(regions)})"
    if len(accounts) > 1:
        label += f", {len(accounts)} accounts"
    return label


def with_scopes(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history points, each with its ``scope`` label and whether the scope changed
    from the point before (``scope_changed``)."""
    out = []
    before = None
    for p in history:
        scope = scope_of(p)
        out.append({**p, "scope": scope, "scope_changed": before is not None and scope != before})
        before = scope
    return out


def journal_outcomes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per action (plan, action id) with its final status, oldest first: the
    journal writes ``intended`` before each AWS call and the result after; a reader wants
    the outcome. ``intended`` stays only for an action with nothing after it (in flight,
    or cut off by a crash: `apply --resume` finishes it); ``stopped`` is an action whose call
    a stop ended before AWS did it (resumed the same way)."""
    last: dict[tuple[Any, Any], dict[str, Any]] = {}
    first_at: dict[tuple[Any, Any], Any] = {}
    for r in rows:
        key = (r.get("plan_checksum"), r.get("action_id"))
        first_at.setdefault(key, r.get("at"))
        prev = last.get(key)
        row = dict(r)
        if prev is not None and not row.get("message"):
            row["message"] = prev.get("message")
        row["started_at"] = first_at[key]
        last[key] = row
    return sorted(last.values(), key=lambda r: (str(r.get("at") or ""), r.get("seq") or 0))


def audit_groups(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings grouped by check, worst severity first, then most findings: ``{check,
    severity, count, fix, findings}``."""
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    groups: dict[str, dict[str, Any]] = {}
    for f in findings:
        g = groups.setdefault(
            str(f.get("check")),
            {
                "check": f.get("check"),
                "severity": f.get("severity"),
                "fix": f.get("fix"),
                "findings": [],
            },
        )
        g["findings"].append(f)
        if order.get(str(f.get("severity")), 9) < order.get(str(g["severity"]), 9):
            g["severity"] = f.get("severity")
    for g in groups.values():
        g["count"] = len(g["findings"])
        fixes = {str(f.get("fix")) for f in g["findings"]}
        g["fix"] = g["fix"] if len(fixes) == 1 else None  # per finding, in its row
    return sorted(
        groups.values(),
        key=lambda g: (order.get(str(g["severity"]), 9), -g["count"], str(g["check"])),
    )


def build(
    inv: Inventory,
    cost: dict[str, Any],
    *,
    history: list[dict[str, Any]] | None = None,
    audit: dict[str, Any] | None = None,
    plan: dict[str, Any] | None = None,
    plan_source: str | None = None,
    journal: list[dict[str, Any]] | None = None,
    title: str = "amictl image report",
    now: dt.datetime | None = None,
) -> ReportData:
    now = now or dt.datetime.now(dt.UTC)
    images = views.list_images(inv, now)
    by_id = {r["image_id"]: r for r in images}
    families = _families(inv, by_id, now)
    states = Counter(r["state"] for r in images)
    t = cost["totals"]
    summary = {
        "images": len(images),
        "families": len({f["family"] for f in families}),
        "snapshots": t["snapshots"],
        "regions": len(inv.regions),
        "accounts": len(inv.accounts),
        "available": states.get("available", 0),
        "disabled": states.get("disabled", 0),
        "deprecated": sum(1 for r in images if r["deprecated"]),
        "shared": sum(1 for r in images if r["public"] or r["shared_with"]),
        "in_use": sum(1 for r in images if r["in_use"]),
        "full_size_usd": t["full_size_usd"],
        "estimate_usd": t["estimate_usd"],
        "orphaned_usd": cost["orphaned"]["full_size_usd"],
        "orphaned_snapshots": cost["orphaned"]["snapshots"],
        "unused_images": cost["unused_images"]["unused_images"],
        "unused_usd": cost["unused_images"]["full_size_usd"],
        "findings": audit["summary"] if audit else None,
    }
    return ReportData(
        title=title,
        generated_at=iso(now) or "",
        inventory={
            "scanned_at": iso(inv.scanned_at),
            "complete": inv.complete,
            "regions": inv.regions,
            "accounts": inv.accounts,
            "incomplete": [f"{s.account}/{s.region}/{s.kind}" for s in inv.incomplete_slices()],
        },
        summary=summary,
        images=images,
        families=families,
        cost=cost,
        history=with_scopes(history or []),
        audit=audit,
        plan=plan,
        plan_source=plan_source,
        journal=journal_outcomes(journal or []),
        drift=_drift(inv),
    )


def _drift(inv: Inventory) -> list[dict[str, Any]]:
    from ..rollout.drift import drift

    return drift(inv)
