"""Carry out a rollout plan: new launch-template versions made default, one instance
refresh per group with a checkpoint at the canary percentage, and on failure a rollback.

Journaled in the state store's journal (plan key ``rollout-<id>``) before and after every
AWS call that changes something, under the apply lock of each account/region, so that
``amictl rollout --resume`` carries on after Ctrl-C (exit 130), SIGTERM (143) or a kill
without repeating a step: a launch-template version is found again by its description
(which names the rollout), a refresh by DescribeInstanceRefreshes.

A failure is all or nothing: when any group's refresh fails, is cancelled or does not end
within the timeout, every group of the rollout goes back to what it ran before. For a
group on a numbered template version, ``AutoRollback`` (and ``RollbackInstanceRefresh``
while a refresh is active) does it; otherwise (``$Default`` / ``$Latest``, which AWS
cannot roll back) the previous default version is restored and a refresh to it started.
The family's channel is never changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import interrupts
from ..aws.session import Connector, aws_error, error_code
from ..errors import AmictlError, Interrupted, SafetyError, StateError
from ..state.store import Store
from .plan import DEFAULT, FOLLOWS_SSM, PINNED, GroupChange, RolloutPlan, TemplateChange

ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}
Progress = Callable[[dict[str, Any]], None]

PERMISSIONS = {
    "sts:GetCallerIdentity",
    "ssm:GetParameter",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:ModifyLaunchTemplate",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:StartInstanceRefresh",
    "autoscaling:DescribeInstanceRefreshes",
    "autoscaling:CancelInstanceRefresh",
    "autoscaling:RollbackInstanceRefresh",
}
"""What ``amictl rollout`` calls (also ``iam:PassRole`` when templates name a profile)."""


@dataclass
class Options:
    wait: bool = True
    poll: float = 15.0  # seconds between DescribeInstanceRefreshes calls
    timeout: float = 3 * 3600.0  # a refresh not ended by then counts as failed


@dataclass
class Outcome:
    rollout_id: str
    status: str = "running"  # succeeded | started | rolled-back | rollback-failed | running
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "started")

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for key, v in sorted(self.groups.items()):
            account, region, asg = key.split("/", 2)
            out.append({"account": account, "region": region, "asg": asg, **v})
        return out


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
        rows = self.store.journal_rows(plan_checksum=self.plan.journal_key, limit=100000)
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for r in rows:
            out[r["action_id"]] = (r["status"], json.loads(r["message"] or "{}"))
        return out


def save_plan(store: Store, plan: RolloutPlan) -> None:
    Journal(store, plan).write("plan", "plan", None, "planned", plan=plan.to_dict())


def resumable(store: Store) -> RolloutPlan | None:
    """The newest rollout, when it did not end (interrupted or killed)."""
    rows = store.journal_rows(plan_prefix="rollout-", limit=2000)
    if not rows:
        return None
    key = rows[-1]["plan_checksum"]
    mine = [r for r in rows if r["plan_checksum"] == key]
    if any(r["action_id"] == "end" for r in mine):
        return None
    head = next((r for r in mine if r["action_id"] == "plan"), None)
    if head is None:
        full = store.journal_rows(plan_checksum=key, limit=100000)
        head = next((r for r in full if r["action_id"] == "plan"), None)
    if head is None:
        return None
    return RolloutPlan.from_dict(json.loads(head["message"])["plan"])


def _aws(fn: Any, op: str, region: str, **kw: Any) -> Any:
    try:
        return fn(**kw)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, op, region) from None


class Runner:
    def __init__(
        self,
        conn: Connector,
        store: Store,
        plan: RolloutPlan,
        opts: Options,
        progress: Progress | None = None,
    ) -> None:
        self.conn, self.store, self.plan, self.opts = conn, store, plan, opts
        self.journal = Journal(store, plan)
        self.progress = progress or (lambda _e: None)
        self.out = Outcome(plan.rollout_id)
        self.refresh_ids: dict[str, str] = {}

    # ---------------------------------------------------------------- AWS helpers
    def _ec2(self, x: GroupChange | TemplateChange) -> Any:
        return self.conn.client("ec2", x.region, x.role_arn)

    def _asg(self, g: GroupChange) -> Any:
        return self.conn.client("autoscaling", g.region, g.role_arn)

    def _key(self, g: GroupChange) -> str:
        return f"{g.account}/{g.region}/{g.asg}"

    def _new_image(self, x: GroupChange | TemplateChange) -> str:
        return self.plan.new_images[f"{x.account}/{x.region}"]

    def _description(self) -> str:
        p = self.plan
        return (
            f"amictl rollout {p.rollout_id}: {p.family} {p.new_version or ''} (channel {p.channel})"
        )

    def _template_version(self, tc: TemplateChange) -> int:
        """Make (or find again, on resume) the version with the channel's image; make it default."""
        ec2 = self._ec2(tc)
        desc = self._description()
        found = None
        pages = ec2.get_paginator("describe_launch_template_versions").paginate(
            LaunchTemplateId=tc.template_id
        )
        try:
            for page in pages:
                for v in page.get("LaunchTemplateVersions", []):
                    if v.get("VersionDescription") == desc:
                        found = int(v["VersionNumber"])
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, "DescribeLaunchTemplateVersions", tc.region) from None
        if found is None:
            resp = _aws(
                ec2.create_launch_template_version,
                "CreateLaunchTemplateVersion",
                tc.region,
                LaunchTemplateId=tc.template_id,
                SourceVersion=str(tc.old_default),
                VersionDescription=desc,
                LaunchTemplateData={"ImageId": self._new_image(tc)},
            )
            found = int(resp["LaunchTemplateVersion"]["VersionNumber"])
        _aws(
            ec2.modify_launch_template,
            "ModifyLaunchTemplate",
            tc.region,
            LaunchTemplateId=tc.template_id,
            DefaultVersion=str(found),
        )
        return found

    def _restore_default(self, tc: TemplateChange) -> None:
        _aws(
            self._ec2(tc).modify_launch_template,
            "ModifyLaunchTemplate",
            tc.region,
            LaunchTemplateId=tc.template_id,
            DefaultVersion=str(tc.old_default),
        )

    def _refreshes(self, g: GroupChange) -> list[dict[str, Any]]:
        resp = _aws(
            self._asg(g).describe_instance_refreshes,
            "DescribeInstanceRefreshes",
            g.region,
            AutoScalingGroupName=g.asg,
        )
        return list(resp.get("InstanceRefreshes", []))

    def _refresh(self, g: GroupChange, refresh_id: str) -> dict[str, Any]:
        for r in self._refreshes(g):
            if r.get("InstanceRefreshId") == refresh_id:
                return r
        raise AmictlError(f"instance refresh {refresh_id} of {g.asg} is gone")

    def _start(self, g: GroupChange, version: str | None, canary: bool) -> str:
        """StartInstanceRefresh; an active one (a resumed run's) is taken over."""
        prefs: dict[str, Any] = {
            "MinHealthyPercentage": self.plan.min_healthy,
            "SkipMatching": True,
        }
        if canary and self.plan.canary < 100:
            prefs["CheckpointPercentages"] = [self.plan.canary, 100]
            prefs["CheckpointDelay"] = self.plan.canary_wait
        kw: dict[str, Any] = {"AutoScalingGroupName": g.asg, "Preferences": prefs}
        if version is not None:
            kw["DesiredConfiguration"] = {
                "LaunchTemplate": {"LaunchTemplateId": g.template_id, "Version": version}
            }
            if canary and g.mode == PINNED:
                prefs["AutoRollback"] = True
        try:
            return str(self._asg(g).start_instance_refresh(**kw)["InstanceRefreshId"])
        except ClientError as exc:
            if error_code(exc) == "InstanceRefreshInProgress":
                active = [r for r in self._refreshes(g) if r.get("Status") in ACTIVE]
                if active:
                    return str(active[0]["InstanceRefreshId"])
            raise aws_error(exc, "StartInstanceRefresh", g.region) from None
        except BotoCoreError as exc:
            raise aws_error(exc, "StartInstanceRefresh", g.region) from None

    # ---------------------------------------------------------------- following
    def _follow(
        self, groups: dict[str, tuple[GroupChange, str]], phase: str
    ) -> dict[str, dict[str, Any]]:
        """Poll every refresh until each has ended (or the timeout); the last answer of each."""
        last: dict[str, dict[str, Any]] = {}
        started = time.monotonic()
        while True:
            pending = 0
            for key, (g, rid) in groups.items():
                if key in last and last[key].get("Status") not in ACTIVE:
                    continue
                r = self._refresh(g, rid)
                last[key] = r
                self.progress(
                    {
                        "phase": phase,
                        "asg": g.asg,
                        "status": r.get("Status"),
                        "percent": r.get("PercentageComplete", 0),
                        "reason": r.get("StatusReason"),
                        "rollback": r.get("RollbackDetails"),
                    }
                )
                if r.get("Status") in ACTIVE:
                    pending += 1
            if not pending:
                return last
            if time.monotonic() - started > self.opts.timeout:
                for key in groups:
                    if last[key].get("Status") in ACTIVE:
                        last[key] = {**last[key], "Status": "TimedOut"}
                return last
            if interrupts.sleep(self.opts.poll):
                interrupts.check()

    # ---------------------------------------------------------------- the run
    def run(self) -> Outcome:
        p = self.plan
        done = self.journal.states()
        keys = sorted({f"{x.account}/{x.region}" for x in p.groups})
        with ExitStack() as stack:
            try:
                stack.enter_context(self.store.lock(keys, owner=f"rollout {p.rollout_id}"))
            except SafetyError:
                if "lt0" not in done and "rf0" not in done:  # nothing done: not resumable
                    self.journal.write("end", "end", None, "skipped", outcome="lock refused")
                raise
            try:
                with interrupts.cooperative():
                    return self._run(done)
            except Interrupted:
                self.journal.write("interrupted", "note", None, "interrupted")
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, done: dict[str, tuple[str, dict[str, Any]]]) -> Outcome:
        p = self.plan
        failed = done.get("failure", ("", {}))[0] == "noted"
        # 1. template versions, made default
        for i, tc in enumerate(p.templates):
            aid = f"lt{i}"
            if tc.follows_ssm:
                continue
            st, msg = done.get(aid, ("", {}))
            if st == "done":
                tc.new_version = int(msg["version"])
                continue
            interrupts.check()
            self.journal.write(aid, "lt-version", tc, "intended", old_default=tc.old_default)
            tc.new_version = self._template_version(tc)
            self.journal.write(
                aid, "lt-version", tc, "done", version=tc.new_version, old_default=tc.old_default
            )
        by_tid = {(t.account, t.region, t.template_id): t for t in p.templates}
        # 2. one refresh per group, a checkpoint at the canary percentage
        running: dict[str, tuple[GroupChange, str]] = {}
        for i, g in enumerate(p.groups):
            aid = f"rf{i}"
            st, msg = done.get(aid, ("", {}))
            if st == "done":
                running[self._key(g)] = (g, msg["refresh_id"])
                continue
            if failed:
                continue
            interrupts.check()
            tc = by_tid[(g.account, g.region, g.template_id)]
            version = (
                None
                if g.mode == FOLLOWS_SSM
                else (str(tc.new_version) if g.mode == PINNED else g.spec_version)
            )
            self.journal.write(aid, "refresh", g, "intended", version=version)
            rid = self._start(g, version, canary=True)
            self.journal.write(aid, "refresh", g, "done", refresh_id=rid, version=version)
            running[self._key(g)] = (g, rid)
        for key, (_g, rid) in running.items():
            self.out.groups[key] = {"refresh_id": rid, "status": "started", "detail": ""}
        if not self.opts.wait and not failed:
            self.out.status = "started"
            self.journal.write("end", "end", None, "started")
            return self.out
        # 3. follow
        last = {} if failed else self._follow(running, "rollout")
        bad = {k: r for k, r in last.items() if r.get("Status") != "Successful"}
        if not bad and not failed:
            for key in last:
                self.out.groups[key].update(status="succeeded", detail="refresh Successful")
            self.out.status = "succeeded"
            self.journal.write("end", "end", None, "done", outcome="succeeded")
            return self.out
        if not failed:
            why = "; ".join(
                f"{running[k][0].asg}: {r.get('Status')} {r.get('StatusReason') or ''}".strip()
                for k, r in bad.items()
            )
            self.journal.write("failure", "note", None, "noted", reason=why)
        return self._rollback(running, last, done)

    def _rollback(
        self,
        running: dict[str, tuple[GroupChange, str]],
        last: dict[str, dict[str, Any]],
        done: dict[str, tuple[str, dict[str, Any]]],
    ) -> Outcome:
        """Every group back to what it ran before; template defaults restored."""
        p = self.plan
        # a. active refreshes: rolled back (numbered versions) or cancelled
        ended: dict[str, tuple[GroupChange, str]] = {}
        for key, (g, rid) in running.items():
            r = last.get(key) or self._refresh(g, rid)
            if r.get("Status") in ACTIVE or r.get("Status") == "TimedOut":
                live = self._refresh(g, rid)
                if live.get("Status") in ("Pending", "InProgress"):
                    try:
                        if g.mode == PINNED:
                            _aws(
                                self._asg(g).rollback_instance_refresh,
                                "RollbackInstanceRefresh",
                                g.region,
                                AutoScalingGroupName=g.asg,
                            )
                        else:
                            _aws(
                                self._asg(g).cancel_instance_refresh,
                                "CancelInstanceRefresh",
                                g.region,
                                AutoScalingGroupName=g.asg,
                            )
                    except AmictlError as exc:
                        if "ActiveInstanceRefreshNotFound" not in str(getattr(exc, "code", "")):
                            raise
                ended[key] = (g, rid)
        final = dict(last)
        if ended:
            final.update(self._follow(ended, "stopping"))
        # b. template defaults back to the recorded old ones
        for i, tc in enumerate(p.templates):
            aid = f"rd{i}"
            if tc.follows_ssm or done.get(aid, ("",))[0] == "done":
                continue
            self.journal.write(aid, "restore-default", tc, "intended", default=tc.old_default)
            self._restore_default(tc)
            self.journal.write(aid, "restore-default", tc, "done", default=tc.old_default)
        # c. groups not rolled back by Auto Scaling: a refresh to their previous version
        restore: dict[str, tuple[GroupChange, str]] = {}
        for i, g in enumerate(p.groups):
            key = self._key(g)
            r = final.get(key, {})
            st = r.get("Status")
            self.out.groups.setdefault(key, {"refresh_id": None, "status": "", "detail": ""})
            if st == "RollbackSuccessful":
                self.out.groups[key].update(
                    status="rolled back", detail="RollbackInstanceRefresh: RollbackSuccessful"
                )
                continue
            if g.mode == FOLLOWS_SSM:
                self.out.groups[key].update(
                    status="not rolled back",
                    detail="its template follows the channel: `amictl rollback "
                    f"{p.family} --channel {p.channel}`, then a refresh",
                )
                continue
            aid = f"rs{i}"
            st_j, msg = done.get(aid, ("", {}))
            if st_j == "done":
                restore[key] = (g, msg["refresh_id"])
                continue
            if key not in running:  # never started: nothing to undo
                self.out.groups[key].update(status="not started", detail="")
                continue
            self.journal.write(aid, "restore-refresh", g, "intended", version=g.spec_version)
            rid = self._start(g, g.spec_version, canary=False)
            self.journal.write(aid, "restore-refresh", g, "done", refresh_id=rid)
            restore[key] = (g, rid)
        status = "rolled-back"
        if restore:
            for key, r in self._follow(restore, "restoring").items():
                good = r.get("Status") == "Successful"
                detail = f"previous version restored, refresh {r.get('Status')}"
                self.out.groups[key].update(
                    status="rolled back" if good else "rollback failed", detail=detail
                )
                if not good:
                    status = "rollback-failed"
        for key, r in final.items():  # how each group's rollout refresh itself ended
            if key in self.out.groups:
                self.out.groups[key]["refresh"] = r.get("Status")
                self.out.groups[key]["reason"] = r.get("StatusReason")
        if any(v["status"] == "not rolled back" for v in self.out.groups.values()):
            status = "rollback-failed"
        self.out.status = status
        self.journal.write("end", "end", None, "failed", outcome=status)
        return self.out


def execute(
    conn: Connector,
    store: Store,
    plan: RolloutPlan,
    opts: Options,
    progress: Progress | None = None,
) -> Outcome:
    return Runner(conn, store, plan, opts, progress).run()


__all__ = ["DEFAULT", "Options", "Outcome", "execute", "resumable", "save_plan"]
