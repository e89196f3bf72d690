"""How AWS matches an Allowed AMIs ``ImageNames`` pattern on an AMI name: ``*`` (any run of
characters) and ``?`` (one character) are the only wildcards; every other character,
``[`` and ``]`` included, matches itself, case-sensitively, over the whole name.

The one matcher: amictl's evaluation of the criteria (``allowed.criterion_allows``) and the
sandbox's (``sandbox/patches/governance.py``) both call it. Imports nothing of amictl."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def image_name_matches(name: str, pattern: str) -> bool:
    """Whether the AMI ``name`` matches the ImageNames ``pattern`` as AWS matches it."""
    return _compiled(pattern).fullmatch(name) is not None
