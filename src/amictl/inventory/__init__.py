"""Inventory: every image, snapshot and reference, complete or loudly not."""

from .scan import scan

__all__ = ["scan"]
