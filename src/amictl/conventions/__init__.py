"""Naming and tagging conventions for images: ``amictl lint`` (issue 9, item 7)."""

from __future__ import annotations

from .lint import (
    PERMISSIONS,
    FixPlan,
    FixResult,
    Violation,
    apply_fixes,
    check,
    check_image,
    plan_fixes,
)
from .model import DEFAULT_FILE, Conventions, load, parse

__all__ = [
    "DEFAULT_FILE",
    "PERMISSIONS",
    "Conventions",
    "FixPlan",
    "FixResult",
    "Violation",
    "apply_fixes",
    "check",
    "check_image",
    "load",
    "parse",
    "plan_fixes",
]
