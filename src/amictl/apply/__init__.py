"""Apply: journaled, re-checked, resumable execution of reviewed plans."""

from .executor import ApplyOptions, ApplyResult, apply_plan

__all__ = ["ApplyOptions", "ApplyResult", "apply_plan"]
