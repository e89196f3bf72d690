"""The audit's registry: every check with its id, severity, title, fix hint and IAM permissions.

A check is a pure function of an :class:`AuditContext` (the inventory, the live state of
each (account, region) that the inventory does not hold, and the audit's options) that
yields findings. ``amictl audit`` runs every registered check; ``amictl iam-policy audit``
is the union of the checks' permissions and the inventory's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..conventions import Conventions
from ..model import Inventory
from ..policy.model import Policy
from ..recyclebin import Coverage

SEVERITIES = ("info", "low", "medium", "high", "critical")
"""Lowest to highest; ``--fail-on LEVEL`` fails on a finding of that level or above."""


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    title: str
    account: str
    region: str
    resource: str  # an image id, a snapshot id, or "account/region" for a region setting
    name: str
    detail: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RegionState:
    """What the audit reads live per (account, region), beside the inventory."""

    account: str
    region: str
    block_public_access: str | None = None  # block-new-sharing | unblocked | None: unknown
    recycle_bin: Coverage | None = None
    errors: list[str] = field(default_factory=list)
    persona_roles: list[Any] | None = None  # issue 21: read once per account (first region)


@dataclass
class AuditOptions:
    trusted: tuple[str, ...] = ()  # account ids, organization / OU ARNs or o-... ids
    max_channel_age: dt.timedelta = dt.timedelta(days=180)
    recent: dt.timedelta = dt.timedelta(days=30)
    conventions: Conventions | None = None
    # audit --policy: the rules that adopt managed images (managed-overlap) and the retain
    # rules the retention checks use
    policy: Policy | None = None
    unnoticed: list[dict[str, Any]] | None = None  # issue 29: journal rows, from the state store
    # The persona's policy by name (``amictl.personas.policies.policy``, passed in by the
    # command: the policies are derived from iam-policy's registry, which reads the audit's).
    persona_policy: Callable[[str], dict[str, Any]] | None = None


@dataclass
class AuditContext:
    inv: Inventory
    now: dt.datetime
    regions: list[RegionState]
    options: AuditOptions


@dataclass(frozen=True)
class Check:
    id: str
    severity: str
    title: str
    fix: str  # a format string: {resource} {account} {region} {name} {family} ...
    permissions: frozenset[str]
    description: str
    fn: Callable[[AuditContext, Check], Iterable[Finding]]

    def finding(
        self, account: str, region: str, resource: str, detail: str, name: str = "", **fmt: Any
    ) -> Finding:
        hint = self.fix.format(resource=resource, account=account, region=region, **fmt)
        return Finding(
            self.id, self.severity, self.title, account, region, resource, name, detail, hint
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "title": self.title,
            "description": self.description,
            "fix": self.fix,
            "permissions": sorted(self.permissions),
        }


CHECKS: dict[str, Check] = {}


def check(
    id: str, severity: str, title: str, fix: str, permissions: Iterable[str], description: str
) -> Callable[[Callable[[AuditContext, Check], Iterable[Finding]]], Check]:
    """Register a check (its id must be new; its severity one of SEVERITIES)."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")

    def deco(fn: Callable[[AuditContext, Check], Iterable[Finding]]) -> Check:
        if id in CHECKS:
            raise ValueError(f"audit check {id!r} registered twice")
        CHECKS[id] = Check(id, severity, title, fix, frozenset(permissions), description, fn)
        return CHECKS[id]

    return deco


def run_checks(ctx: AuditContext, only: Iterable[str] | None = None) -> list[Finding]:
    """Every finding of the registered checks (or of ``only``), highest severity first."""
    wanted = set(only) if only is not None else set(CHECKS)
    out: list[Finding] = []
    for c in CHECKS.values():
        if c.id in wanted:
            out.extend(c.fn(ctx, c))
    out.sort(key=lambda f: (-rank(f.severity), f.check, f.account, f.region, f.resource))
    return out
