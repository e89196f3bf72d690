"""The refusals before an apply changes anything (exit 3), and what its confirmation shows.

``prepare`` runs every refusal: the plan's own (``check_plan``: its time, an incomplete
inventory, its age, unsafe actions, ``--max-destroy``), the credentials' account, the live
blast radius, and reads the Recycle Bin coverage of each account/region it deletes in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error
from ..durations import format_duration, human_duration
from ..errors import SafetyError
from ..model import parse_time
from ..policy.plan_model import Plan
from ..recyclebin import coverage
from ..state.store import Store
from .blast import live_blast_radius
from .options import ApplyOptions, Prepared

CLOCK_SKEW = dt.timedelta(minutes=5)


def check_plan(plan: Plan, opts: ApplyOptions, now: dt.datetime | None = None) -> list[str]:
    """The refusals that need no AWS call (exit 3). Returns notes for the user."""
    now = now or dt.datetime.now(dt.UTC)
    notes: list[str] = []
    plan_now = parse_time(plan.now)
    created = parse_time(plan.created_at)
    assert plan_now is not None and created is not None  # validated by Plan.from_dict
    if plan_now > now + CLOCK_SKEW:
        raise SafetyError(
            f"the plan was made for {plan.now}, later than the real time ({now:%Y-%m-%dT%H:%M:%SZ}): "
            "a plan made with `plan --now` in the future is a preview and is never applied",
            hint="make the plan without --now",
        )
    if created > now + CLOCK_SKEW:
        raise SafetyError(
            f"the plan says it was made at {plan.created_at}, in the future",
            hint="make a new plan with `amictl plan`",
        )
    if not plan.inventory.get("complete", False):
        raise SafetyError(
            "the plan was made from an INCOMPLETE inventory ("
            + "; ".join(str(x) for x in plan.inventory.get("incomplete", []))
            + ")",
            hint="fix access to those regions/kinds (or leave them out with --region) and plan again",
        )
    if now - created > opts.max_age:
        raise SafetyError(
            f"the plan is {human_duration(now - created)} old "
            f"(the limit is {human_duration(opts.max_age)}, --max-age {format_duration(opts.max_age)})",
            hint="make a fresh plan, or pass --max-age with a longer limit",
        )
    unsafe = [a for a in plan.actions if a.unsafe]
    if unsafe and not opts.force_unsafe:
        raise SafetyError(
            f"{len(unsafe)} actions retire images that are IN USE or SHARED (a rule says "
            "in_use: false or shared: false): " + ", ".join(a.image_id or "" for a in unsafe[:5]),
            hint="pass --force-unsafe only if you really mean it",
        )
    dereg = [a for a in plan.actions if a.type == "deregister"]
    if len(dereg) > opts.max_destroy:
        raise SafetyError(
            f"the plan deregisters {len(dereg)} images, more than --max-destroy {opts.max_destroy}",
            hint=f"review the plan, then pass --max-destroy {len(dereg)}",
        )
    return notes


def recycle_bin_coverage(connector: Connector, target: Target) -> dict[str, Any]:
    """Whether Recycle Bin rules keep deregistered images and deleted snapshots recoverable
    in this account/region, and for how long (``amictl.recyclebin``), as JSON-ready data."""
    return coverage(connector, target, max_attempts=2).to_dict()


def describe_coverage(c: dict[str, Any]) -> str:
    return str(c.get("summary", ""))


def unrecoverable(coverage: dict[str, dict[str, Any]]) -> list[str]:
    """The ``account/region`` places of :attr:`Prepared.recycle_bin` where a deleted image
    or snapshot would NOT be recoverable (no Recycle Bin rule keeps it)."""
    return sorted(
        where
        for where, c in coverage.items()
        if not all(c.get(k, {}).get("recoverable") for k in ("images", "snapshots"))
    )


def prepare(
    connector: Connector, plan: Plan, opts: ApplyOptions, store: Store | None = None
) -> Prepared:
    """Every refusal, before anything changes: raises SafetyError (exit 3); an AWS error
    on the way is an AwsError naming the call (exit 1)."""
    try:
        return _prepare(connector, plan, opts, store)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "apply (checks before the first action)") from None


def _prepare(connector: Connector, plan: Plan, opts: ApplyOptions, store: Store | None) -> Prepared:
    notes = check_plan(plan, opts)
    policy = plan.policy_spec()
    targets = {
        (a.account, a.region): Target(a.account, a.region, connector.role_for(a.account))
        for a in plan.actions
    }
    callers: dict[str, str] = {}
    for t in targets.values():
        if t.account not in callers:
            ident = connector.identity(t.role_arn)
            callers[t.account] = ident["arn"]
            if ident["account"] != t.account:
                raise SafetyError(
                    f"the plan is for account {t.account} but the credentials are for "
                    f"{ident['account']}",
                    hint=f"pass --role-arn for {t.account}",
                )
    live_blast_radius(connector, plan, policy, targets, opts, store)
    destroying = {
        (a.account, a.region) for a in plan.actions if a.type in ("deregister", "delete-snapshot")
    }
    coverage: dict[str, Any] = {}
    if opts.recycle_bin_check:
        for key in sorted(destroying):
            c = recycle_bin_coverage(connector, targets[key])
            coverage[f"{key[0]}/{key[1]}"] = c
            if policy.require_recycle_bin and not all(
                c.get(n, {}).get("recoverable") for n in ("images", "snapshots")
            ):
                raise SafetyError(
                    f"{key[0]}/{key[1]}: deletions would not be recoverable "
                    f"({describe_coverage(c)}) and the policy requires Recycle Bin",
                    hint="amictl recycle-bin ensure --retention 7d",
                )
    return Prepared(plan, policy, targets, callers, coverage, notes)
