"""Spot instance requests and Spot Fleet requests (issue 26), as the EC2 documentation
describes them and moto 5.2.5 does not:

* Terminating the instance of a Spot request (not a fleet's): a persistent request
  returns to ``open`` (it launches again), a one-time request is ``closed``, both with
  status ``instance-terminated-by-user``
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-request-status.html).
  moto left the request ``active`` on a terminated instance.
* CancelSpotInstanceRequests leaves the request listed as ``cancelled`` (its instance
  keeps running); moto forgot the request.
* RequestSpotFleet: ``AllocationStrategy`` is optional (``lowestPrice``) and ``Type``
  (``maintain``, or ``request``) is kept and returned; moto failed without the first and
  dropped the second.
* The sandbox can hold a request that is not fulfilled yet (state ``open``, status
  ``pending-fulfillment``, no instance): fleet files seed them (``UNFULFILLED``).
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models import EC2Backend
from moto.ec2.models.spot_requests import SpotFleetRequest, SpotInstanceRequest
from moto.ec2.responses.spot_fleets import SpotFleets

from .helpers import patch

UNFULFILLED = threading.local()
"""Set ``UNFULFILLED.on`` while making requests that stay open without an instance."""


def _status(req: Any, state: str, code: str, message: str) -> None:
    req.state = state
    req._status_code = code
    req.status_message = message


@patch(
    "Spot requests: terminating a request's instance reopens a persistent request and "
    "closes a one-time one; cancelled requests stay listed as cancelled; open requests "
    "without an instance"
)
def spot_request_lifecycle() -> None:
    orig_launch = SpotInstanceRequest.launch_instance
    orig_init = SpotInstanceRequest.__init__
    orig_terminate = EC2Backend.terminate_instances

    def launch_instance(self: Any) -> Any:
        if getattr(UNFULFILLED, "on", False):
            return None
        return orig_launch(self)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        if self.instance is None:
            _status(
                self, "open", "pending-fulfillment", "Your Spot request is pending fulfillment."
            )

    def instance_id(self: Any) -> str | None:
        return self.instance.id if self.instance is not None else None

    def terminate_instances(self: Any, instance_ids: list[str]) -> Any:
        result = orig_terminate(self, instance_ids)
        gone = set(instance_ids)
        for req in self.spot_instance_requests.values():
            inst = req.instance
            if inst is None or inst.id not in gone or req.spot_fleet_id or req.state != "active":
                continue
            msg = "Your Spot Instance was terminated by the user."
            if req.type == "persistent":
                _status(req, "open", "instance-terminated-by-user", msg)
            else:
                _status(req, "closed", "instance-terminated-by-user", msg)
        return result

    def cancel_spot_instance_requests(self: Any, request_ids: list[str]) -> list[Any]:
        out = []
        for rid in request_ids:
            req = self.spot_instance_requests[rid]
            running = req.instance is not None and req.instance.state == "running"
            if running:
                code = "request-canceled-and-instance-running"
            else:
                code = "canceled-before-fulfillment"
            _status(req, "cancelled", code, "Your Spot request is canceled.")
            out.append(req)
        return out

    SpotInstanceRequest.launch_instance = launch_instance  # type: ignore[method-assign]
    SpotInstanceRequest.__init__ = init  # type: ignore[method-assign]
    SpotInstanceRequest.instance_id = property(instance_id)  # type: ignore[assignment,method-assign]
    EC2Backend.terminate_instances = terminate_instances  # type: ignore[method-assign]
    EC2Backend.cancel_spot_instance_requests = cancel_spot_instance_requests  # type: ignore[method-assign]


@patch("RequestSpotFleet: AllocationStrategy defaults to lowestPrice; Type is kept and returned")
def spot_fleet_type() -> None:
    orig_config = SpotFleetRequest.spot_fleet_request_config

    def request_spot_fleet(self: Any) -> ActionResult:
        config = self._get_param("SpotFleetRequestConfig", {})
        request = self.ec2_backend.request_spot_fleet(
            spot_price=config.get("SpotPrice"),
            target_capacity=config["TargetCapacity"],
            iam_fleet_role=config["IamFleetRole"],
            allocation_strategy=config.get("AllocationStrategy") or "lowestPrice",
            launch_specs=config.get("LaunchSpecifications"),
            launch_template_config=self._get_param(
                "SpotFleetRequestConfig.LaunchTemplateConfigs", []
            ),
            instance_interruption_behaviour=config.get("InstanceInterruptionBehavior"),
            tag_specifications=config.get("TagSpecifications", []),
        )
        request.fleet_type = config.get("Type") or "maintain"
        return ActionResult({"SpotFleetRequestId": request.id})

    def config(self: Any) -> dict[str, Any]:
        out = dict(orig_config.fget(self))  # type: ignore[attr-defined]
        out["Type"] = getattr(self, "fleet_type", "maintain")
        return out

    SpotFleets.request_spot_fleet = request_spot_fleet  # type: ignore[method-assign]
    SpotFleetRequest.spot_fleet_request_config = property(config)  # type: ignore[assignment,method-assign]
