"""Roll a family's channel out to the Auto Scaling groups that follow it (issue 21), and
say what runs behind its channel (``drift``)."""

from .journal import check_conflicts, public, refuse_unsafe, resumable, rollouts, save_plan
from .plan import RolloutPlan, make_plan, parse_percent
from .run import PERMISSIONS, Options, Outcome, execute

__all__ = [
    "PERMISSIONS",
    "Options",
    "Outcome",
    "RolloutPlan",
    "check_conflicts",
    "execute",
    "make_plan",
    "parse_percent",
    "public",
    "refuse_unsafe",
    "resumable",
    "rollouts",
    "save_plan",
]
