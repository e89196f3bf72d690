"""Where amictl keeps its files (cli.md: ``$XDG_STATE_HOME/amictl/``)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import StateError


def state_dir() -> Path:
    """``$XDG_STATE_HOME/amictl`` (default ``~/.local/state/amictl``), created if missing.

    A directory that cannot be created (no permission, a file in the way) is a StateError
    that names it and what to do.
    """
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    path = Path(base) / "amictl"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, FileExistsError | NotADirectoryError):
            reason += " (a file is in the way of the directory)"
        raise StateError(
            f"cannot create the state directory {path}: {reason}",
            hint="check the permissions of that path or set XDG_STATE_HOME, "
            "or pass --state / AMICTL_STATE (e.g. sqlite:////some/writable/dir/state.db)",
        ) from None
    return path


def default_state_url() -> str:
    return f"sqlite:///{state_dir() / 'state.db'}"
