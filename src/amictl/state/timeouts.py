"""How long amictl waits for a PostgreSQL state store that stops answering (docs/team.md).

* ``AMICTL_LOCK_CHECK_TIMEOUT`` (seconds, default 10): an apply's check that its session
  still holds its locks, unanswered for this long, counts as a lost lock: the apply stops as
  on SIGTERM (``amictl.state.locks``).
* ``AMICTL_JOURNAL_TIMEOUT`` (seconds, default 30): the statement and lock timeout of each
  journal write (``amictl.state.chain``); a write that times out stops the apply the same way.
"""

from __future__ import annotations

import os

from ..errors import StateError

LOCK_CHECK_ENV = "AMICTL_LOCK_CHECK_TIMEOUT"
LOCK_CHECK_DEFAULT = 10.0
JOURNAL_ENV = "AMICTL_JOURNAL_TIMEOUT"
JOURNAL_DEFAULT = 30.0


def seconds(name: str, default: float) -> float:
    """A positive number of seconds (at most a day) from the environment; a bad value is a
    StateError naming the variable."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise StateError(
            f"{name}={raw!r} is not a number of seconds (more than 0, at most 86400)",
            hint=f"e.g. {name}={int(default)}",
        )
    return value


def lock_check() -> float:
    return seconds(LOCK_CHECK_ENV, LOCK_CHECK_DEFAULT)


def journal() -> float:
    return seconds(JOURNAL_ENV, JOURNAL_DEFAULT)
