"""Retention AWS enforces (issue 29): make the policy's ``retain`` rules true in the
account (snapshot locks, images stored to S3), bring a stored image back, find the gaps.
The reasons to keep they give are decided in :mod:`amictl.keep.retention`."""

from .enforce import (
    RESTORE_PERMISSIONS,
    RETAIN_PERMISSIONS,
    RetainStep,
    apply_steps,
    restore_image,
    retain_steps,
)

__all__ = [
    "RESTORE_PERMISSIONS",
    "RETAIN_PERMISSIONS",
    "RetainStep",
    "apply_steps",
    "restore_image",
    "retain_steps",
]
