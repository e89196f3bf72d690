"""Version order: Semantic Versioning 2.0.0 precedence (semver.org, section 11).

One order for everything that orders versions: keep-latest-N in plans and at apply,
``versions``, ``--bump``, ``launch FAMILY@VERSION``, ``stale`` and channels.

- The core ``MAJOR.MINOR.PATCH`` compares numerically, part by part. amictl also
  accepts cores of another length (``1``, ``1.2``, ``2024.11.3.1``): a missing part
  counts as lower than any present one (``1.2 < 1.2.0``), as amictl always did.
- A pre-release (``1.2.3-rc.1``) has LOWER precedence than its release (``1.2.3``).
  Pre-release identifiers compare left to right: numeric ones numerically, others in
  ASCII order, numeric lower than alphanumeric; a longer list wins when all before
  are equal (``1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta <
  1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0``).
- Build metadata (``+build.5``) is ignored: ``1.0.0+a`` and ``1.0.0+b`` are equal.
- A leading ``v`` is ignored. A version that is not of this form (``1.4.0_hotfix``)
  ranks by its leading numbers, just after the well-formed versions with those numbers
  (``1.4.0 < 1.4.0_hotfix < 1.4.1``): a malformed tag never outranks a newer release. One
  without a leading number (``beta``) ranks below every version.
"""

from __future__ import annotations

import functools
import re
from typing import Any

VERSION_RE = re.compile(
    r"^[vV]?(?P<core>\d+(?:\.\d+)*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


LEAD_RE = re.compile(r"^[vV]?(\d+(?:\.\d+)*)")

# A version as it appears in an image name (``web-2.0.0-rc.1``): numbers separated by
# dots, or a SemVer pre-release after a MAJOR.MINOR.PATCH core (a shorter core followed by
# ``-N`` stays part of the family: ``app-1-2`` is family ``app-1``, version ``2``). AMI
# names cannot hold ``+``, so build metadata is not part of a name.
NAME_VERSION = r"(?:\d+\.\d+\.\d+-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*|\d+(?:\.\d+)*)"
NAME_VERSION_RE = re.compile(rf"^{NAME_VERSION}$")
MAX_WRITTEN = 64


def written_version_problem(version: str | None) -> str | None:
    """Why ``version`` cannot be written as a new version (``create``, ``bake``), or None.

    The one rule for versions amictl writes: Semantic Versioning 2.0 (``1.4.2``,
    ``2.0.0-rc.1``; cores of another length, ``1.4``, as amictl always accepted), without
    build metadata, which an image name cannot hold."""
    v = version or ""
    if len(v) > MAX_WRITTEN:
        return f"{v[:20]!r}... is longer than {MAX_WRITTEN} characters"
    if "+" in v and VERSION_RE.match(v):
        return f"{v!r} has build metadata (+...), which an AMI name cannot hold"
    if not NAME_VERSION_RE.match(v):
        return (
            f"{v!r} is not a version: numbers separated by dots, optionally a SemVer "
            "pre-release after MAJOR.MINOR.PATCH, e.g. 1.4.2 or 2.0.0-rc.1"
        )
    return None


def _pre_key(pre: str) -> tuple[Any, ...]:
    out: list[tuple[int, int, str]] = []
    for ident in pre.split("."):
        if ident.isdigit():
            out.append((0, int(ident), ""))
        else:
            out.append((1, 0, ident))
    return tuple(out)


@functools.lru_cache(maxsize=65536)
def version_key(version: str | None) -> tuple[Any, ...]:
    """A sort key: ``version_key(a) < version_key(b)`` iff ``a`` has lower precedence."""
    if not version:
        return ()
    m = VERSION_RE.match(version.strip())
    if m:
        core = tuple(int(p) for p in m.group("core").split("."))
        pre = m.group("pre")
        # (core, 1) for a release sorts after (core, 0, pre...) for its pre-releases.
        tail: tuple[Any, ...] = (0, _pre_key(pre)) if pre else (1, ())
        return (0, core, *tail)
    # Not a version of this form (``1.4.0_hotfix``, ``2024-rev-b``): its leading numbers are
    # its core, and it ranks just after the well-formed versions of that core (never above
    # a newer release); one without a leading number ranks below every version.
    lead = LEAD_RE.match(version.strip())
    rest = version.strip()[lead.end() :] if lead else version
    parts = tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|[A-Za-z]+", rest)
    )
    if not lead:
        return (-1, parts)
    return (0, tuple(int(p) for p in lead.group(1).split(".")), 2, parts)


def is_prerelease(version: str | None) -> bool:
    m = VERSION_RE.match((version or "").strip())
    return bool(m and m.group("pre"))


def same_version(a: str | None, b: str | None) -> bool:
    """Equal precedence (build metadata and a leading ``v`` ignored)."""
    return a is not None and b is not None and version_key(a) == version_key(b)
