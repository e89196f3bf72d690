"""Where amictl keeps its files (cli.md: ``$XDG_STATE_HOME/amictl/``)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    path = Path(base) / "amictl"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_state_url() -> str:
    return f"sqlite:///{state_dir() / 'state.db'}"
