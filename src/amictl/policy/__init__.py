"""Lifecycle policies: the language (schema, parsing) and the planner."""

from .model import Policy
from .parse import load_policy, parse_policy_text
from .planner import plan

__all__ = ["Policy", "load_policy", "parse_policy_text", "plan"]
