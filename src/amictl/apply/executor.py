"""Execute a reviewed plan: checks, lock, journal, re-check, ordered bounded concurrency.

Every action is journaled as ``intended`` before its AWS call and as ``done``,
``skipped`` or ``failed`` after it. Re-running the same plan (or ``--resume``)
redoes nothing journaled ``done`` and re-evaluates everything else, so a killed
apply ends where a clean one would.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error
from ..errors import SafetyError
from ..model import parse_time
from ..policy.model import Hold, Policy
from ..policy.plan_model import Action, Plan
from ..state.store import Store
from .actions import EXECUTORS, Outcome
from .recheck import DEFAULT_HOLDS, References, recheck_image

Progress = Callable[[Action, str, str], None]


@dataclass
class ApplyOptions:
    max_destroy: int = 50
    max_family_share: float = 0.25
    max_age: dt.timedelta = dt.timedelta(hours=24)
    force: bool = False
    force_unsafe: bool = False
    workers: int = 4
    policy: Policy | None = None
    recycle_bin_check: bool = True


@dataclass
class ApplyResult:
    checksum: str
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    already_done: list[str] = field(default_factory=list)
    recycle_bin: dict[str, str] = field(default_factory=dict)
    caller: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checksum": self.checksum,
            "done": self.done,
            "already_done": self.already_done,
            "skipped": self.skipped,
            "failed": self.failed,
            "recycle_bin": self.recycle_bin,
            "caller": self.caller,
        }


def preflight(plan: Plan, opts: ApplyOptions, now: dt.datetime | None = None) -> list[str]:
    """The refusals of policy.md rule 5 and cli.md: returns notes; raises SafetyError (exit 3)."""
    now = now or dt.datetime.now(dt.UTC)
    notes = []
    if not plan.inventory.get("complete", False):
        msg = (
            "the plan was made from an INCOMPLETE inventory ("
            + "; ".join(plan.inventory.get("incomplete", []))
            + ")"
        )
        if not opts.force:
            raise SafetyError(
                msg,
                hint="fix access and plan again, or pass --force (the incomplete regions "
                "have no destructive action in the plan anyway)",
            )
        notes.append(msg + ": applying because of --force")
    created = parse_time(plan.created_at)
    if created and now - created > opts.max_age:
        msg = (
            f"the plan is {(now - created).total_seconds() / 3600:.1f} h old (limit {opts.max_age})"
        )
        if not opts.force:
            raise SafetyError(msg, hint="make a fresh plan, or pass --force")
        notes.append(msg + ": applying because of --force")
    unsafe = [a for a in plan.actions if a.unsafe]
    if unsafe and not opts.force_unsafe:
        raise SafetyError(
            f"{len(unsafe)} actions retire images that are IN USE (a rule says in_use: false): "
            + ", ".join(a.image_id or "" for a in unsafe[:5]),
            hint="pass --force-unsafe only if you really mean it",
        )
    dereg = [a for a in plan.actions if a.type == "deregister"]
    if len(dereg) > opts.max_destroy and not opts.force:
        raise SafetyError(
            f"the plan deregisters {len(dereg)} images, more than --max-destroy {opts.max_destroy}",
            hint="raise --max-destroy after review, or pass --force",
        )
    sizes = plan.summary.get("family_sizes", {}) or {}
    per: dict[str, int] = {}
    for a in dereg:
        if a.family:
            key = f"{a.account}/{a.region}/{a.family}"
            per[key] = per.get(key, 0) + 1
    over = [
        (k, n, sizes.get(k, 0))
        for k, n in per.items()
        if sizes.get(k) and n / sizes[k] > opts.max_family_share
    ]
    if over and not opts.force:
        desc = ", ".join(f"{k}: {n} of {t}" for k, n, t in sorted(over))
        raise SafetyError(
            f"blast radius: the plan deregisters more than {opts.max_family_share:.0%} of a family "
            f"({desc})",
            hint="review the plan, then pass --force",
        )
    return notes


def recycle_bin_status(connector: Connector, target: Target) -> str:
    """Whether Recycle Bin rules keep deleted AMIs and snapshots recoverable in this region."""
    try:
        rbin = connector.client("rbin", target.region, target.role_arn, max_attempts=2)
        found = []
        for rtype in ("EC2_IMAGE", "EBS_SNAPSHOT"):
            for page in rbin.get_paginator("list_rules").paginate(ResourceType=rtype):
                for r in page.get("Rules", []):
                    if r.get("Status", "available") == "available":
                        ret = r.get("RetentionPeriod", {})
                        found.append(
                            f"{rtype}: {ret.get('RetentionPeriodValue')} {ret.get('RetentionPeriodUnit', '')}".strip()
                        )
        if found:
            return "recoverable (" + "; ".join(found) + ")"
        return "NOT recoverable: no Recycle Bin retention rule"
    except (ClientError, BotoCoreError) as exc:
        return f"unknown: could not list Recycle Bin rules ({aws_error(exc, 'ListRules').code})"


def _role_for(connector: Connector, account: str) -> str | None:
    for arn in connector.role_arns:
        m = re.match(r"^arn:aws[\w-]*:iam::(\d{12}):", arn)
        if m and m.group(1) == account:
            return arn
    return None


def apply_plan(
    connector: Connector,
    store: Store,
    plan: Plan,
    opts: ApplyOptions,
    progress: Progress | None = None,
) -> ApplyResult:
    checksum = plan.checksum
    result = ApplyResult(checksum)
    preflight(plan, opts)
    store.save_plan(checksum, plan.to_dict())
    holds: tuple[Hold, ...] = (
        opts.policy.holds if opts.policy and opts.policy.holds else DEFAULT_HOLDS
    )
    targets = {
        (a.account, a.region): Target(a.account, a.region, _role_for(connector, a.account))
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
    result.caller = callers
    destroying = {
        (a.account, a.region) for a in plan.actions if a.type in ("deregister", "delete-snapshot")
    }
    if opts.recycle_bin_check:
        for key in sorted(destroying):
            rb = recycle_bin_status(connector, targets[key])
            result.recycle_bin[f"{key[0]}/{key[1]}"] = rb
            if opts.policy and opts.policy.require_recycle_bin and not rb.startswith("recoverable"):
                raise SafetyError(
                    f"{key[0]}/{key[1]}: deletions would not be recoverable ({rb}) and the "
                    "policy requires Recycle Bin",
                    hint="add a Recycle Bin retention rule first",
                )

    refs = References(connector)
    lock_keys = [f"{a}/{r}" for a, r in sorted(targets)]
    with store.lock(lock_keys, owner=f"apply {checksum[:12]}"):
        previous = store.journal_final_states(checksum)
        status: dict[str, str] = {}
        for a in plan.actions:
            if previous.get(a.id) == "done":
                status[a.id] = "done"
                result.already_done.append(a.id)
        pending = {a.id: a for a in plan.actions if a.id not in status}

        def journal(a: Action, st: str, code: str | None = None, msg: str | None = None) -> None:
            store.journal_write(
                plan_checksum=checksum,
                action_id=a.id,
                type=a.type,
                account=a.account,
                region=a.region,
                resource=a.snapshot_id or a.image_id or "",
                status=st,
                error_code=code,
                message=msg,
                caller=callers.get(a.account),
            )

        def run(a: Action) -> tuple[str, str | None, str]:
            t = targets[(a.account, a.region)]
            ec2 = connector.client("ec2", a.region, t.role_arn)
            if a.type in ("deprecate", "disable", "deregister"):
                live, err = refs.get(t)
                verdict, why = recheck_image(ec2, a, live, err, holds)
                if verdict == "skip":
                    return "skipped", "Recheck", why or ""
                if verdict == "gone" and a.type != "deregister":
                    return "skipped", "Gone", why or ""
            journal(a, "intended")
            out: Outcome = EXECUTORS[a.type].fn(ec2, a, plan.now)
            return out.status, None, out.message

        with ThreadPoolExecutor(max_workers=max(1, opts.workers)) as pool:
            running: dict[Future[tuple[str, str | None, str]], Action] = {}
            while pending or running:
                for aid in list(pending):
                    a = pending[aid]
                    deps = [status.get(d) for d in a.after]
                    if any(d in ("skipped", "failed") for d in deps):
                        del pending[aid]
                        bad = [d for d in a.after if status.get(d) in ("skipped", "failed")]
                        status[aid] = "skipped"
                        msg = f"depends on {', '.join(bad)} which was not done"
                        result.skipped[aid] = msg
                        journal(a, "skipped", "Dependency", msg)
                        if progress:
                            progress(a, "skipped", msg)
                        continue
                    if all(d == "done" for d in deps):
                        del pending[aid]
                        running[pool.submit(run, a)] = a
                if not running:
                    if pending:  # a dependency outside the plan: cannot happen with a valid plan
                        for aid, a in list(pending.items()):
                            status[aid] = "skipped"
                            result.skipped[aid] = "unresolvable dependency"
                            journal(a, "skipped", "Dependency", "unresolvable dependency")
                        pending.clear()
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    a = running.pop(fut)
                    try:
                        st, code, msg = fut.result()
                    except Exception as exc:  # noqa: BLE001 - journaled, reported, exit 4
                        err = aws_error(exc, a.type, a.region)
                        st, code, msg = "failed", err.code, err.message
                    status[a.id] = st
                    journal(a, st, code, msg)
                    if st == "done":
                        result.done.append(a.id)
                    elif st == "skipped":
                        result.skipped[a.id] = msg
                    else:
                        result.failed[a.id] = msg
                    if progress:
                        progress(a, st, msg)
    return result
