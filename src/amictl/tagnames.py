"""Tag names amictl reserves for itself.

Tags whose key starts with :data:`RESERVED_TAG_PREFIX` are written by amictl (who created an
image, its lineage, a bake's status, ...) and read back by its safety checks, so a user may
not set them by hand: :func:`check_user_tags` refuses them (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import InputError

RESERVED_TAG_PREFIX = "amictl:"


def check_user_tags(tags: Mapping[str, str], where: str) -> None:
    """Refuse a user-given tag in amictl's reserved namespace; ``where`` names the input
    (an option such as ``--tag``, or ``file.yaml:12``) for the error."""
    for key in tags:
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            raise InputError(
                f"tag {key!r}: keys starting with {RESERVED_TAG_PREFIX!r} are reserved for "
                "amictl's own tags",
                key=where,
                hint=f"choose a key without the {RESERVED_TAG_PREFIX!r} prefix",
            )
