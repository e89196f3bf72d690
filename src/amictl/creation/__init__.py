"""Making images: `create` (from an instance, from snapshots), `bake` (recipes, runs, their journal), `stale`."""

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
