"""Developer tool: ``python -m amictl.state.migrations revision "add bakes"`` writes the next
revision file from the difference between ``store.py``'s metadata and a store at head."""

from __future__ import annotations

import sys

from ..schema import new_revision

if len(sys.argv) != 3 or sys.argv[1] != "revision":
    sys.exit('usage: python -m amictl.state.migrations revision "what the change adds"')
print(new_revision(sys.argv[2]))
