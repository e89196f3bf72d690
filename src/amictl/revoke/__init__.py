"""``amictl revoke`` / ``unrevoke``: pull a bad version, and everything built or copied
from it, everywhere at once (issue 28)."""

from .plan import RevokePlan, make_plan
from .run import PERMISSIONS, check_not_undone, execute, load_plan, save_plan, steps, unrevoke
from .tree import derived, roots_of, tree_rows

__all__ = [
    "PERMISSIONS",
    "RevokePlan",
    "check_not_undone",
    "derived",
    "execute",
    "load_plan",
    "make_plan",
    "roots_of",
    "save_plan",
    "steps",
    "tree_rows",
    "unrevoke",
]
