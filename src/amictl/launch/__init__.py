"""Launch instances from an image named by id, FAMILY@VERSION or FAMILY@CHANNEL."""

from .resolve import CHANNEL_PARAMETER, Resolved, check_launchable, resolve
from .run import IMAGE_TAG, PERMISSIONS, launch, parse_tags

__all__ = [
    "CHANNEL_PARAMETER",
    "IMAGE_TAG",
    "PERMISSIONS",
    "Resolved",
    "check_launchable",
    "launch",
    "parse_tags",
    "resolve",
]
