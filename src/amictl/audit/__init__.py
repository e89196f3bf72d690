"""Security and compliance audit of images (``amictl audit``): registered checks, findings
with severity and a fix hint. A library: it never prints and never exits."""

from __future__ import annotations

from . import checks as _checks  # noqa: F401  (registers the checks)
from . import managed_check as _managed_check  # noqa: F401  (issue 26)
from . import persona_check as _persona_check  # noqa: F401  (issue 21)
from . import retention_check as _retention_check  # noqa: F401  (issue 29)
from .checks import default_conventions, trusted
from .registry import (
    CHECKS,
    SEVERITIES,
    AuditContext,
    AuditOptions,
    Check,
    Finding,
    RegionState,
    rank,
    run_checks,
)
from .run import AuditResult, audit, region_states

PERMISSIONS: frozenset[str] = frozenset().union(*(c.permissions for c in CHECKS.values()))
"""IAM actions of every check (``iam-policy audit`` adds the inventory's collectors)."""

__all__ = [
    "CHECKS",
    "PERMISSIONS",
    "SEVERITIES",
    "AuditContext",
    "AuditOptions",
    "AuditResult",
    "Check",
    "Finding",
    "RegionState",
    "audit",
    "default_conventions",
    "rank",
    "region_states",
    "run_checks",
    "trusted",
]
