"""SSM behaviours bakes need and moto 5.2.5 lacks: managed instances and Run Command.

* DescribeInstanceInformation: an EC2 instance of the account/region is an SSM managed
  node (PingStatus ``Online``) once it is ``running`` and ``managed_after`` seconds have
  passed since its launch (0 by default), unless it is listed as ``unmanaged`` (ids or
  ``*``) through the control API ``/_amictl/ssm``. Filter ``InstanceIds``, pagination.
* SendCommand refuses instances that are not managed nodes (``InvalidInstanceId``, as
  AWS does), so a caller must wait for the agent first.
* The outcome of each invocation is chosen from ``patches.RUN_COMMAND_OUTCOMES``
  (``/_amictl/run-command``) by key, first match wins: ``comment:GLOB`` (fnmatch on the
  command's Comment, so one step of a bake can be given its own outcome), the instance
  id, ``document:NAME``, ``*``. An outcome has ``status`` (Success, Failed, TimedOut,
  Cancelled), ``response_code``, ``output``, ``error``; ``polls: N`` answers InProgress
  to the first N GetCommandInvocation calls; ``hang: true`` stays InProgress until
  CancelCommand. Nothing really waits.
* CancelCommand (moto has none): pending/in-progress invocations become Cancelled.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow

from .helpers import RUN_COMMAND_OUTCOMES, patch

# What the control API sets: seconds from launch until an instance is managed, and
# instance ids (or "*") that never become managed.
SSM_SETTINGS: dict[str, Any] = {"managed_after": 0.0, "unmanaged": []}
# Per invocation (command id, instance id): InProgress polls still to answer, hang, cancelled.
_LIVE: dict[tuple[str, str], dict[str, Any]] = {}
_lock = threading.Lock()

TERMINAL_DETAILS = {
    "Success": "Success",
    "Failed": "Failed",
    "TimedOut": "Execution Timed Out",
    "Cancelled": "Cancelled",
}


def control(data: dict[str, Any]) -> dict[str, Any]:
    """``/_amictl/ssm`` POST: ``managed_after`` (seconds), ``unmanaged`` (ids or "*"),
    ``reset``."""
    with _lock:
        if data.get("reset"):
            SSM_SETTINGS.update(managed_after=0.0, unmanaged=[])
        if "managed_after" in data:
            SSM_SETTINGS["managed_after"] = float(data["managed_after"])
        if "unmanaged" in data:
            SSM_SETTINGS["unmanaged"] = list(data["unmanaged"] or [])
        return dict(SSM_SETTINGS)


# The body of ``/_amictl/run-command`` (docs/sandbox.md): which invocations, and their outcome.
OUTCOME_KEYS: dict[str, tuple[type, ...]] = {
    "key": (str,),  # comment:GLOB | an instance id | document:NAME | * (default *)
    "status": (str,),  # Success | Failed | TimedOut | Cancelled (default Success)
    "response_code": (int,),  # the exit code (default 0 on Success, else 1)
    "output": (str,),  # StandardOutputContent
    "error": (str,),  # StandardErrorContent
    "polls": (int,),  # answer InProgress to this many GetCommandInvocation calls first
    "hang": (bool,),  # stay InProgress until CancelCommand
    "clear": (bool,),  # forget every outcome set so far
}


def check_outcome(data: Any) -> dict[str, Any]:
    """A ``/_amictl/run-command`` body, checked: ValueError (400) names an unknown key or a
    bad value instead of accepting a body that would have no effect."""
    if not isinstance(data, dict):
        raise ValueError("run-command: the body is a JSON object")
    unknown = sorted(set(data) - set(OUTCOME_KEYS))
    if unknown:
        raise ValueError(
            f"run-command: unknown key(s) {', '.join(unknown)}; the keys are "
            + ", ".join(OUTCOME_KEYS)
        )
    for k, v in data.items():
        types = OUTCOME_KEYS[k]
        if not isinstance(v, types) or (bool not in types and isinstance(v, bool)):
            raise ValueError(f"run-command: {k} must be a {types[0].__name__}, not {v!r}")
    if "status" in data and data["status"] not in TERMINAL_DETAILS:
        raise ValueError(
            f"run-command: status {data['status']!r} is not one of {', '.join(TERMINAL_DETAILS)}"
        )
    if data.get("polls", 0) < 0:
        raise ValueError("run-command: polls must be 0 or more")
    return data


def pick_outcome(comment: str, document: str | None, instance_id: str) -> dict[str, Any]:
    for key, outcome in list(RUN_COMMAND_OUTCOMES.items()):
        if key.startswith("comment:") and fnmatch.fnmatchcase(comment or "", key[8:]):
            return outcome
    return (
        RUN_COMMAND_OUTCOMES.get(instance_id)
        or RUN_COMMAND_OUTCOMES.get(f"document:{document}")
        or RUN_COMMAND_OUTCOMES.get("*")
        or {}
    )


def _managed(instance: Any, now: dt.datetime) -> bool:
    if instance.state != "running":
        return False
    unmanaged = SSM_SETTINGS["unmanaged"]
    if "*" in unmanaged or instance.id in unmanaged:
        return False
    launched = instance.launch_time
    if isinstance(launched, str):
        launched = dt.datetime.fromisoformat(launched.replace("Z", "+00:00"))
    if launched.tzinfo is None:
        launched = launched.replace(tzinfo=dt.UTC)
    return (now - launched).total_seconds() >= float(SSM_SETTINGS["managed_after"])


def _instances(account: str, region: str) -> list[Any]:
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[account][region]
    return [i for r in backend.reservations.values() for i in r.instances]


def _info(instance: Any, now: dt.datetime) -> dict[str, Any]:
    windows = (getattr(instance, "platform", None) or "").lower() == "windows"
    return {
        "InstanceId": instance.id,
        "PingStatus": "Online",
        "LastPingDateTime": now.isoformat(),
        "AgentVersion": "3.3.0.0",
        "IsLatestVersion": True,
        "PlatformType": "Windows" if windows else "Linux",
        "PlatformName": "Microsoft Windows Server" if windows else "Amazon Linux",
        "ResourceType": "EC2Instance",
        "IPAddress": getattr(instance, "private_ip", None) or "10.0.0.1",
        "ComputerName": f"{instance.id}.ec2.internal",
    }


@patch(
    "SSM DescribeInstanceInformation: running instances become managed nodes (after a "
    "settable delay); SendCommand refuses unmanaged ones; CancelCommand; Run Command "
    "outcomes per step (comment globs), InProgress polls, hang, TimedOut"
)
def ssm_managed_instances_and_run_command() -> None:
    from moto.ssm.exceptions import SSMException, ValidationException
    from moto.ssm.models import Command
    from moto.ssm.responses import SimpleSystemManagerResponse as R

    def describe_instance_information(self: Any) -> ActionResult:
        now = utcnow().replace(tzinfo=dt.UTC)
        wanted: set[str] | None = None
        for f in (self._get_param("InstanceInformationFilterList") or []) + (
            self._get_param("Filters") or []
        ):
            key = f.get("key") or f.get("Key")
            values = f.get("valueSet") or f.get("Values") or []
            if key == "InstanceIds":
                wanted = set(values) if wanted is None else wanted & set(values)
            else:
                raise ValidationException(f"the sandbox filters only on InstanceIds, not {key}")
        found = [
            _info(i, now)
            for i in _instances(self.current_account, self.region)
            if (wanted is None or i.id in wanted) and _managed(i, now)
        ]
        found.sort(key=lambda d: d["InstanceId"])
        size = int(self._get_param("MaxResults") or 50)
        start = int(self._get_param("NextToken") or 0)
        page = found[start : start + size]
        body: dict[str, Any] = {"InstanceInformationList": page}
        if start + size < len(found):
            body["NextToken"] = str(start + size)
        return ActionResult(body)

    orig_send = R.send_command

    def send_command(self: Any) -> ActionResult:
        now = utcnow().replace(tzinfo=dt.UTC)
        ids = self._get_param("InstanceIds", []) or []
        by_id = {i.id: i for i in _instances(self.current_account, self.region)}
        bad = [i for i in ids if i not in by_id or not _managed(by_id[i], now)]
        if bad:
            raise SSMException(
                "InvalidInstanceId",
                f"Instances [{', '.join(bad)}] not in a valid state for account "
                f"{self.current_account}",
            )
        return orig_send(self)

    def cancel_command(self: Any) -> ActionResult:
        command = self.ssm_backend.get_command_by_id(self._get_param("CommandId"))
        ids = self._get_param("InstanceIds") or command.instance_ids
        with _lock:
            for iid in ids:
                _LIVE.setdefault((command.command_id, iid), {})["cancelled"] = True
        return ActionResult({})

    def invocation_response(self: Any, instance_id: str, plugin_name: str) -> dict[str, Any]:
        outcome = pick_outcome(self.comment, self.document_name, instance_id)
        status = outcome.get("status", "Success")
        end = self.requested_date_time + dt.timedelta(seconds=1)
        with _lock:
            _LIVE[(self.command_id, instance_id)] = {
                "polls": int(outcome.get("polls", 0)),
                "hang": bool(outcome.get("hang")),
            }
        return {
            "CommandId": self.command_id,
            "InstanceId": instance_id,
            "Comment": self.comment,
            "DocumentName": self.document_name,
            "PluginName": plugin_name,
            "ResponseCode": int(outcome.get("response_code", 0 if status == "Success" else 1)),
            "ExecutionStartDateTime": self.requested_date_time.isoformat(),
            "ExecutionElapsedTime": "PT1S",
            "ExecutionEndDateTime": end.isoformat(),
            "Status": status,
            "StatusDetails": TERMINAL_DETAILS.get(status, status),
            "StandardOutputContent": outcome.get("output", ""),
            "StandardOutputUrl": "",
            "StandardErrorContent": outcome.get("error", ""),
        }

    orig_get = Command.get_invocation

    def get_invocation(self: Any, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
        final = orig_get(self, instance_id, plugin_name)
        with _lock:
            live = _LIVE.get((self.command_id, instance_id), {})
            if live.get("cancelled") and (live.get("hang") or live.get("polls", 0) > 0):
                state = "Cancelled"
            elif live.get("hang"):
                state = "InProgress"
            elif live.get("polls", 0) > 0:
                live["polls"] -= 1
                state = "InProgress"
            else:
                return final
        return {
            **final,
            "Status": state,
            "StatusDetails": "In Progress" if state == "InProgress" else state,
            "ResponseCode": -1,
            "ExecutionEndDateTime": "",
            "StandardOutputContent": ""
            if state == "InProgress"
            else final["StandardOutputContent"],
        }

    R.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]
    R.send_command = send_command  # type: ignore[method-assign]
    R.cancel_command = cancel_command  # type: ignore[attr-defined]
    Command.invocation_response = invocation_response  # type: ignore[method-assign]
    Command.get_invocation = get_invocation  # type: ignore[method-assign]
