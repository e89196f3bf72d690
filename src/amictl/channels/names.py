"""Channel parameter names: ``/amictl/channels/<family>/<channel>``, one per region."""

from __future__ import annotations

import re

from ..errors import InputError
from ..inventory.collectors import CHANNEL_PREFIX, channel_of_parameter

__all__ = ["CHANNEL_PREFIX", "channel_of_parameter", "check_name", "parameter_name"]

# SSM allows a-zA-Z0-9_.- in each part of a hierarchical name; "/" separates the parts.
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def check_name(value: str, what: str) -> str:
    """A family or channel name usable as one level of an SSM parameter name."""
    if not NAME_RE.match(value or ""):
        raise InputError(
            f"{value!r} is not a valid {what} name",
            key=what,
            hint="letters, digits, '_', '.' and '-' only (it becomes part of an SSM parameter name)",
        )
    return value


def parameter_name(family: str, channel: str) -> str:
    return f"{CHANNEL_PREFIX}{check_name(family, 'family')}/{check_name(channel, 'channel')}"
