"""What one apply is given and what it returns: its limits (``ApplyOptions``, journaled with
the run and signed with its plan, so ``--resume`` keeps them only when the store's key signed
them), the plan once every refusal passed (``Prepared``) and the outcome (``ApplyResult``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from ..aws.session import Target
from ..durations import parse_duration
from ..policy.model import Policy
from ..policy.plan_model import Plan


@dataclass
class ApplyOptions:
    """The limits of one apply; journaled with the run so ``--resume`` keeps them."""

    max_destroy: int = 50
    max_share: float = 0.25  # of all images of an account/region that has >= SHARE_MIN_IMAGES
    allow_whole_family: bool = False
    max_age: dt.timedelta = dt.timedelta(hours=24)
    force_unsafe: bool = False
    workers: int = 4
    recycle_bin_check: bool = True
    batch: int = 0  # actions of one API decided on one live read (0: measured, pipeline.Cadence)
    every_region: bool = False  # copies looked for in every enabled region (single image)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_age"] = f"{int(self.max_age.total_seconds() // 3600)}h"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApplyOptions:
        o = cls()
        for k, v in d.items():
            if k == "max_age":
                o.max_age = parse_duration(str(v))
            elif hasattr(o, k) and isinstance(v, type(getattr(o, k))):
                setattr(o, k, v)
        return o


@dataclass
class ApplyResult:
    checksum: str
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    not_found: dict[str, str] = field(default_factory=dict)
    already_done: list[str] = field(default_factory=list)
    final_earlier: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)
    recycle_bin: dict[str, Any] = field(default_factory=dict)
    caller: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "checksum": self.checksum,
            "done": self.done,
            "already_done": self.already_done,
            "skipped": self.skipped,
            "failed": self.failed,
            "not_found": self.not_found,
            "final_earlier": self.final_earlier,
            "not_started": self.not_started,
            "interrupted": self.interrupted,
            "recycle_bin": self.recycle_bin,
            "caller": self.caller,
        }


@dataclass
class Prepared:
    """A plan that passed every refusal, with what the confirmation shows."""

    plan: Plan
    policy: Policy
    targets: dict[tuple[str, str], Target]
    callers: dict[str, str]
    recycle_bin: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    # the plan's signature as checked (recorded with the run for --resume), and the store key
    # when it checked: the run's limits are then signed with it (amictl.apply.trust)
    signature: str | None = None
    key: bytes | None = None
