"""Carry out a rollout plan: new launch-template versions made default, one instance
refresh per group with a checkpoint at the canary percentage, and on failure a rollback.

Journaled in the state store's journal (plan key ``rollout-<id>``) before and after every
AWS call that changes something, under the apply lock of each account/region, so that
``amictl rollout --resume`` carries on after Ctrl-C (exit 130), SIGTERM (143) or a kill
without repeating a step: a launch-template version is found again by its description
(which names the rollout), a refresh by DescribeInstanceRefreshes.

Each new template version is built on the version the group launches (``SourceVersion``)
with only the ImageId changed. A refresh is followed only when this rollout journaled its
id (StartInstanceRefresh's answer, written before following it); a running refresh whose
id was not journaled (someone else's, or one a kill lost) is refused, never guessed. A
refresh that cannot be started rolls the whole rollout back (once something changed), and
a resume first re-checks the image (``check_channel_image``) and the channel: refused, the
rollout is rolled back.

A failure is all or nothing: when any group's refresh fails, is cancelled or does not end
within the timeout, every group of the rollout goes back to what it ran before. For a
group on a numbered template version, ``AutoRollback`` (and ``RollbackInstanceRefresh``
while a refresh is active) does it; otherwise (``$Default`` / ``$Latest``, which AWS
cannot roll back) the previous default version is restored, for ``$Latest`` a copy of the
previous latest version made the latest again, and a refresh to it started. A group whose
template resolves the channel's parameter cannot go back without changing the channel:
it is reported ``not rolled back``. The family's channel is never changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import interrupts
from ..aws.session import Connector, Target, aws_error, error_code
from ..errors import AmictlError, Interrupted, SafetyError
from ..state.store import Store
from .journal import Journal, check_conflicts, refuse_unsafe
from .plan import (
    ACTIVE,
    DEFAULT,
    FOLLOWS_SSM,
    LATEST,
    PINNED,
    GroupChange,
    RolloutPlan,
    TemplateChange,
    channel_image,
    check_channel_image,
)

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
    poll: float = 15.0  # at most this many seconds between DescribeInstanceRefreshes calls
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
        self.before: dict[str, tuple[str, dict[str, Any], str]] = {}

    # ---------------------------------------------------------------- AWS helpers
    def _ec2(self, x: GroupChange | TemplateChange) -> Any:
        return self.conn.client("ec2", x.region, x.role_arn)

    def _asg(self, g: GroupChange) -> Any:
        return self.conn.client("autoscaling", g.region, g.role_arn)

    def _key(self, g: GroupChange) -> str:
        return f"{g.account}/{g.region}/{g.asg}"

    def _new_image(self, x: GroupChange | TemplateChange) -> str:
        return self.plan.new_images[f"{x.account}/{x.region}"]

    def _description(self, source: int | None = None) -> str:
        p = self.plan
        text = (
            f"amictl rollout {p.rollout_id}: {p.family} {p.new_version or ''} (channel {p.channel})"
        )
        return (text + (f" on version {source}" if source is not None else ""))[:255]

    def _find_version(self, tc: TemplateChange, desc: str) -> int | None:
        found = None
        pages = (
            self._ec2(tc)
            .get_paginator("describe_launch_template_versions")
            .paginate(LaunchTemplateId=tc.template_id)
        )
        try:
            for page in pages:
                for v in page.get("LaunchTemplateVersions", []):
                    if v.get("VersionDescription") == desc:
                        found = int(v["VersionNumber"])
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, "DescribeLaunchTemplateVersions", tc.region) from None
        return found

    def _version_on(self, tc: TemplateChange, source: int, desc: str, data: dict[str, Any]) -> int:
        """The version ``desc`` names (made by an interrupted run), else a new one built on
        ``source`` with ``data`` overlaid."""
        found = self._find_version(tc, desc)
        if found is not None:
            return found
        resp = _aws(
            self._ec2(tc).create_launch_template_version,
            "CreateLaunchTemplateVersion",
            tc.region,
            LaunchTemplateId=tc.template_id,
            SourceVersion=str(source),
            VersionDescription=desc,
            LaunchTemplateData=data,
        )
        return int(resp["LaunchTemplateVersion"]["VersionNumber"])

    def _template_versions(self, tc: TemplateChange) -> None:
        """Per version a group launches, one with the channel's image built on it (the one
        on the latest last); the one on the default made default."""
        for src in tc.sources:
            if str(src) not in tc.new_versions:
                tc.new_versions[str(src)] = self._version_on(
                    tc, src, self._description(src), {"ImageId": self._new_image(tc)}
                )
        if tc.makes_default:
            tc.new_version = tc.new_versions[str(tc.old_default)]
            self._set_default(tc, tc.new_version)

    def _set_default(self, tc: TemplateChange, version: int) -> None:
        _aws(
            self._ec2(tc).modify_launch_template,
            "ModifyLaunchTemplate",
            tc.region,
            LaunchTemplateId=tc.template_id,
            DefaultVersion=str(version),
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

    def _desired(self, g: GroupChange, version: str | None) -> dict[str, Any] | None:
        if version is None:
            return None
        return {"LaunchTemplate": {"LaunchTemplateId": g.template_id, "Version": version}}

    def _mine(self, g: GroupChange, version: str | None, aid: str) -> str | None:
        """The refresh this rollout journaled for ``aid`` (the InstanceRefreshId that
        StartInstanceRefresh returned), if any. A refresh is never guessed from its start
        time or desired configuration: when a kill lost the id, a running refresh is
        refused as someone else's."""
        st, msg, _at = self.before.get(aid, ("", {}, ""))
        rid = msg.get("refresh_id") if st in ("done", "started") else None
        return str(rid) if rid else None

    def _start(self, g: GroupChange, version: str | None, canary: bool, aid: str = "") -> str:
        """StartInstanceRefresh, or this rollout's own refresh found again; an active
        refresh this rollout did not start is refused, never taken over."""
        mine = self._mine(g, version, aid) if aid else None
        if mine is not None:
            return mine
        prefs: dict[str, Any] = {
            "MinHealthyPercentage": self.plan.min_healthy,
            "SkipMatching": True,
        }
        if canary and self.plan.canary < 100:
            prefs["CheckpointPercentages"] = [self.plan.canary, 100]
            prefs["CheckpointDelay"] = self.plan.canary_wait
        kw: dict[str, Any] = {"AutoScalingGroupName": g.asg, "Preferences": prefs}
        desired = self._desired(g, version)
        if desired is not None:
            kw["DesiredConfiguration"] = desired
            if canary and g.mode == PINNED:
                prefs["AutoRollback"] = True
        try:
            return str(self._asg(g).start_instance_refresh(**kw)["InstanceRefreshId"])
        except ClientError as exc:
            if error_code(exc) == "InstanceRefreshInProgress":
                active = [r for r in self._refreshes(g) if r.get("Status") in ACTIVE]
                rid = active[0].get("InstanceRefreshId") if active else "?"
                raise SafetyError(
                    f"{g.asg} has instance refresh {rid} in progress that rollout "
                    f"{self.plan.rollout_id} did not start: refusing to take it over",
                    hint="wait for it to end or cancel it, then "
                    f"`amictl rollout --resume {self.plan.rollout_id}`",
                ) from None
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
        pause = 1.0  # 1, 2, 4, 8 s ... up to --poll: a short refresh is seen to end soon
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
            if interrupts.sleep(min(pause, self.opts.poll)):
                interrupts.check()
            pause *= 2

    # ---------------------------------------------------------------- the run
    def run(self) -> Outcome:
        p = self.plan
        self.before = self.journal.rows()
        done = {k: (st, msg) for k, (st, msg, _at) in self.before.items()}
        fresh = not any(k[:2] in ("lt", "rf") for k in done)
        keys = sorted({f"{x.account}/{x.region}" for x in p.groups})
        with ExitStack() as stack:
            try:
                stack.enter_context(self.store.lock(keys, owner=f"rollout {p.rollout_id}"))
            except SafetyError:
                if fresh:  # nothing done: not resumable
                    self.journal.write("end", "end", None, "skipped", outcome="lock refused")
                raise
            if fresh:
                try:
                    refuse_unsafe(p)
                    check_conflicts(self.store, p, self.conn)
                except AmictlError as exc:
                    self.journal.write("end", "end", None, "skipped", outcome=exc.message[:200])
                    raise
            try:
                with interrupts.cooperative():
                    if not fresh and done.get("failure", ("",))[0] != "noted":
                        refused = self._recheck()
                        if refused is not None:
                            return self._refuse_resume(refused, done)
                    return self._run(done)
            except Interrupted as exc:
                self.journal.write("interrupted", "note", None, "interrupted")
                exc.hint = (
                    f"the refreshes go on in AWS: carry rollout {p.rollout_id} on (or roll it "
                    f"back) with `amictl rollout --resume {p.rollout_id}`"
                )
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _recheck(self) -> AmictlError | None:
        """On resume: the refusal the plan applies (``check_channel_image``, hence
        ``launch.check_launchable``), re-run live on the image being rolled out, and the
        channel must still name it (a revoke or rollback moves it back)."""
        p = self.plan
        for key, image in sorted(p.new_images.items()):
            account, region = key.split("/", 1)
            role = next((x.role_arn for x in p.groups if f"{x.account}/{x.region}" == key), None)
            t = Target(account, region, role)
            try:
                now = channel_image(self.conn, t, p.family, p.channel)
                if now != image:
                    raise SafetyError(
                        f"channel {p.channel} of {p.family} in {key} now names {now}, not "
                        f"{image} (revoked or rolled back since): refusing to roll {image} out"
                    )
                check_channel_image(self.conn, t, p.family, p.channel, image)
            except AmictlError as exc:
                return exc
        return None

    def _refuse_resume(
        self, exc: AmictlError, done: dict[str, tuple[str, dict[str, Any]]]
    ) -> Outcome:
        """The image may no longer be rolled out: every group back to what it ran, then
        the refusal (exit 3) with how the rollback went."""
        self.journal.write("failure", "note", None, "noted", reason=exc.message[:500])
        done = {**done, "failure": ("noted", {})}
        out = self._run(done)
        raise SafetyError(
            f"rollout {self.plan.rollout_id} not resumed: {exc.message}; rolled back: "
            f"{out.status} (" + ", ".join(f"{r['asg']} {r['status']}" for r in out.rows()) + ")",
            hint=exc.hint or "see `amictl rollout list`",
        )

    def _version_for(self, g: GroupChange, tc: TemplateChange) -> str | None:
        if g.mode == FOLLOWS_SSM:
            return None
        if g.mode == PINNED:
            return str(tc.new_versions[str(g.source_version)])
        return "$Latest" if g.mode == LATEST else "$Default"

    def _run(self, done: dict[str, tuple[str, dict[str, Any]]]) -> Outcome:
        p = self.plan
        failed = done.get("failure", ("", {}))[0] == "noted"
        # 1. template versions, each built on the version a group launches
        for i, tc in enumerate(p.templates):
            aid = f"lt{i}"
            if not tc.sources:
                continue
            st, msg = done.get(aid, ("", {}))
            if st == "done":
                tc.new_versions = {str(k): int(v) for k, v in msg.get("versions", {}).items()}
                tc.new_version = msg.get("version")
                continue
            interrupts.check()
            self.journal.write(aid, "lt-version", tc, "intended", old_default=tc.old_default)
            self._template_versions(tc)
            self.journal.write(
                aid,
                "lt-version",
                tc,
                "done",
                version=tc.new_version,
                versions=tc.new_versions,
                old_default=tc.old_default,
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
            version = self._version_for(g, by_tid[(g.account, g.region, g.template_id)])
            self.journal.write(aid, "refresh", g, "intended", version=version)
            try:
                rid = self._start(g, version, canary=True, aid=aid)
            except AmictlError as exc:
                if not running and not any(t.sources for t in p.templates):
                    raise  # nothing changed yet: resumable as it is
                if isinstance(exc, SafetyError) and aid in self.before:
                    raise  # a kill lost the id of a refresh maybe ours: refused, left as is
                return self._not_started(g, exc, running, done)
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
            for key, (g, _rid) in running.items():
                tc = by_tid[(g.account, g.region, g.template_id)]
                self.out.groups[key].update(status="succeeded", detail=self._success(g, tc))
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

    def _not_started(
        self,
        g: GroupChange,
        exc: AmictlError,
        running: dict[str, tuple[GroupChange, str]],
        done: dict[str, tuple[str, dict[str, Any]]],
    ) -> Outcome:
        """A group's refresh could not be started (AccessDenied, ValidationError, someone
        else's refresh): the new default would move it with no refresh and no canary, so
        the whole rollout is rolled back, templates first."""
        why = f"{g.asg}: instance refresh not started: {exc.message}"
        self.journal.write("failure", "note", None, "noted", reason=why[:500])
        out = self._rollback(running, {}, done)
        out.groups.setdefault(self._key(g), {"refresh_id": None, "status": "not started"})
        out.groups[self._key(g)]["reason"] = exc.message[:300]
        if isinstance(exc, SafetyError):
            raise SafetyError(
                f"{exc.message}; rollout {self.plan.rollout_id} rolled back: {out.status}",
                hint=exc.hint,
            )
        return out

    def _success(self, g: GroupChange, tc: TemplateChange) -> str:
        image = self._new_image(g)
        if g.mode == FOLLOWS_SSM:
            return f"runs {image}: its template resolves the channel"
        new = tc.new_versions[str(g.source_version)]
        return f"runs {image} on version {new} (version {g.source_version} with only the image changed)"

    def _stop_active(
        self, running: dict[str, tuple[GroupChange, str]], last: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Active refreshes rolled back (numbered versions) or cancelled; how each ended."""
        ended: dict[str, tuple[GroupChange, str]] = {}
        for key, (g, rid) in running.items():
            r = last.get(key) or self._refresh(g, rid)
            if r.get("Status") in ACTIVE or r.get("Status") == "TimedOut":
                live = self._refresh(g, rid)
                if live.get("Status") in ("Pending", "InProgress"):
                    call, op = (
                        (self._asg(g).rollback_instance_refresh, "RollbackInstanceRefresh")
                        if g.mode == PINNED
                        else (self._asg(g).cancel_instance_refresh, "CancelInstanceRefresh")
                    )
                    try:
                        _aws(call, op, g.region, AutoScalingGroupName=g.asg)
                    except AmictlError as exc:
                        if "ActiveInstanceRefreshNotFound" not in str(getattr(exc, "code", "")):
                            raise
                ended[key] = (g, rid)
        final = dict(last)
        if ended:
            final.update(self._follow(ended, "stopping"))
        return final

    def _restore_templates(self, done: dict[str, tuple[str, dict[str, Any]]]) -> None:
        """Template defaults back to the recorded ones; where a group of the rollout
        launches $Latest, a copy of the previous latest version made the latest again."""
        p = self.plan
        for i, tc in enumerate(p.templates):
            if not tc.sources or f"lt{i}" not in done and not tc.new_versions:
                continue
            aid = f"rd{i}"
            if tc.makes_default and done.get(aid, ("",))[0] != "done":
                self.journal.write(aid, "restore-default", tc, "intended", default=tc.old_default)
                self._set_default(tc, tc.old_default)
                self.journal.write(aid, "restore-default", tc, "done", default=tc.old_default)
            aid = f"rl{i}"
            if tc.latest_followed and done.get(aid, ("",))[0] != "done":
                self.journal.write(aid, "restore-latest", tc, "intended", latest=tc.old_latest)
                desc = f"amictl rollout {p.rollout_id}: back to version {tc.old_latest}"
                made = self._version_on(tc, tc.old_latest, desc, {})
                self.journal.write(
                    aid, "restore-latest", tc, "done", latest=tc.old_latest, version=made
                )

    def _rollback(
        self,
        running: dict[str, tuple[GroupChange, str]],
        last: dict[str, dict[str, Any]],
        done: dict[str, tuple[str, dict[str, Any]]],
    ) -> Outcome:
        """Every group back to what it ran before; template defaults restored."""
        p = self.plan
        final = self._stop_active(running, last)
        self._restore_templates(done)
        # groups not rolled back by Auto Scaling: a refresh to their previous version
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
            if key not in running and done.get(f"rs{i}", ("",))[0] != "done":
                # never started: its template is back, nothing to undo
                self.out.groups[key].update(status="not started", detail="runs what it ran")
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
            version = (
                g.spec_version
                if g.mode == PINNED
                else ("$Latest" if g.mode == LATEST else "$Default")
            )
            self.journal.write(aid, "restore-refresh", g, "intended", version=version)
            rid = self._start(g, version, canary=False, aid=aid)
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


def _same(have: dict[str, Any] | None, want: dict[str, Any] | None) -> bool:
    if not have or not want:
        return not have and not want
    a, b = have.get("LaunchTemplate") or {}, want.get("LaunchTemplate") or {}
    return a.get("LaunchTemplateId") == b.get("LaunchTemplateId") and str(a.get("Version")) == str(
        b.get("Version")
    )


def execute(
    conn: Connector,
    store: Store,
    plan: RolloutPlan,
    opts: Options,
    progress: Progress | None = None,
) -> Outcome:
    return Runner(conn, store, plan, opts, progress).run()


__all__ = ["DEFAULT", "Options", "Outcome", "execute"]
