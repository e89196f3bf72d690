"""Run the audit: the inventory, the live per-region settings, then every registered check."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..aws.session import Connector, Target
from ..distribute import block_public_access_state
from ..errors import AmictlError
from ..inventory.scan import scan
from ..model import Inventory, iso
from ..recyclebin import coverage
from .registry import (
    CHECKS,
    SEVERITIES,
    AuditContext,
    AuditOptions,
    Finding,
    RegionState,
    rank,
    run_checks,
)


def region_state(conn: Connector, target: Target) -> RegionState:
    """Image Block Public Access and Recycle Bin coverage of one (account, region)."""
    rs = RegionState(target.account, target.region)
    try:
        rs.block_public_access = block_public_access_state(conn, target)
    except AmictlError as exc:
        rs.errors.append(f"Image Block Public Access unknown: {exc.message}")
    rs.recycle_bin = coverage(conn, target)  # never raises: unknown parts carry the error
    for part in (rs.recycle_bin.images, rs.recycle_bin.snapshots):
        if part.recoverable is None:
            rs.errors.append(f"Recycle Bin: {part.describe()}")
    return rs


def region_states(conn: Connector, targets: list[Target]) -> list[RegionState]:
    with ThreadPoolExecutor(max_workers=min(8, max(len(targets), 1))) as pool:
        states = list(pool.map(lambda t: region_state(conn, t), targets))
    from .persona_check import read_roles

    read_roles(conn, targets, states)  # IAM is global: once per account
    return states


@dataclass
class AuditResult:
    findings: list[Finding]
    regions: list[RegionState]
    inventory: Inventory
    now: dt.datetime
    incomplete: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(f.severity for f in self.findings)
        return {s: c.get(s, 0) for s in reversed(SEVERITIES)}

    def at_or_above(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if rank(f.severity) >= rank(severity)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "audited_at": iso(self.now),
            "findings": [f.to_dict() for f in self.findings],
            "summary": self.counts(),
            "checks": [c.to_dict() for c in CHECKS.values()],
            "regions": [
                {
                    "account": r.account,
                    "region": r.region,
                    "image_block_public_access": r.block_public_access,
                    "recycle_bin": r.recycle_bin.describe() if r.recycle_bin else None,
                    "errors": r.errors,
                }
                for r in self.regions
            ],
            "incomplete": self.incomplete,
        }


def audit(
    conn: Connector,
    targets: list[Target],
    options: AuditOptions,
    inv: Inventory | None = None,
    now: dt.datetime | None = None,
) -> AuditResult:
    """Scan (unless given an inventory), read each region's settings, run every check."""
    inv = inv if inv is not None else scan(conn, targets)
    now = now or dt.datetime.now(dt.UTC)
    regions = region_states(conn, targets)
    findings = run_checks(AuditContext(inv, now, regions, options))
    incomplete = [
        f"{s.account}/{s.region}: {s.kind} not read ({s.error_code})"
        for s in inv.incomplete_slices()
    ]
    incomplete += [f"{r.account}/{r.region}: {e}" for r in regions for e in r.errors]
    return AuditResult(findings, regions, inv, now, incomplete)
