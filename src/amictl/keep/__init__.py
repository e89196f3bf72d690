"""Every reason to keep an image or a snapshot, decided in one place.

``plan`` calls :func:`assess` on the inventory; ``apply`` calls the same function,
before each destructive action, on a live view of the action's account and region
read just then. There is no second list of checks.
"""

from .decide import (
    DEFAULT_HOLDS,
    Assessment,
    Eval,
    ImageDecision,
    assess,
    effective_holds,
    image_decision,
    released_holds,
    snapshot_holds,
)
from .snapshots import orphan_candidates, snapshot_keep_reasons, snapshot_origin

__all__ = [
    "DEFAULT_HOLDS",
    "Assessment",
    "Eval",
    "ImageDecision",
    "assess",
    "effective_holds",
    "released_holds",
    "image_decision",
    "orphan_candidates",
    "snapshot_holds",
    "snapshot_keep_reasons",
    "snapshot_origin",
]
