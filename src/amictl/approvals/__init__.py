"""Second-person approvals of destructive plans (issue 29): the team's thresholds in the
state store, who planned each plan (recorded when ``plan --out`` signs it, never read from
the plan file), approvals per plan checksum, and the check apply makes."""

from .check import ApprovalStatus, live_status, require, require_for_single, status
from .config import ApprovalConfig, load_config, save_config
from .records import (
    Approval,
    ApprovalRefused,
    approvals_of,
    approve,
    note_planner,
    planner_of,
    record_planner,
)

__all__ = [
    "Approval",
    "ApprovalConfig",
    "ApprovalRefused",
    "ApprovalStatus",
    "approvals_of",
    "live_status",
    "approve",
    "load_config",
    "note_planner",
    "planner_of",
    "record_planner",
    "require",
    "require_for_single",
    "save_config",
    "status",
]
