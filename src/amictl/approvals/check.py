"""Whether a plan needs approvals, and whether it has them: what ``apply`` checks before
its first action and ``amictl approvals PLAN`` shows."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from ..aws.session import Connector
from ..errors import SafetyError
from ..policy.plan_model import Action, Plan
from ..state.store import Store
from .config import ApprovalConfig, load_config
from .live import LiveFacts, read_live_facts
from .records import Approval, approvals_of, may_approve, planner_of


def thresholds_crossed(
    plan: Plan, config: ApprovalConfig, live: LiveFacts | None = None
) -> list[str]:
    """Why the plan needs approvals (empty: it does not). ``live``: the facts read from the
    account (``read_live_facts``); a snapshot counts its larger size, plan's or live, and
    an image every family the plan or its live tags/name give it: an edited plan file
    cannot lower a threshold's count."""
    if not config.enabled:
        return []
    live = live or LiveFacts()
    dereg = [a for a in plan.actions if a.type == "deregister"]
    snaps = [a for a in plan.actions if a.type == "delete-snapshot"]
    gib = sum(max(a.size_gib, live.sizes.get(a.snapshot_id or "", 0)) for a in snaps)
    out = []
    if config.images is not None and len(dereg) > config.images:
        out.append(f"{len(dereg)} images deregistered (more than {config.images})")
    if config.snapshots is not None and len(snaps) > config.snapshots:
        out.append(f"{len(snaps)} snapshots deleted (more than {config.snapshots})")
    if config.gib is not None and gib > config.gib:
        out.append(f"{gib} GiB of snapshots deleted (more than {config.gib})")
    if config.protected_families:
        fams = {f for a in dereg for f in _families(a, live)}
        hit = sorted(
            f for f in fams if any(fnmatch.fnmatchcase(f, g) for g in config.protected_families)
        )
        if hit:
            out.append(
                "deregisters in protected famil"
                + ("ies " if len(hit) > 1 else "y ")
                + ", ".join(hit)
            )
    return out


def _families(a: Action, live: LiveFacts) -> set[str]:
    fams = set(live.families.get(a.image_id or "", ()))
    if a.family:
        fams.add(a.family)
    return fams


@dataclass
class ApprovalStatus:
    checksum: str
    required: int
    reasons: list[str]
    planner: str | None
    approvals: list[Approval] = field(default_factory=list)
    counted: list[Approval] = field(default_factory=list)
    approvers: tuple[str, ...] = ()

    @property
    def needed(self) -> bool:
        return bool(self.reasons)

    @property
    def approved(self) -> bool:
        return not self.needed or (self.planner is not None and len(self.counted) >= self.required)

    def who_may_approve(self) -> str:
        who = (
            "an identity matching " + ", ".join(self.approvers)
            if self.approvers
            else "any identity with access to this state store"
        )
        return who + (f", except the planner {self.planner}" if self.planner else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "checksum": self.checksum,
            "needed": self.needed,
            "required": self.required if self.needed else 0,
            "reasons": self.reasons,
            "planner": self.planner,
            "approved": self.approved,
            "counted": len(self.counted),
            "approvals": [{**a.to_dict(), "counts": a in self.counted} for a in self.approvals],
            "who_may_approve": self.who_may_approve(),
        }


def status(
    store: Store,
    plan: Plan,
    config: ApprovalConfig | None = None,
    live: LiveFacts | None = None,
) -> ApprovalStatus:
    """The plan's approvals as the team's config counts them: rows for this exact checksum,
    by identities other than the recorded planner, that the config allows. ``live``: the
    threshold facts read from the account (without it, only the plan's own)."""
    config = config if config is not None else load_config(store)
    planner = planner_of(store, plan.checksum)
    rows = approvals_of(store, plan.checksum)
    counted = [a for a in rows if a.arn != planner and may_approve(config, a.arn)]
    return ApprovalStatus(
        plan.checksum,
        config.required,
        thresholds_crossed(plan, config, live),
        planner,
        rows,
        counted,
        config.approvers,
    )


def live_status(
    store: Store, plan: Plan, connector: Connector, every_tag: bool = False
) -> ApprovalStatus:
    """``status`` with the thresholds judged on the live account's facts (and the plan's,
    the larger): what apply checks and ``amictl approvals PLAN`` shows. ``every_tag``: see
    ``read_live_facts``."""
    config = load_config(store)
    live = read_live_facts(connector, plan, every_tag) if config.enabled and plan.actions else None
    return status(store, plan, config, live)


def require(store: Store, plan: Plan, connector: Connector) -> ApprovalStatus:
    """apply's check: refuse (exit 3) a plan over the team's thresholds without enough
    approvals by identities other than its planner, for this exact checksum."""
    st = live_status(store, plan, connector)
    if st.approved:
        return st
    why = "; ".join(st.reasons)
    if st.planner is None:
        raise SafetyError(
            f"plan {plan.checksum[:12]} needs {st.required} approval(s) ({why}) but has no "
            "recorded planner in this state store: it was edited or made elsewhere",
            hint="make it with `amictl plan --out` and this --state, then `amictl approve`",
        )
    raise SafetyError(
        f"plan {plan.checksum[:12]} needs {st.required} approval(s) ({why}); it has "
        f"{len(st.counted)}. Who may approve: {st.who_may_approve()}",
        hint="`amictl approve PLAN` by another identity; `amictl approvals PLAN` lists them",
    )


def require_for_single(store: Store, plan: Plan, connector: Connector, command: str) -> None:
    """``deprecate|disable|retire AMI``'s check: a one-image plan is made and applied in one
    run, so nobody else can have approved its checksum. Over the team's thresholds (judged
    live, as apply judges them) it is refused (exit 3), naming the way that can be approved:
    a plan file, ``approve`` by another identity, then ``apply``."""
    # the team's family rule is in its policies, not here: every tag value and the name
    # of the image count as families it may be in (a protected family by any rule)
    st = live_status(store, plan, connector, every_tag=True)
    if not st.needed:
        return
    raise SafetyError(
        f"refusing to {command}: it crosses the team's approval thresholds "
        f"({'; '.join(st.reasons)}) and needs {st.required} approval(s) by another identity",
        hint="plan it with `amictl plan -p POLICY --out PLAN` (a rule with select.images), have "
        "it approved (`amictl approve PLAN`), then `amictl apply PLAN`",
    )
