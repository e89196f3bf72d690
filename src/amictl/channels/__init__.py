"""Versions of an image family and release channels (``/amictl/channels/<family>/<channel>``)."""

from .gates import Gate, load_gates
from .names import CHANNEL_PREFIX, parameter_name
from .ops import PERMISSIONS, channel_history, list_channels, promote, rollback, versions
from .record import history, record

__all__ = [
    "CHANNEL_PREFIX",
    "PERMISSIONS",
    "Gate",
    "channel_history",
    "history",
    "list_channels",
    "load_gates",
    "parameter_name",
    "promote",
    "record",
    "rollback",
    "versions",
]
