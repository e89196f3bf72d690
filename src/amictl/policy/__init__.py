"""Lifecycle policies: the language (schema, parsing) and the planner.

The names are loaded on first use (PEP 562), so that importing the policy's data model
(``amictl.policy.model``) does not import the planner and what it stands on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Policy
    from .parse import load_policy, parse_policy_text
    from .planner import plan

__all__ = ["Policy", "load_policy", "parse_policy_text", "plan"]


def __getattr__(name: str) -> Any:
    if name == "Policy":
        from .model import Policy

        return Policy
    if name in ("load_policy", "parse_policy_text"):
        from . import parse

        return getattr(parse, name)
    if name == "plan":
        from .planner import plan

        return plan
    raise AttributeError(name)
