"""amictl's own tag names and values, defined once (bake, gates, plans, launch and docs).

Every tag whose key starts with ``amictl:`` is amictl's: users, recipes, ``create
--tag`` and ``lint --fix`` may not set them (``check_user_tags``), so a tag such as
``amictl:bake-status=tested`` means what amictl wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import InputError

RESERVED_TAG_PREFIX = "amictl:"

# Retirement marks (written by `apply`, read by plans and apply's live decision).
MARK_TAG = "amictl:retire-since"
BY_TAG = "amictl:retired-by"

# Bake status of an image: building -> tested (or built, when the recipe has no tests),
# or failed / abandoned.
BAKE_STATUS_TAG = "amictl:bake-status"
BAKE_BUILDING = "building"
BAKE_TESTED = "tested"
BAKE_BUILT = "built"
BAKE_FAILED = "failed"
BAKE_ABANDONED = "abandoned"
BAKE_UNUSABLE = (BAKE_BUILDING, BAKE_FAILED, BAKE_ABANDONED)


def bake_status(tags: Mapping[str, str]) -> str | None:
    return tags.get(BAKE_STATUS_TAG)


def bake_failed(tags: Mapping[str, str]) -> bool:
    """The image's bake failed its tests or was abandoned."""
    return tags.get(BAKE_STATUS_TAG) in (BAKE_FAILED, BAKE_ABANDONED)


def bake_unusable(tags: Mapping[str, str]) -> bool:
    """Not a usable version: still building, failed or abandoned. Such an image is never
    promoted, launched from a channel or version (unless forced), nor counted among the
    newest N of its family."""
    return tags.get(BAKE_STATUS_TAG) in BAKE_UNUSABLE


def is_reserved(key: str) -> bool:
    return key.strip().lower().startswith(RESERVED_TAG_PREFIX)


def check_user_tags(keys: Iterable[str], where: str) -> None:
    """Refuse (exit 2) tag keys in amictl's reserved namespace."""
    bad = sorted(k for k in keys if is_reserved(k))
    if bad:
        raise InputError(
            f"tag key{'s' if len(bad) > 1 else ''} {', '.join(bad)}: the {RESERVED_TAG_PREFIX} "
            "namespace is reserved for amictl",
            key=where,
            hint="use another key; amictl writes its own amictl: tags",
        )
