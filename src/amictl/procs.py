"""Whether a process is alive (used by the sandbox's pid file and the apply lock), and
the host name that apply runs and locks record."""

from __future__ import annotations

import os
import socket

HOST_MAX = 256


def hostname() -> str:
    """This host's name as locks and apply runs record it; ``AMICTL_HOSTNAME`` overrides it
    (e.g. a CI runner's stable name, or tests that play two hosts on one machine)."""
    # at most what the state store's host columns hold (PostgreSQL enforces their length)
    return (os.environ.get("AMICTL_HOSTNAME") or socket.gethostname())[:HOST_MAX]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split(") ", 1)[1].startswith("Z"):
                return False
    except OSError:
        pass
    return True
