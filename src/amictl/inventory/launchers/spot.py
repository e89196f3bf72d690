"""EC2 Spot instance requests that can still launch an image (issue 26).

A persistent request relaunches from its ``LaunchSpecification.ImageId`` after every
interruption (and returns to ``open`` when its instance is terminated); a one-time
request that is still ``open`` has not launched yet. Either can launch the image at any
moment, although no instance of it may be running.
"""

from __future__ import annotations

from typing import Any

from ...model import Reference
from ..registry import PAGE_SIZES, SliceData, collector, pages

PAGE_SIZES["describe_spot_instance_requests"] = 1000

# open: not (yet) fulfilled; active: its instance runs; disabled: its instance is stopped
# (a persistent request relaunches from the image after each of them).
LIVE_STATES = {"open", "active", "disabled"}


def can_launch(request: dict[str, Any]) -> bool:
    """Whether the request may launch (again): open, or persistent and not closed."""
    state = request.get("State", "")
    if state == "open":
        return True
    return state in LIVE_STATES and request.get("Type", "one-time") == "persistent"


@collector(
    "spot-requests",
    "ec2",
    ["ec2:DescribeSpotInstanceRequests"],
    "Spot instance requests that can still launch: open, or persistent and active/disabled",
)
def collect_spot_requests(ec2: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    for page in pages(ec2, "describe_spot_instance_requests"):
        for r in page.get("SpotInstanceRequests", []):
            out.items += 1
            image_id = (r.get("LaunchSpecification") or {}).get("ImageId") or ""
            if not (image_id.startswith("ami-") and can_launch(r)):
                continue
            rid = r["SpotInstanceRequestId"]
            running = f", instance {r['InstanceId']}" if r.get("InstanceId") else ""
            out.references.append(
                Reference(
                    "spot-request",
                    rid,
                    f"{r.get('State')} {r.get('Type', 'one-time')} Spot request {rid}{running}",
                    image_id,
                    account,
                    region,
                )
            )
    return out
