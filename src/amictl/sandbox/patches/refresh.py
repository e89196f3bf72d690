"""Auto Scaling instance refresh, which moto 5.2.5 lacks: Start / Describe / Cancel /
RollbackInstanceRefresh, checkpoints, replacing instances, settable outcomes.

As the Auto Scaling API reference and user guide document it
(https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StartInstanceRefresh.html,
https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-rollback.html):

* StartInstanceRefresh (Strategy ``Rolling``): one active refresh per group
  (``InstanceRefreshInProgress`` otherwise); ``DesiredConfiguration.LaunchTemplate``
  (id or name, version); ``Preferences``: ``MinHealthyPercentage`` (default 90) sets how
  many instances are replaced at a time, ``CheckpointPercentages`` (ascending, 1..100),
  ``CheckpointDelay`` (seconds, default 3600), ``SkipMatching``, ``AutoRollback``.
* Time runs ``SPEED`` (1000) times faster than AWS's: a refresh moves on its own, one step
  (Pending -> InProgress, then one batch of instances terminated and replaced by instances
  of the desired launch template version) every ``WARMUP`` (300) AWS seconds, 0.3 s real,
  and waits at a checkpoint ``CheckpointDelay`` AWS seconds (600 s: 0.6 s real;
  StatusReason says so). DescribeInstanceRefreshes reports how far it got by then, and also advances it
  one step itself (a client polling without pause sees every step). When all are replaced
  the group takes the desired configuration (``Successful``).
* RollbackInstanceRefresh: only while the refresh is active, and only when it has a desired
  configuration and the group used a numbered launch template version
  (``IrreversibleInstanceRefresh`` otherwise, as AWS); the instances replaced so far are
  replaced again from the group's configuration before the refresh
  (``RollbackInProgress`` -> ``RollbackSuccessful``). ``AutoRollback`` does the same when the
  refresh fails. CancelInstanceRefresh: ``Cancelling`` -> ``Cancelled``, instances replaced
  so far stay. No active refresh: ``ActiveInstanceRefreshNotFound``.
* The outcome of a refresh is chosen when it starts, from ``OUTCOMES`` (control API
  ``/_amictl/instance-refresh``) by group name, else ``*``: ``succeed`` (default), ``fail``
  at N percent, ``hang`` at N percent (stays InProgress until cancelled or rolled back);
  ``count`` limits an outcome to the next N refreshes it matches.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow

from ...errors import InputError
from .helpers import err, patch

OUTCOMES: dict[str, dict[str, Any]] = {}
REFRESHES: dict[tuple[str, str, str], list[Refresh]] = {}
_lock = threading.RLock()

ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress"}
# One sandbox second is SPEED AWS seconds (docs/sandbox.md, "Instance refresh timing").
SPEED = 1000.0
WARMUP = 300.0  # AWS seconds a batch takes to launch and warm up (one step)
STEP = dt.timedelta(seconds=WARMUP / SPEED)
CONTROL_KEYS = {"asg", "outcome", "at", "reason", "count", "reset"}
OUTCOME_KINDS = ("succeed", "fail", "hang")


def control(data: dict[str, Any]) -> dict[str, Any]:
    """``/_amictl/instance-refresh`` POST: ``{"asg": NAME|"*", "outcome": succeed|fail|hang,
    "at": PERCENT, "reason": TEXT, "count": N}`` (``count``: for the next N refreshes it
    matches, then gone; default every one) or ``{"reset": true}``. Unknown keys and bad values are
    refused (400)."""
    unknown = sorted(set(data) - CONTROL_KEYS)
    if unknown:
        raise InputError(
            f"unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(CONTROL_KEYS))}",
            key="instance-refresh",
        )
    with _lock:
        if data.get("reset"):
            OUTCOMES.clear()
            if len(data) == 1:
                return {"outcomes": dict(OUTCOMES)}
        kind = data.get("outcome", "succeed")
        if kind not in OUTCOME_KINDS:
            raise InputError(
                f"outcome {kind!r} is not one of {', '.join(OUTCOME_KINDS)}", key="outcome"
            )
        at = data.get("at", 0)
        if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at <= 100:
            raise InputError(f"at must be a whole percentage 0..100, not {at!r}", key="at")
        asg = data.get("asg", "*")
        if not isinstance(asg, str) or not asg:
            raise InputError("asg must be a group name or '*'", key="asg")
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InputError("reason must be a string", key="reason")
        count = data.get("count")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise InputError(f"count must be a whole number >= 1, not {count!r}", key="count")
        OUTCOMES[asg] = {"outcome": kind, "at": at, "reason": reason, "count": count}
        return {"outcomes": dict(OUTCOMES)}


@dataclass
class Refresh:
    id: str
    group: str
    start: dt.datetime
    prefs: dict[str, Any]
    desired: dict[str, Any] | None
    outcome: dict[str, Any]
    old_version: str | None  # the group's launch template version before the refresh
    old_template: str | None
    status: str = "Pending"
    reason: str | None = None
    end: dt.datetime | None = None
    total: int = 0
    todo: list[str] = field(default_factory=list)  # instance ids still to replace
    new: list[str] = field(default_factory=list)  # instances this refresh launched
    waiting_until: dt.datetime | None = None
    passed: list[int] = field(default_factory=list)  # checkpoints reached
    rollback: dict[str, Any] | None = None
    rollback_todo: list[str] = field(default_factory=list)
    rollback_total: int = 0
    last_step: dt.datetime | None = None  # when the refresh last moved on its own

    @property
    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.status == "Successful" else 0
        return (self.total - len(self.todo)) * 100 // self.total

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "StartTime": self.start,
            "PercentageComplete": self.percent,
            "InstancesToUpdate": len(self.todo),
            "Preferences": self.prefs,
            "Strategy": "Rolling",
        }
        if self.reason:
            out["StatusReason"] = self.reason
        if self.end:
            out["EndTime"] = self.end
        if self.desired:
            out["DesiredConfiguration"] = self.desired
        if self.rollback is not None:
            done = self.rollback_total - len(self.rollback_todo)
            out["RollbackDetails"] = {
                **self.rollback,
                "PercentageCompleteOnRollback": (
                    done * 100 // self.rollback_total if self.rollback_total else 100
                ),
                "InstancesToUpdateOnRollback": len(self.rollback_todo),
            }
        return out


def _now() -> dt.datetime:
    return utcnow().replace(tzinfo=dt.UTC)


def _err(code: str, message: str) -> Exception:
    from moto.autoscaling.exceptions import AutoscalingClientError

    return AutoscalingClientError(code, message)


def _group(backend: Any, name: str) -> Any:
    from moto.autoscaling.exceptions import ValidationError

    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    return group


def _template(group: Any, spec: dict[str, Any] | None) -> tuple[Any, str]:
    """(launch template, version string) of a desired configuration, else the group's."""
    ec2 = group.ec2_backend
    if spec:
        lt = spec.get("LaunchTemplate") or {}
        if lt.get("LaunchTemplateId"):
            tmpl = ec2.get_launch_template(lt["LaunchTemplateId"])
        else:
            tmpl = ec2.get_launch_template_by_name(lt.get("LaunchTemplateName"))
        return tmpl, str(lt.get("Version") or "$Default")
    return group.ec2_launch_template, str(group.launch_template_version or "$Default")


def _launch(group: Any, tmpl: Any, version: str) -> str:
    """One instance of the group from a launch template version; its id."""
    from moto.autoscaling.models import ASG_NAME_TAG, InstanceState

    v = tmpl.get_version(version)
    res = group.ec2_backend.run_instances(
        v.image_id,
        1,
        v.user_data,
        v.security_groups,
        instance_type=v.instance_type or "t3.micro",
        tags={"instance": {ASG_NAME_TAG: group.name, **v.instance_tags}},
        placement=group.availability_zones[0],
        launch_config=None,
        launch_template={"LaunchTemplateId": tmpl.id, "Version": str(v.number)},
        is_instance_type_default=False,
    )
    inst = res.instances[0]
    inst.autoscaling_group = group
    group.instance_states.append(InstanceState(inst))
    return str(inst.id)


def _terminate(group: Any, instance_id: str) -> None:
    group.instance_states = [s for s in group.instance_states if s.instance.id != instance_id]
    group.ec2_backend.terminate_instances([instance_id])


def _batch(r: Refresh) -> int:
    healthy = int(r.prefs.get("MinHealthyPercentage", 90))
    return max(1, math.floor(r.total * (100 - healthy) / 100))


def _fail(r: Refresh, reason: str) -> None:
    if r.prefs.get("AutoRollback") and _reversible(r) is None:
        _start_rollback(r, f"Instance refresh failed: {reason}")
        return
    r.status, r.reason, r.end = "Failed", reason, _now()


def _reversible(r: Refresh) -> str | None:
    """Why the refresh cannot be rolled back, or None (API_RollbackInstanceRefresh)."""
    if not r.desired:
        return "there is no desired configuration specified for the instance refresh"
    if r.old_template is None or r.old_version is None:
        return "the group does not use a launch template"
    if not r.old_version.isdigit():
        return f"the group uses the launch template's {r.old_version} version"
    return None


def _start_rollback(r: Refresh, reason: str) -> None:
    r.status, r.reason = "RollbackInProgress", reason
    r.rollback = {"RollbackReason": reason, "RollbackStartTime": _now()}
    r.rollback_todo = list(r.new)
    r.rollback_total = len(r.new)


def _state(r: Refresh) -> tuple[Any, ...]:
    return (r.status, len(r.todo), len(r.rollback_todo), r.waiting_until, r.reason)


def _catch_up(group: Any, r: Refresh, own_step: bool = True) -> None:
    """The steps the refresh took since the last one (one every ``STEP``, after a
    checkpoint's delay); for a DescribeInstanceRefreshes (``own_step``) one more."""
    now = _now()
    last = r.last_step or r.start
    while r.status in ACTIVE:
        due = last + STEP
        if r.waiting_until is not None and due < r.waiting_until:
            due = r.waiting_until
        if due > now:
            break
        before = _state(r)
        _advance(group, r, due)
        last = due
        if _state(r) == before:  # hanging: nothing moves until cancelled or rolled back
            break
    if own_step:
        _advance(group, r, now)
        last = now
    r.last_step = last


def _advance(group: Any, r: Refresh, now: dt.datetime) -> None:
    if r.status not in ACTIVE:
        return
    if r.status == "Pending":
        r.status = "InProgress"
        return
    if r.status == "Cancelling":
        r.status, r.end, r.reason = "Cancelled", now, "Cancelled by the user"
        return
    if r.status == "RollbackInProgress":
        tmpl = group.ec2_backend.get_launch_template(r.old_template)
        for iid in r.rollback_todo[: _batch(r)]:
            _terminate(group, iid)
            _launch(group, tmpl, str(r.old_version))
            r.rollback_todo.remove(iid)
        if not r.rollback_todo:
            r.status, r.end = "RollbackSuccessful", now
            r.reason = "Rollback successful: the group is back on its previous configuration"
        return
    # InProgress
    if r.waiting_until is not None:
        if now < r.waiting_until:
            return
        r.waiting_until, r.reason = None, None
    kind, at = r.outcome.get("outcome", "succeed"), int(r.outcome.get("at") or 0)
    if kind == "hang" and r.percent >= at:
        r.reason = r.outcome.get("reason") or "Waiting for instances to pass health checks"
        return
    if kind == "fail" and r.percent >= at:
        _fail(r, r.outcome.get("reason") or f"Instances failed to pass health checks at {at}%")
        return
    checkpoints = [int(c) for c in r.prefs.get("CheckpointPercentages") or []]
    nxt = next((c for c in checkpoints if c not in r.passed and c > r.percent), 100)
    tmpl, version = _template(group, r.desired)
    n = _batch(r)
    while n > 0 and r.todo and r.percent < nxt:
        iid = r.todo.pop(0)
        _terminate(group, iid)
        r.new.append(_launch(group, tmpl, version))
        n -= 1
    if kind == "fail" and r.percent >= at:
        _fail(r, r.outcome.get("reason") or f"Instances failed to pass health checks at {at}%")
        return
    if not r.todo:
        r.status, r.end, r.reason = "Successful", now, None
        if r.desired and group.ec2_launch_template is not None:
            group.ec2_launch_template = tmpl
            group.launch_template_version = version
            group.provided_launch_template_version = version
        return
    for c in checkpoints:
        if c not in r.passed and r.percent >= c:
            r.passed.append(c)
            delay = float(r.prefs.get("CheckpointDelay", 3600))
            r.waiting_until = now + dt.timedelta(seconds=delay / SPEED)
            r.reason = f"Waiting for checkpoint: {c}% complete, continuing after {delay:.0f} s"


def _take_outcome(name: str) -> dict[str, Any]:
    key = name if name in OUTCOMES else "*" if "*" in OUTCOMES else None
    if key is None:
        return {}
    out = dict(OUTCOMES[key])
    if out.get("count") is not None:
        OUTCOMES[key]["count"] -= 1
        if OUTCOMES[key]["count"] <= 0:
            del OUTCOMES[key]
    return out


def _active(refs: list[Refresh]) -> Refresh | None:
    return next((r for r in reversed(refs) if r.status in ACTIVE), None)


@patch(
    "Auto Scaling instance refresh: Start/Describe/Cancel/RollbackInstanceRefresh, "
    "checkpoints, instances replaced from the desired launch template version, AutoRollback, "
    "outcomes settable through /_amictl/instance-refresh (succeed, fail at N%, hang)"
)
def instance_refresh() -> None:
    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.responses import AutoScalingResponse as R

    def _key(self: Any, name: str) -> tuple[str, str, str]:
        return (self.current_account, self.region, name)

    def start_instance_refresh(self: Any) -> ActionResult:
        params = self._get_params()
        name = params.get("AutoScalingGroupName") or ""
        group = _group(self.autoscaling_backend, name)
        prefs = dict(params.get("Preferences") or {})
        cps = [int(c) for c in prefs.get("CheckpointPercentages") or []]
        if cps and (cps != sorted(set(cps)) or cps[0] < 1 or cps[-1] > 100):
            raise ValidationError("CheckpointPercentages must be ascending values in 1..100")
        mh = int(prefs.setdefault("MinHealthyPercentage", 90))
        if not 0 <= mh <= 100:
            raise ValidationError("MinHealthyPercentage must be between 0 and 100")
        desired = params.get("DesiredConfiguration") or None
        with _lock:
            refs = REFRESHES.setdefault(_key(self, name), [])
            if _active(refs) is not None:
                raise _err(
                    "InstanceRefreshInProgress",
                    f"An Instance Refresh is already in progress and blocks the execution of "
                    f"this Instance Refresh for group {name}.",
                )
            if desired:
                _template(group, desired)[0].get_version(
                    (desired.get("LaunchTemplate") or {}).get("Version") or "$Default"
                )
            if prefs.get("AutoRollback") and not desired:
                raise ValidationError("AutoRollback needs a DesiredConfiguration")
            tmpl = group.ec2_launch_template
            r = Refresh(
                id=str(uuid.uuid4()),
                group=name,
                start=_now(),
                prefs=prefs,
                desired=desired,
                outcome=_take_outcome(name),
                old_template=tmpl.id
                if tmpl is not None and not group.mixed_instances_policy
                else None,
                old_version=group.provided_launch_template_version,
            )
            if r.prefs.get("AutoRollback") and _reversible(r):
                raise _err("IrreversibleInstanceRefresh", f"AutoRollback: {_reversible(r)}")
            wanted = _template(group, desired)
            image = wanted[0].get_version(wanted[1]).image_id if wanted[0] else None
            r.todo = [
                s.instance.id
                for s in group.instance_states
                if not (prefs.get("SkipMatching") and s.instance.image_id == image)
            ]
            r.total = len(r.todo)
            refs.append(r)
        return ActionResult({"InstanceRefreshId": r.id})

    def describe_instance_refreshes(self: Any) -> ActionResult:
        params = self._get_params()
        name = params.get("AutoScalingGroupName") or ""
        group = _group(self.autoscaling_backend, name)
        ids = set(params.get("InstanceRefreshIds") or [])
        with _lock:
            refs = REFRESHES.get(_key(self, name), [])
            active = _active(refs)
            if active is not None:
                _catch_up(group, active)
            found = [r.body() for r in reversed(refs) if not ids or r.id in ids]
        size = int(params.get("MaxRecords") or 50)
        start = int(params.get("NextToken") or 0)
        body: dict[str, Any] = {"InstanceRefreshes": found[start : start + size]}
        if start + size < len(found):
            body["NextToken"] = str(start + size)
        return ActionResult(body)

    def cancel_instance_refresh(self: Any) -> ActionResult:
        name = self._get_param("AutoScalingGroupName") or ""
        group = _group(self.autoscaling_backend, name)
        with _lock:
            r = _active(REFRESHES.get(_key(self, name), []))
            if r is not None:
                _catch_up(group, r, own_step=False)  # where it got to by now
            if r is None or r.status not in ("Pending", "InProgress"):
                raise _err(
                    "ActiveInstanceRefreshNotFound",
                    f"No in progress or pending Instance Refresh found for Auto Scaling group {name}",
                )
            r.status, r.reason = "Cancelling", "Cancelling by the user"
        return ActionResult({"InstanceRefreshId": r.id})

    def rollback_instance_refresh(self: Any) -> ActionResult:
        name = self._get_param("AutoScalingGroupName") or ""
        group = _group(self.autoscaling_backend, name)
        with _lock:
            r = _active(REFRESHES.get(_key(self, name), []))
            if r is not None:
                _catch_up(group, r, own_step=False)  # where it got to by now
            if r is None or r.status not in ("Pending", "InProgress"):
                raise _err(
                    "ActiveInstanceRefreshNotFound",
                    f"No in progress or pending Instance Refresh found for Auto Scaling group {name}",
                )
            why = _reversible(r)
            if why:
                raise _err("IrreversibleInstanceRefresh", f"Cannot roll back: {why}")
            _start_rollback(r, "Rollback started by the user")
        return ActionResult({"InstanceRefreshId": r.id})

    R.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
    R.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
    R.cancel_instance_refresh = cancel_instance_refresh  # type: ignore[attr-defined]
    R.rollback_instance_refresh = rollback_instance_refresh  # type: ignore[attr-defined]


@patch(
    "RunInstances (and Auto Scaling launches) resolve an ImageId of resolve:ssm:NAME[:VERSION] "
    "from a launch template to the SSM parameter's value, as AWS does"
)
def run_instances_resolve_ssm() -> None:
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html
    from moto.ec2.models.instances import InstanceBackend
    from moto.ssm.models import ssm_backends

    orig = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kw: Any) -> Any:
        if isinstance(image_id, str) and image_id.startswith("resolve:ssm:"):
            name, _, selector = image_id[len("resolve:ssm:") :].partition(":")
            ssm = ssm_backends[self.account_id][self.region_name]
            param = ssm.get_parameter(f"{name}:{selector}" if selector else name)
            if param is None:
                raise err(
                    "InvalidParameterValue", f"The SSM parameter {name} of {image_id} was not found"
                )
            image_id = param.value
        return orig(self, image_id, count, *args, **kw)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
