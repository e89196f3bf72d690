"""A parsed policy: frozen dataclasses, durations as timedeltas."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..model import FamilyRule


@dataclass(frozen=True)
class Hold:
    tag: str | None = None
    until_value: bool = False
    deregistration_protection: bool = False
    line: int | None = None

    def describe(self) -> str:
        if self.deregistration_protection:
            return "deregistration protection"
        return f"tag {self.tag}" + (" (date)" if self.until_value else "")


@dataclass(frozen=True)
class Select:
    families: tuple[str, ...] | None = None
    name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    regions: tuple[str, ...] | None = None
    older_than: dt.timedelta | None = None
    unfamilied: bool = False
    images: tuple[str, ...] | None = None  # exact image ids
    managed: tuple[str, ...] = ()  # services whose images it adopts (keep.managed.SERVICES)


@dataclass(frozen=True)
class Keep:
    latest: int | None = None
    newer_than: dt.timedelta | None = None
    in_use: bool = True
    launched_within: dt.timedelta | None = None
    shared: bool = True
    channels: bool = True
    channel_history: int = 1
    ancestors: bool = True
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Retire:
    deprecate: dt.timedelta | None = None
    disable: dt.timedelta | None = None
    deregister: dt.timedelta | None = None
    snapshots: str = "delete"


@dataclass(frozen=True)
class Rule:
    name: str
    select: Select = field(default_factory=Select)
    keep: Keep = field(default_factory=Keep)
    retire: Retire = field(default_factory=Retire)
    line: int | None = None


@dataclass(frozen=True)
class Orphaned:
    only_from_images: bool = True
    older_than: dt.timedelta = dt.timedelta(days=7)
    action: str = "report"


@dataclass(frozen=True)
class Retain:
    """A retention rule (issue 29): the versions a regulation names, and how AWS is to hold
    them: their snapshots locked (``lock_mode`` for ``lock_for``), or the image stored to
    an S3 bucket. A selected version is kept until that retention is in place."""

    name: str
    families: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None  # ever in one of these channels (now or history)
    tags: tuple[tuple[str, str], ...] = ()
    images: tuple[str, ...] | None = None
    lock_mode: str | None = None  # governance | compliance
    lock_for: dt.timedelta | None = None
    cool_off: dt.timedelta | None = None
    store_bucket: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Policy:
    name: str = "policy"
    families: FamilyRule = field(default_factory=FamilyRule)
    holds: tuple[Hold, ...] = ()
    rules: tuple[Rule, ...] = ()
    orphaned: Orphaned | None = None
    require_recycle_bin: bool = False
    prices: tuple[tuple[str, float], ...] = ()
    path: str = "<policy>"
    sha256: str = ""
    # the team's infrastructure code (amictl.iac): absolute paths, re-read by apply
    iac: tuple[str, ...] = ()
    retain: tuple[Retain, ...] = ()
    # notify.before: a deregister stage is due only once its owner's notice was delivered
    # (tag amictl:notified) at least this long ago (issue 29)
    notify_before: dt.timedelta | None = None
