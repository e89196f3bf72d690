"""The team's approval thresholds, kept in the state store (one JSON row)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import InputError
from ..model import now_iso
from ..state.store import Store
from .tables import approval_config

NAME = "approvals"


@dataclass(frozen=True)
class ApprovalConfig:
    """A plan needs ``required`` approvals when it crosses any threshold given: more than
    ``images`` images deregistered, ``snapshots`` snapshots deleted, ``gib`` GiB of
    snapshots deleted, or any deregister in a family matching ``protected_families``.
    ``approvers``: ARN globs of who may approve (empty: anyone but the planner)."""

    required: int = 0
    images: int | None = None
    snapshots: int | None = None
    gib: int | None = None
    protected_families: tuple[str, ...] = ()
    approvers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def enabled(self) -> bool:
        return self.required > 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["protected_families"] = list(self.protected_families)
        d["approvers"] = list(self.approvers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApprovalConfig:
        def count(key: str) -> int | None:
            v = d.get(key)
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InputError(f"approval config: {key} must be a whole number >= 0", key=key)
            return v

        req = count("required") or 0
        return cls(
            required=req,
            images=count("images"),
            snapshots=count("snapshots"),
            gib=count("gib"),
            protected_families=tuple(str(x) for x in d.get("protected_families") or ()),
            approvers=tuple(str(x) for x in d.get("approvers") or ()),
        )


def load_config(store: Store) -> ApprovalConfig:
    approval_config.metadata.create_all(store.engine)
    with store.engine.connect() as c:
        row = c.execute(
            sa.select(approval_config.c.value).where(approval_config.c.name == NAME)
        ).first()
    return ApprovalConfig() if row is None else ApprovalConfig.from_dict(json.loads(row.value))


def save_config(store: Store, config: ApprovalConfig, by: str | None) -> None:
    approval_config.metadata.create_all(store.engine)
    value = json.dumps(config.to_dict(), sort_keys=True)
    with store.engine.begin() as c:
        done = c.execute(
            approval_config.update()
            .where(approval_config.c.name == NAME)
            .values(value=value, updated_at=now_iso(), updated_by=by)
        ).rowcount
        if not done:
            c.execute(
                approval_config.insert().values(
                    name=NAME, value=value, updated_at=now_iso(), updated_by=by
                )
            )
