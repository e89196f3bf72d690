"""Who planned a plan, and who approved it: rows keyed by the plan's checksum, so an
approval never carries to an edited plan (its checksum differs)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..errors import SafetyError
from ..model import now_iso
from ..state.store import Store
from .config import ApprovalConfig, load_config
from .tables import meta, plan_approvals, plan_authors


class ApprovalRefused(SafetyError):
    """The caller may not approve this plan (exit 3)."""


@dataclass(frozen=True)
class Approval:
    checksum: str
    arn: str
    comment: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ready(store: Store) -> None:
    meta.create_all(store.engine)


def record_planner(store: Store, checksum: str, arn: str) -> None:
    """The identity that made the plan (first writer wins: re-planning the same content by
    another identity does not change who planned it)."""
    _ready(store)
    try:
        with store.engine.begin() as c:
            c.execute(plan_authors.insert().values(checksum=checksum, arn=arn, at=now_iso()))
    except IntegrityError:
        pass


def note_planner(store: Store, checksum: str, caller_arn: Callable[[], str]) -> str | None:
    """``plan --out``: when the team requires approvals, record the caller's STS identity
    (``caller_arn``: the connector's own credentials, not a role it assumes; asked only
    then) as the plan's planner."""
    if not load_config(store).enabled:
        return None
    arn = caller_arn()
    record_planner(store, checksum, arn)
    return arn


def planner_of(store: Store, checksum: str) -> str | None:
    _ready(store)
    with store.engine.connect() as c:
        row = c.execute(
            sa.select(plan_authors.c.arn).where(plan_authors.c.checksum == checksum)
        ).first()
    return None if row is None else str(row.arn)


def may_approve(config: ApprovalConfig, arn: str) -> bool:
    return not config.approvers or any(fnmatch.fnmatchcase(arn, g) for g in config.approvers)


def approve(
    store: Store, checksum: str, arn: str, comment: str | None, config: ApprovalConfig
) -> bool:
    """Record ``arn``'s approval of the plan; False when it had approved it already (a
    second approval by the same identity, even at the same moment, is one row)."""
    planner = planner_of(store, checksum)
    if planner is None:
        raise ApprovalRefused(
            f"plan {checksum[:12]} has no recorded planner in this state store: approvals "
            "count only for plans made by `amictl plan --out` with it",
            hint="make the plan with the same --state",
        )
    if planner == arn:
        raise ApprovalRefused(
            f"{arn} made plan {checksum[:12]}: the planner's own approval does not count",
            hint="ask another identity to run `amictl approve`",
        )
    if not may_approve(config, arn):
        raise ApprovalRefused(
            f"{arn} may not approve plans (team approvers: {', '.join(config.approvers)})"
        )
    try:
        with store.engine.begin() as c:
            c.execute(
                plan_approvals.insert().values(
                    checksum=checksum, arn=arn, comment=comment, at=now_iso()
                )
            )
    except IntegrityError:
        return False
    return True


def approvals_of(store: Store, checksum: str) -> list[Approval]:
    _ready(store)
    q = (
        sa.select(plan_approvals.c.arn, plan_approvals.c.comment, plan_approvals.c.at)
        .where(plan_approvals.c.checksum == checksum)
        .order_by(plan_approvals.c.seq)
    )
    with store.engine.connect() as c:
        return [Approval(checksum, r.arn, r.comment, r.at) for r in c.execute(q)]
