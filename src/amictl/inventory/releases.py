"""A channel's release history, read from its SSM parameter's history.

Every value a channel parameter took is in ``GetParameterHistory`` (SSM keeps the last
100 versions). amictl reads it as a stack of releases: a promotion (or any write that
is not an amictl rollback, such as a hand-made ``put-parameter``) pushes its value; an
amictl rollback (its description says ``rollback to``) pops back to the value it
restored. The top is the current value; the values below it are the rollback targets,
newest first: ``rollback`` walks them one step per call, and retirement keeps the
first ``keep.channel_history`` of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..model import Reference

ROLLBACK_MARK = ": rollback to "
PROMOTE_PREFIX = "amictl channel "


def describe_promotion(family: str, channel: str, version: str) -> str:
    return f"{PROMOTE_PREFIX}{channel} of {family}: {version}"[:1024]


def describe_rollback(family: str, channel: str, version: str) -> str:
    return f"{PROMOTE_PREFIX}{channel} of {family}{ROLLBACK_MARK}{version}"[:1024]


def is_rollback(description: str | None) -> bool:
    d = description or ""
    return d.startswith(PROMOTE_PREFIX) and ROLLBACK_MARK in d


def release_stack(history: Iterable[Mapping[str, Any]]) -> list[str]:
    """The stack of releases (oldest first, the current value last) from the parameter's
    history entries (``value`` and ``description``, oldest first)."""
    stack: list[str] = []
    for h in history:
        value = str(h.get("value") or "")
        if not value:
            continue
        if is_rollback(h.get("description")):
            if value in stack:
                last = len(stack) - 1 - stack[::-1].index(value)
                del stack[last + 1 :]
            else:
                stack.append(value)  # rolled back to a value the history no longer holds
            continue
        if not stack or stack[-1] != value:
            stack.append(value)
    return stack


def rollback_targets(history: Iterable[Mapping[str, Any]]) -> list[str]:
    """The values a rollback may return to, newest first (one step back first).
    A value equal to the current one is not a step back and is skipped."""
    stack = release_stack(history)
    if not stack:
        return []
    current = stack[-1]
    out: list[str] = []
    for v in reversed(stack[:-1]):
        if v != current and v not in out:
            out.append(v)
    return out


def history_references(
    name: str,
    family: str,
    channel: str,
    history: Iterable[Mapping[str, Any]],
    account: str,
    region: str,
    source: str = "",
) -> list[Reference]:
    """One ``channel-history`` reference per rollback target of the channel parameter
    ``name``, its id ``<parameter>#<steps back>`` (``keep.decide.history_depth`` reads it);
    ``source`` says where the history came from when it is not SSM's own."""
    out = []
    where = f"{name}, {source}" if source else name
    for steps, value in enumerate(rollback_targets(history), 1):
        if value.startswith("ami-"):
            out.append(
                Reference(
                    "channel-history",
                    f"{name}#{steps}",
                    f"channel {channel} of family {family} held it {steps} "
                    f"release{'s' if steps > 1 else ''} ago ({where})",
                    value,
                    account,
                    region,
                )
            )
    return out
