"""Every registered reference finder: importing this module loads EC2's own collectors and
every other service's (:mod:`amictl.inventory.launchers`), so ``COLLECTORS`` is whole.
Code that iterates the kinds (the scan, apply's live view, ``iam-policy``, the docs)
imports ``COLLECTORS`` from here, never from a module that holds only some of them."""

from __future__ import annotations

from . import collectors as _ec2  # noqa: F401 - registers EC2's, Auto Scaling's and SSM's kinds
from . import launchers as _launchers  # noqa: F401 - registers the other services' kinds
from .registry import COLLECTORS, CollectorSpec

__all__ = ["COLLECTORS", "CollectorSpec"]
