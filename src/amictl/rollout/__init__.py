"""Roll a family's channel out to the Auto Scaling groups that follow it (issue 21), and
say what runs behind its channel (``drift``)."""

from .plan import RolloutPlan, make_plan, parse_percent
from .run import PERMISSIONS, Options, Outcome, execute, resumable, save_plan

__all__ = [
    "PERMISSIONS",
    "Options",
    "Outcome",
    "RolloutPlan",
    "execute",
    "make_plan",
    "parse_percent",
    "resumable",
    "save_plan",
]
