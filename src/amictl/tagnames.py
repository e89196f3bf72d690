"""amictl's own tag names and values, defined once (bake, gates, plans, launch and docs).

Tags whose key starts with :data:`RESERVED_TAG_PREFIX` are written by amictl (retirement
marks, who created an image, its lineage, a bake's status, ...) and read back by its
safety checks, so a user may not set them by hand: :func:`check_user_tags` refuses them
(exit 2) for recipes, ``create --tag``, ``tag`` and ``lint --fix``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import InputError

RESERVED_TAG_PREFIX = "amictl:"

# ---------------------------------------------------------------- families and versions
# An image's family and version as `create`, `bake` and `copy` write them (the default
# family rule reads them; the personas' IAM conditions name them), and the tag that makes
# a launch template follow a family's channel (`rollout`, `drift`, the releaser persona).
FAMILY_TAG = "family"
VERSION_TAG = "version"
TEMPLATE_FAMILY_TAG = "amictl:family"

# ---------------------------------------------------------------- retirement marks
# Written by `apply` (the first stage of a retirement), read by plans and apply's live
# decision: when the retirement started, and which policy owns it.
MARK_TAG = "amictl:retire-since"
BY_TAG = "amictl:retired-by"

# ---------------------------------------------------------------- the bake status
# One source for the tag a bake writes on its image and the values it takes; bake, the
# promotion gates, stale, cleanup, plans, launch and the docs all read these.

BAKE_STATUS_TAG = "amictl:bake-status"
BUILDING = "building"  # the image is being made (or its bake was killed before it ended)
TESTED = "tested"  # every test step passed on an instance of the new image
BUILT = "built"  # made by a recipe without tests
FAILED = "failed"  # a provision or test step failed, or the bake ended in an error
ABANDONED = "abandoned"  # the bake was interrupted, or `bake --cleanup` found it killed
BAKE_STATUSES = (BUILDING, TESTED, BUILT, FAILED, ABANDONED)
# statuses that are not a usable version of the family
UNUSABLE_BAKE_STATUSES = (BUILDING, FAILED, ABANDONED)


def bake_status(tags: Mapping[str, str]) -> str | None:
    """The bake status an image is tagged with (None: no bake made it)."""
    return tags.get(BAKE_STATUS_TAG)


def bake_failed(tags: Mapping[str, str]) -> bool:
    """The image's bake failed its steps or was abandoned: never a usable version."""
    return bake_status(tags) in (FAILED, ABANDONED)


def bake_unusable(tags: Mapping[str, str]) -> bool:
    """Not a usable version: still building, failed or abandoned. Such an image is never
    promoted, launched (unless forced) nor counted among the newest N of its family."""
    return bake_status(tags) in UNUSABLE_BAKE_STATUSES


# ---------------------------------------------------------------- revocation
# Written by `amictl revoke` on every image it revokes (the base and everything derived from
# it), removed by `amictl unrevoke`. `launch`, `promote`, `rollback`, `bake` (as a source)
# and `rollout` refuse an image carrying REVOKED_TAG, with its reason (revoked_reason).

REVOKED_TAG = "amictl:revoked"  # value: the reason given to `revoke --reason`
REVOKED_AT_TAG = "amictl:revoked-at"  # ISO time of the revocation
REVOKED_BY_TAG = "amictl:revoked-by"  # the caller's ARN
REVOKE_TAGS = (REVOKED_TAG, REVOKED_AT_TAG, REVOKED_BY_TAG)


def revoked_reason(tags: Mapping[str, str]) -> str | None:
    """Why the image is revoked, in one phrase (None: it is not)."""
    if REVOKED_TAG not in tags:
        return None
    at, by = tags.get(REVOKED_AT_TAG), tags.get(REVOKED_BY_TAG)
    extra = ", ".join(x for x in (f"at {at}" if at else "", f"by {by}" if by else "") if x)
    return f"revoked ({REVOKED_TAG}): {tags[REVOKED_TAG]!r}" + (f" ({extra})" if extra else "")


def is_reserved(key: str) -> bool:
    return key.strip().lower().startswith(RESERVED_TAG_PREFIX)


def check_user_tags(keys: Iterable[str], where: str) -> None:
    """Refuse (exit 2) tag keys in amictl's reserved namespace; ``where`` names the input
    (an option such as ``--tag``, or ``file.yaml:12``). A mapping's keys are checked."""
    bad = sorted(k for k in keys if is_reserved(k))
    if bad:
        raise InputError(
            f"tag key{'s' if len(bad) > 1 else ''} {', '.join(repr(k) for k in bad)}: keys "
            f"starting with {RESERVED_TAG_PREFIX!r} are reserved for amictl's own tags",
            key=where,
            hint=f"choose a key without the {RESERVED_TAG_PREFIX!r} prefix",
        )
