"""The later demo steps (plan, explain, apply), added as those capabilities land."""

from __future__ import annotations

from typing import Any


def run_lifecycle(ctx: Any) -> None:
    return None
