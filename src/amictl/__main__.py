"""``python -m amictl``: the same command as the ``amictl`` script (same entry point, so the
same error handling and exit codes)."""

from __future__ import annotations

from .cli.main import main

if __name__ == "__main__":
    main()
