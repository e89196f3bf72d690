"""Fleet-file sections for the EC2-side launchers of issue 26 (Spot requests, Spot Fleets,
EC2 Fleets, EMR clusters, Batch compute environments): their keys, limits and the checks
of what they name, merged into :mod:`amictl.sandbox.fleet` (docs/fleet.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..yamlpos import Positions

_STR = (str,)
_INT = (int,)
_LIST = (list,)
REQ = "REQ"  # replaced by fleet.REQ when merged

SPECS: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "spot_request": {
        "alias": (_STR, REQ),
        "image": (_STR, REQ),
        "type": (_STR, "persistent"),
        "state": (_STR, "open"),
        "instance_type": (_STR, "t3.micro"),
        "region": (_STR, None),
    },
    "spot_fleet": {
        "alias": (_STR, REQ),
        "image": (_STR, REQ),
        "type": (_STR, "maintain"),
        "capacity": (_INT, 0),
        "region": (_STR, None),
    },
    "ec2_fleet": {
        "alias": (_STR, REQ),
        "launch_template": (_STR, REQ),
        "version": ((str, int), "$Default"),
        "image": (_STR, None),
        "type": (_STR, "maintain"),
        "capacity": (_INT, 0),
        "region": (_STR, None),
    },
    "emr_cluster": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "image": (_STR, None),
        "group_images": (_LIST, []),
        "state": (_STR, "WAITING"),
        "region": (_STR, None),
    },
    "batch_compute_environment": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "image": (_STR, None),
        "image_override": (_STR, None),
        "launch_template": (_STR, None),
        "version": ((str, int), "$Default"),
        "state": (_STR, "ENABLED"),
        "region": (_STR, None),
    },
}
SECTIONS = {
    "spot_requests": "spot_request",
    "spot_fleets": "spot_fleet",
    "ec2_fleets": "ec2_fleet",
    "emr_clusters": "emr_cluster",
    "batch_compute_environments": "batch_compute_environment",
}
TOTALS = {section: 1_000 for section in SECTIONS}
ALLOWED = {
    ("spot_request", "type"): {"persistent", "one-time"},
    ("spot_request", "state"): {"open", "active", "cancelled"},
    ("spot_fleet", "type"): {"maintain", "request"},
    ("ec2_fleet", "type"): {"maintain", "request", "instant"},
    ("emr_cluster", "state"): {"WAITING", "TERMINATED"},
    ("batch_compute_environment", "state"): {"ENABLED", "DISABLED"},
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
NAMED = ("emr_clusters", "batch_compute_environments")  # a name per region, default alias

Ref = Callable[[tuple[Any, ...], str, str], dict[str, Any]]
RegionOf = Callable[[dict[str, Any], tuple[Any, ...], str | None], None]


def check(fleet: Any, ref: Ref, region_of: RegionOf, pos: Positions) -> None:
    """Allowed values, the aliases each item names (and their regions), for every
    section here; raises the fleet's InputError (file:line and key)."""
    for section, kind in SECTIONS.items():
        for i, item in enumerate(getattr(fleet, section)):
            p = (section, i)
            for (k, key), allowed in ALLOWED.items():
                if k == kind and item[key] not in allowed:
                    raise pos.error(
                        (*p, key),
                        f"expected one of {', '.join(sorted(allowed))}, got {item[key]!r}",
                    )
            if section in NAMED:
                item["name"] = item["name"] or item["alias"]
                if not NAME_RE.match(item["name"]):
                    raise pos.error(
                        (*p, "name"), "a name is 1 to 128 letters, digits, hyphens, underscores"
                    )
            if "capacity" in item and not 0 <= item["capacity"] <= 10:
                raise pos.error((*p, "capacity"), "a capacity from 0 to 10")
            if "version" in item:
                item["version"] = str(item["version"])
            region = None
            images = [item.get("image"), item.get("image_override"), *item.get("group_images", [])]
            for j, alias in enumerate(images):
                if alias is not None and not isinstance(alias, str):
                    raise pos.error((*p, "group_images", j - 2), "expected an image alias")
                if alias:
                    key = ("image", "image_override")[j] if j < 2 else "group_images"
                    img = ref((*p, key), alias, "image")
                    if region and img["region"] != region:
                        raise pos.error((*p, key), "image is in another region")
                    region = img["region"]
            if item.get("launch_template"):
                lt = ref((*p, "launch_template"), item["launch_template"], "launch_template")
                if region and lt["region"] != region:
                    raise pos.error((*p, "launch_template"), "template is in another region")
                region = lt["region"]
            region_of(item, p, region)
            if kind == "batch_compute_environment" and not (
                item["image"] or item["image_override"] or item["launch_template"]
            ):
                raise pos.error(p, "give image, image_override or launch_template")
