"""Waiting for an instance to be SSM-managed, and running recipe steps with Run Command.

botocore has no waiter for DescribeInstanceInformation, and its ``command_executed``
waiter neither reports the intermediate statuses a bake streams nor enforces the
step's own timeout (cancelling the command when it is exceeded), so both waits are
polls here; each pause wakes at once on Ctrl-C (``interrupts.sleep``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import botocore.exceptions

from .. import interrupts
from ..aws.session import Connector, Target, aws_error, error_code
from ..errors import AmictlError
from .recipe import Step

Progress = Callable[[dict[str, Any]], None]

# GetCommandInvocation statuses that end an invocation (SSM API reference, CommandInvocation).
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut"}
OUTPUT_LIMIT = 24000  # what GetCommandInvocation returns at most of stdout (and of stderr)


@dataclass
class Waits:
    """Pauses between polls (seconds). AWS defaults; tests and the demo use tiny ones."""

    poll: float = 5.0  # GetCommandInvocation, DescribeInstanceInformation
    waiter_delay: int = 15  # botocore waiters: instance running, image available
    grace: float = 60.0  # extra time given to a step past its timeout before cancelling

    @classmethod
    def fast(cls) -> Waits:
        return cls(poll=0.05, waiter_delay=1, grace=0.5)


@dataclass
class StepResult:
    phase: str  # provision | test
    name: str
    document: str
    status: str  # Success | Failed | TimedOut | Cancelled | Interrupted
    response_code: int | None
    output: str
    error: str
    seconds: float
    command_id: str | None

    @property
    def ok(self) -> bool:
        return self.status == "Success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wait_managed(
    conn: Connector,
    target: Target,
    instance_id: str,
    timeout: float,
    waits: Waits,
) -> float:
    """Seconds until the instance is an SSM managed node (PingStatus Online)."""
    ssm = conn.client("ssm", target.region, target.role_arn)
    start = time.monotonic()
    while True:
        try:
            pages = ssm.get_paginator("describe_instance_information").paginate(
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
            )
            online = [
                i
                for p in pages
                for i in p.get("InstanceInformationList", [])
                if i.get("InstanceId") == instance_id and i.get("PingStatus") == "Online"
            ]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise aws_error(exc, "DescribeInstanceInformation", target.region) from None
        if online:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AmictlError(
                f"{instance_id} did not become an SSM managed node within {timeout:.0f} s",
                hint="it needs the SSM agent, an instance profile with "
                "AmazonSSMManagedInstanceCore, and a route to the SSM endpoints",
            )
        interrupts.sleep(waits.poll)
        interrupts.check()


def _invocation(ssm: Any, target: Target, command_id: str, instance_id: str) -> dict[str, Any]:
    try:
        return dict(ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id))
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "InvocationDoesNotExist":  # just sent: not visible yet
            return {"Status": "Pending"}
        raise aws_error(exc, "GetCommandInvocation", target.region) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error(exc, "GetCommandInvocation", target.region) from None


def _cancel(ssm: Any, command_id: str, instance_id: str) -> None:
    # it may have ended meanwhile; the instance is terminated anyway
    with contextlib.suppress(botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
        ssm.cancel_command(CommandId=command_id, InstanceIds=[instance_id])


def run_step(
    conn: Connector,
    target: Target,
    instance_id: str,
    step: Step,
    phase: str,
    comment: str,
    waits: Waits,
    progress: Progress,
) -> StepResult:
    """SendCommand, then poll until the invocation ends or the step's timeout passes
    (then CancelCommand: reported TimedOut). A stop request cancels it and raises
    ``Interrupted`` after the command is cancelled."""
    ssm = conn.client("ssm", target.region, target.role_arn)
    start = time.monotonic()
    try:
        resp = ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName=step.document,
            Parameters=step.parameters,
            Comment=comment[:100],
            TimeoutSeconds=max(30, min(step.timeout, 2592000)),
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise aws_error(exc, "SendCommand", target.region) from None
    command_id = str(resp["Command"]["CommandId"])
    last = ""
    inv: dict[str, Any] = {}
    while True:
        inv = _invocation(ssm, target, command_id, instance_id)
        status = str(inv.get("Status") or "Pending")
        if status != last:
            progress(
                {
                    "event": "step-status",
                    "phase": phase,
                    "step": step.name,
                    "status": status,
                    "command_id": command_id,
                }
            )
            last = status
        if status in TERMINAL:
            break
        elapsed = time.monotonic() - start
        if elapsed > step.timeout + waits.grace:
            _cancel(ssm, command_id, instance_id)
            inv = {**inv, "Status": "TimedOut", "StatusDetails": "amictl: step timeout"}
            progress(
                {"event": "step-status", "phase": phase, "step": step.name, "status": "TimedOut"}
            )
            break
        if interrupts.sleep(waits.poll):
            _cancel(ssm, command_id, instance_id)
            interrupts.check()
    return StepResult(
        phase=phase,
        name=step.name,
        document=step.document,
        status=str(inv.get("Status")),
        response_code=inv.get("ResponseCode"),
        output=str(inv.get("StandardOutputContent") or "")[:OUTPUT_LIMIT],
        error=str(inv.get("StandardErrorContent") or "")[:OUTPUT_LIMIT],
        seconds=round(time.monotonic() - start, 3),
        command_id=command_id,
    )
