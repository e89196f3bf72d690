"""The state store: inventory runs, the apply journal and locks (SQLAlchemy Core)."""

from .store import Store

__all__ = ["Store"]
