"""A rollout's rows in the state store's journal (plan key ``rollout-<id>``): the plan, each
step intended and done, how it ended; which rollouts did not end, and which conflict.

A rollout is *unfinished* when it has no ``end`` row (interrupted, killed, or running), or
when it ended ``started`` (its refreshes were started and not followed to their end): both
are carried on by ``amictl rollout --resume [ID]``. A later rollout of a group an
unfinished one changes is refused, except a ``started`` one whose refreshes all ended
(read live on every group of it), which it closes (``superseded``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from ..aws.session import Connector, Target
from ..errors import AmictlError, InputError, SafetyError, StateError
from ..state.store import Store
from .plan import GroupChange, RolloutPlan, TemplateChange, active_refresh

PREFIX = "rollout-"
FINAL = {"done", "failed", "skipped", "superseded"}  # end rows that close a rollout


class Journal:
    """The rollout's rows in the state store's journal."""

    def __init__(self, store: Store, plan: RolloutPlan) -> None:
        self.store, self.plan = store, plan

    def write(
        self,
        action: str,
        kind: str,
        g: GroupChange | TemplateChange | None,
        status: str,
        **msg: Any,
    ) -> None:
        account = g.account if g else ""
        region = g.region if g else ""
        resource = (g.asg if isinstance(g, GroupChange) else g.template_id) if g else ""
        try:
            self.store.journal_write(
                plan_checksum=self.plan.journal_key,
                action_id=action[:32],
                type=f"rollout-{kind}"[:32],
                account=account,
                region=region,
                resource=resource[:64],
                status=status,
                message=json.dumps(msg, default=str) if msg else None,
            )
        except Exception as exc:  # noqa: BLE001 - the store failing mid-rollout
            raise StateError(f"cannot write the rollout journal: {exc}") from None

    def states(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """The last row of each action: (status, message)."""
        return {k: (st, msg) for k, (st, msg, _at) in self.rows().items()}

    def rows(self) -> dict[str, tuple[str, dict[str, Any], str]]:
        """The last row of each action: (status, message, when written)."""
        rows = self.store.journal_rows(plan_checksum=self.plan.journal_key, limit=100000)
        out: dict[str, tuple[str, dict[str, Any], str]] = {}
        for r in rows:
            out[r["action_id"]] = (r["status"], json.loads(r["message"] or "{}"), str(r["at"]))
        return out


def save_plan(store: Store, plan: RolloutPlan) -> None:
    Journal(store, plan).write("plan", "plan", None, "planned", plan=plan.to_dict())


def _by_rollout(store: Store) -> dict[str, list[dict[str, Any]]]:
    rows = store.journal_rows(plan_prefix=PREFIX, limit=1_000_000)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["plan_checksum"][len(PREFIX) :]].append(r)
    return out


def _summary(rid: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    head = next((r for r in rows if r["action_id"] == "plan"), None)
    if head is None:
        return None
    plan = json.loads(head["message"] or "{}").get("plan") or {}
    ends = [r for r in rows if r["action_id"] == "end"]
    end = ends[-1] if ends else None
    outcome = json.loads(end["message"] or "{}").get("outcome") if end else None
    if end is None:
        interrupted = any(r["action_id"] == "interrupted" for r in rows)
        status = "interrupted" if interrupted else "unfinished"
    elif end["status"] == "started":
        status = "started"
    elif end["status"] == "skipped":
        status = "refused"
    else:
        status = outcome or end["status"]
    return {
        "rollout_id": rid,
        "family": plan.get("family"),
        "channel": plan.get("channel"),
        "version": plan.get("new_version"),
        "started": head["at"],
        "ended": end["at"] if end and end["status"] in FINAL else None,
        "status": status,
        "unfinished": end is None or end["status"] not in FINAL,
        "groups": [g["asg"] for g in plan.get("groups", [])],
        "_plan": plan,
    }


def rollouts(store: Store) -> list[dict[str, Any]]:
    """Every journaled rollout, oldest first (``amictl rollout list``)."""
    out = []
    for rid, rows in _by_rollout(store).items():
        s = _summary(rid, rows)
        if s is not None:
            out.append(s)
    out.sort(key=lambda s: str(s["started"]))
    return out


def public(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if not k.startswith("_")}


def resumable(store: Store, rollout_id: str | None = None) -> RolloutPlan | None:
    """The unfinished rollout to carry on: ``rollout_id``'s, else the only unfinished one
    (None when there is none; several without an id is an input error naming them)."""
    every = rollouts(store)
    if rollout_id:
        found = [s for s in every if s["rollout_id"] == rollout_id]
        if not found:
            raise InputError(f"no rollout {rollout_id} in the journal", key="--resume")
        if not found[0]["unfinished"]:
            raise AmictlError(
                f"rollout {rollout_id} has ended ({found[0]['status']}): nothing to resume"
            )
        return RolloutPlan.from_dict(found[0]["_plan"])
    open_ = [s for s in every if s["unfinished"]]
    if not open_:
        return None
    if len(open_) > 1:
        ids = ", ".join(f"{s['rollout_id']} ({s['family']} {s['channel']})" for s in open_)
        raise InputError(
            f"{len(open_)} rollouts are unfinished: {ids}",
            key="--resume",
            hint="resume each: amictl rollout --resume ID (amictl rollout list shows them)",
        )
    return RolloutPlan.from_dict(open_[0]["_plan"])


def refresh_owner(store: Store, refresh_id: str) -> str | None:
    """The rollout that started this instance refresh, per the journal."""
    for rid, rows in _by_rollout(store).items():
        for r in rows:
            if r["status"] == "done" and refresh_id in (r["message"] or ""):
                return rid
    return None


def _live(conn: Connector, groups: list[GroupChange]) -> dict[tuple[str, str, str], Any]:
    """The instance refresh running now on each group (DescribeInstanceRefreshes), or None."""
    return {
        (g.account, g.region, g.asg): active_refresh(
            conn, Target(g.account, g.region, g.role_arn), g.asg
        )
        for g in groups
    }


def check_conflicts(store: Store, plan: RolloutPlan, conn: Connector) -> None:
    """Refuse (exit 3) a rollout of a group that another unfinished rollout changes, or
    that has an instance refresh running (someone else's: never taken over). Read live,
    never from the plan: a ``started`` rollout is closed (``superseded``) only when no
    refresh runs now on any of ITS groups."""
    mine = {(g.account, g.region, g.asg) for g in plan.groups}
    templates = {(t.account, t.region, t.template_id) for t in plan.templates}
    for s in rollouts(store):
        if s["rollout_id"] == plan.rollout_id or not s["unfinished"]:
            continue
        other = RolloutPlan.from_dict(s["_plan"])
        shared = sorted(
            {g.asg for g in other.groups if (g.account, g.region, g.asg) in mine}
            | {
                t.template_name
                for t in other.templates
                if (t.account, t.region, t.template_id) in templates
            }
        )
        if not shared:
            continue
        running = [k[2] for k, r in _live(conn, other.groups).items() if r is not None]
        if s["status"] == "started" and not running:
            # its refreshes were started and have all ended since: this rollout supersedes it
            Journal(store, other).write("end", "end", None, "superseded", by=plan.rollout_id)
            continue
        now = f"; refreshes run now on {', '.join(running)}" if running else ""
        raise SafetyError(
            f"rollout {s['rollout_id']} ({s['family']} channel {s['channel']}, {s['status']}) "
            f"has not ended and changes {', '.join(shared)}{now}: refusing to start another "
            f"on it; carry it on (or roll it back) first: amictl rollout --resume "
            f"{s['rollout_id']}",
            hint="amictl rollout list shows every rollout and its status",
        )
    for g in plan.groups:
        r = _live(conn, [g])[(g.account, g.region, g.asg)]
        if not r:
            continue
        owner = refresh_owner(store, str(r["id"]))
        who = f"rollout {owner}" if owner else "someone else (a refresh this rollout did not start)"
        raise SafetyError(
            f"{g.asg} has instance refresh {r['id']} {r['status']} (started {r['start']}) "
            f"by {who}: refusing to take it over"
            + (f"; carry that rollout on: amictl rollout --resume {owner}" if owner else ""),
            hint=(
                f"amictl rollout --resume {owner}"
                if owner
                else "wait for it to end, or cancel it (aws autoscaling cancel-instance-refresh)"
            ),
        )


def refuse_unsafe(plan: RolloutPlan) -> None:
    """Refuse (exit 3) what would change groups outside the rollout, and templates or
    groups CloudFormation owns unless ``force_iac``."""
    if plan.bystanders:
        raise SafetyError(
            "the rollout would change what these groups outside it launch: "
            + "; ".join(plan.bystanders),
            hint="include them (--asg) or pin them to a version number first",
        )
    managed = plan.managed()
    if managed and not plan.force_iac:
        raise SafetyError(
            "refusing to roll out what infrastructure as code owns (its next run would revert "
            "or fight the new version): " + "; ".join(managed) + "; pass --force-iac to do it "
            "anyway",
            hint="better: roll it out through the stack, or make its ImageId resolve:ssm: the "
            "channel's parameter",
        )
