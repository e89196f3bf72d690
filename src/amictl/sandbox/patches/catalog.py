"""Sandbox behaviours for the public-image catalog (``amictl catalog``) and regions.

Imported by ``patches.apply_all`` so that its ``@patch`` functions register with the
others; asserted through boto3 over HTTP in ``tests/test_catalog.py``.

- Public SSM parameters. AWS and the publishers keep ``/aws/service/...`` parameters
  naming the current image of a base (moto 5.2.5 has only Amazon Linux's, pointing at
  real AWS image ids that no sandbox account can describe). Here each parameter of
  ``PUBLIC_IMAGE_PARAMETERS`` names the newest available, non-deprecated image, visible
  to the caller's account in the region, of its publisher whose name matches: seed a
  fleet image with ``owner``/``owner_alias`` and the publisher's name pattern and the
  parameter points at it (its version goes up when the image changes). With no such
  image, moto's own value (or ParameterNotFound) stands. Not listed by
  GetParametersByPath, as on AWS they are read by name.
- DescribeRegions answers with the regions of the caller's partition only (moto adds
  the aws-cn and aws-us-gov regions to every answer), without AllRegions only the
  enabled ones, and honours RegionNames and the ``region-name``, ``endpoint`` and
  ``opt-in-status`` filters.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import threading
from typing import Any

import botocore.session
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.responses.availability_zones_and_regions import AvailabilityZonesAndRegions
from moto.ssm.models import Parameter, ParameterDict

from .helpers import as_bool, err, now, parse_time, patch

AMAZON = ("amazon",)
CANONICAL = ("099720109477",)
DEBIAN = ("136693071363",)

# parameter -> (owners, image-name glob, architecture). The sandbox's own table (not
# amictl.catalog's), so that a wrong parameter name in the catalog fails its tests.
PUBLIC_IMAGE_PARAMETERS: dict[str, tuple[tuple[str, ...], str, str]] = {}
for _arch, _deb in (("x86_64", "amd64"), ("arm64", "arm64")):
    PUBLIC_IMAGE_PARAMETERS.update(
        {
            f"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{_arch}": (
                AMAZON,
                f"al2023-ami-2023.*-kernel-*-{_arch}",
                _arch,
            ),
            f"/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-{_arch}-gp2": (
                AMAZON,
                f"amzn2-ami-hvm-2.0.*-{_arch}-gp2",
                _arch,
            ),
            f"/aws/service/canonical/ubuntu/server/22.04/stable/current/{_deb}/hvm/ebs-gp2/ami-id": (
                CANONICAL,
                f"ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-{_deb}-server-*",
                _arch,
            ),
            f"/aws/service/canonical/ubuntu/server/24.04/stable/current/{_deb}/hvm/ebs-gp3/ami-id": (
                CANONICAL,
                f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{_deb}-server-*",
                _arch,
            ),
            f"/aws/service/debian/release/12/latest/{_deb}": (DEBIAN, f"debian-12-{_deb}-*", _arch),
        }
    )
PUBLIC_IMAGE_PARAMETERS["/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base"] = (
    AMAZON,
    "Windows_Server-2022-English-Full-Base-*",
    "x86_64",
)

# (account, region, name) -> (value, version, last modified)
_served: dict[tuple[str, str, str], tuple[str, int, dt.datetime]] = {}
_lock = threading.Lock()


def _deprecated(ami: Any, at: dt.datetime) -> bool:
    t = getattr(ami, "deprecation_time", None)
    return bool(t) and parse_time(t) <= at


def newest_public_image(account: str, region: str, name: str) -> str | None:
    """The image a public parameter names in the sandbox, or None."""
    from moto.ec2.models import ec2_backends

    owners, pattern, arch = PUBLIC_IMAGE_PARAMETERS[name]
    at = now()
    candidates = [
        a
        for a in list(ec2_backends[account][region].amis.values())
        if (a.owner_id in owners or a.owner_alias in owners)
        and a.state == "available"
        and a.architecture == arch
        and fnmatch.fnmatchcase(a.name or "", pattern)
        and not _deprecated(a, at)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda a: (parse_time(a.creation_date), a.id)).id


def _served_parameter(store: Any, name: str) -> list[Any] | None:
    if name not in PUBLIC_IMAGE_PARAMETERS:
        return None
    image_id = newest_public_image(store.account_id, store.region_name, name)
    if image_id is None:
        return None
    key = (store.account_id, store.region_name, name)
    with _lock:
        prev = _served.get(key)
        if prev is None or prev[0] != image_id:
            prev = (image_id, (prev[1] + 1) if prev else 1, utcnow())
            _served[key] = prev
    value, version, modified = prev
    return [
        Parameter(  # type: ignore[abstract]
            account_id=store.account_id,
            name=name,
            value=value,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=modified,
            version=version,
            data_type="text",
        )
    ]


@patch(
    "Public SSM parameters /aws/service/... (Amazon Linux, Ubuntu, Debian, Windows) name the "
    "newest matching image of the publisher seeded in the account/region"
)
def public_image_parameters() -> None:
    orig_get = ParameterDict.__getitem__
    orig_contains = ParameterDict.__contains__

    def getitem(self: Any, item: str) -> list[Any]:
        served = _served_parameter(self, str(item or ""))
        return served if served is not None else orig_get(self, item)

    def contains(self: Any, k: str) -> bool:
        if _served_parameter(self, str(k or "")) is not None:
            return True
        return orig_contains(self, k)

    ParameterDict.__getitem__ = getitem  # type: ignore[method-assign,assignment]
    ParameterDict.__contains__ = contains  # type: ignore[method-assign,assignment]


def partition_regions(region: str) -> set[str]:
    sess = botocore.session.get_session()
    partition = sess.get_partition_for_region(region)
    return set(sess.get_available_regions("ec2", partition_name=partition))


@patch(
    "DescribeRegions: only the caller's partition (moto adds aws-cn and aws-us-gov); "
    "AllRegions; RegionNames; filters region-name, endpoint, opt-in-status"
)
def describe_regions_partition() -> None:
    def describe_regions(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        mine = partition_regions(b.region_name)
        regions = [r for r in b.regions if r.name in mine]
        names = self._get_param("RegionNames", []) or []
        if names:
            unknown = [n for n in names if n not in {r.name for r in regions}]
            if unknown:
                raise err("InvalidParameterValue", f"Invalid region names: {', '.join(unknown)}")
            regions = [r for r in regions if r.name in names]
        elif not as_bool(self._get_param("AllRegions", False)):
            regions = [r for r in regions if r.opt_in_status != "not-opted-in"]
        attrs = {"region-name": "name", "endpoint": "endpoint", "opt-in-status": "opt_in_status"}
        for fname, values in (self._filters_from_querystring() or {}).items():
            if fname not in attrs:
                raise err("InvalidParameterValue", f"The filter '{fname}' is invalid")
            wanted = [values] if isinstance(values, str) else list(values)
            regions = [
                r
                for r in regions
                if any(fnmatch.fnmatchcase(getattr(r, attrs[fname]), w) for w in wanted)
            ]
        return ActionResult({"Regions": regions})

    AvailabilityZonesAndRegions.describe_regions = describe_regions  # type: ignore[method-assign]
