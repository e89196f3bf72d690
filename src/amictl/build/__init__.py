"""Making new image versions: ``amictl create`` (and later ``bake``)."""

from .create import (
    CREATE_PERMISSIONS,
    Created,
    from_instance,
    from_snapshots,
    next_version,
    wait_available,
)

__all__ = [
    "CREATE_PERMISSIONS",
    "Created",
    "from_instance",
    "from_snapshots",
    "next_version",
    "wait_available",
]
