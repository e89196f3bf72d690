"""Public base images (issue 9, item 3): a registry of named bases and ``find``."""

from .bases import BASES, OWNERS, Base
from .find import PERMISSIONS, Found, catalog_rows, find

__all__ = ["BASES", "OWNERS", "PERMISSIONS", "Base", "Found", "catalog_rows", "find"]
