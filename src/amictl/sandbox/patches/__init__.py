"""The amictl layer over moto, by AWS area: behaviours moto gets wrong or lacks, as AWS
documents them (docs/sandbox.md). Each area module registers its functions with
``helpers.patch``; ``apply_all`` applies every one once in the sandbox process.

Nothing here is imported by amictl itself outside the sandbox process.
"""

from __future__ import annotations

from .helpers import (
    FAST_XML,
    PATCHES,
    RUN_COMMAND_OUTCOMES,
    SEEDING,
    _applied_lock,
    iso_ms,
    new_snapshot,
    now,
    parse_time,
)

__all__ = [
    "FAST_XML",
    "PATCHES",
    "RUN_COMMAND_OUTCOMES",
    "SEEDING",
    "apply_all",
    "iso_ms",
    "new_snapshot",
    "now",
    "parse_time",
]
_state = {"applied": False}

# EC2's core image and snapshot behaviours register first, then the images area (their
# wrappers of the same moto methods nest in this order; see apply_all).
from . import ec2  # noqa: E402, F401, I001
from . import images  # noqa: E402, F401, I001


def apply_all() -> list[str]:
    """Apply every patch once (idempotent), in registration order; returns their names.

    Order matters where two areas wrap the same moto method: EC2's core behaviours
    (``ec2``) register first, when the package is imported, then ``images`` and the rest."""
    from . import (  # noqa: F401  (each registers its @patch functions)
        batch,
        catalog,
        cross_account,
        dispatch,
        emr,
        findings,
        governance,
        iam,
        instance_store,
        instances,
        launch_templates,
        org,  # the control API's organizations (no @patch)
        refresh,
        retention,
        sharing,
        spot,
        ssm,
        stacks,
        usage,
        volumes,
    )

    with _applied_lock:
        if not _state["applied"]:
            for _name, _doc, fn in PATCHES:
                fn()
            _state["applied"] = True
    return [name for name, _doc, _fn in PATCHES]
