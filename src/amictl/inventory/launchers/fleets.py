"""Spot Fleet requests and EC2 Fleets that can still launch an image (issue 26).

A fleet of type ``maintain`` replaces lost capacity for as long as it is active; one of
type ``request`` launches until its target is fulfilled. What a fleet launches is named
by its launch specifications (``ImageId``) or by launch templates, whose versions are
references of their own (the ``launch-templates`` kind); an ``ImageId`` override on top
of a template is the fleet's own reference.
"""

from __future__ import annotations

from typing import Any

from ...model import Reference
from ..registry import PAGE_SIZES, SliceData, collector, pages

PAGE_SIZES["describe_spot_fleet_requests"] = 1000
PAGE_SIZES["describe_fleets"] = 1000

LIVE_STATES = {"submitted", "active", "modifying"}


def can_launch(state: str, fleet_type: str, activity: str | None) -> bool:
    """A live fleet that maintains its capacity, or a request not fulfilled yet. Unknown
    types and activity statuses count as able to launch."""
    if state not in LIVE_STATES or fleet_type == "instant":
        return False
    return not (fleet_type == "request" and activity == "fulfilled")


def _template_images(configs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(where, image) of every ImageId override on top of a launch template."""
    out = []
    for c in configs or []:
        spec = c.get("LaunchTemplateSpecification") or {}
        lt = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName") or "?"
        ver = spec.get("Version") or "$Default"
        for ov in c.get("Overrides") or []:
            image = ov.get("ImageId") or ""
            if image.startswith("ami-"):
                out.append((f"override on launch template {lt} {ver}", image))
    return out


@collector(
    "spot-fleets",
    "ec2",
    ["ec2:DescribeSpotFleetRequests"],
    "Spot Fleet requests that can still launch (launch specifications, template overrides)",
)
def collect_spot_fleets(ec2: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    for page in pages(ec2, "describe_spot_fleet_requests"):
        for f in page.get("SpotFleetRequestConfigs", []):
            out.items += 1
            config = f.get("SpotFleetRequestConfig") or {}
            state = f.get("SpotFleetRequestState", "")
            ftype = config.get("Type") or "maintain"
            if not can_launch(state, ftype, f.get("ActivityStatus")):
                continue
            fid = f["SpotFleetRequestId"]
            found = [
                ("launch specification", s.get("ImageId") or "")
                for s in config.get("LaunchSpecifications") or []
            ]
            found += _template_images(config.get("LaunchTemplateConfigs") or [])
            for where, image in dict.fromkeys(found):
                if image.startswith("ami-"):
                    out.references.append(
                        Reference(
                            "spot-fleet",
                            fid,
                            f"{state} {ftype} Spot Fleet request {fid} ({where})",
                            image,
                            account,
                            region,
                        )
                    )
    return out


@collector(
    "ec2-fleets",
    "ec2",
    ["ec2:DescribeFleets"],
    "EC2 Fleets that can still launch (ImageId overrides on top of launch templates)",
)
def collect_ec2_fleets(ec2: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    for page in pages(ec2, "describe_fleets"):
        for f in page.get("Fleets", []):
            out.items += 1
            state = f.get("FleetState", "")
            ftype = f.get("Type") or "maintain"
            if not can_launch(state, ftype, f.get("ActivityStatus")):
                continue
            fid = f["FleetId"]
            for where, image in dict.fromkeys(_template_images(f.get("LaunchTemplateConfigs"))):
                out.references.append(
                    Reference(
                        "ec2-fleet",
                        fid,
                        f"{state} {ftype} EC2 Fleet {fid} ({where})",
                        image,
                        account,
                        region,
                    )
                )
    return out
