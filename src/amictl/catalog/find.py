"""Find public base images: a named base (``bases.BASES``) or a name glob over their owners.

A named base is resolved, per region, through the publisher's public SSM parameter
when there is one (the image AWS or the publisher calls current); when there is none,
or it names an image that cannot be read, and for ``every`` (list them all), through
DescribeImages by owner and name pattern, newest non-deprecated first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from ..aws.session import Connector, Target, aws_error, error_code
from ..errors import AmictlError, InputError
from .bases import ARCHES, BASES, OWNERS, Base

PERMISSIONS = {"ec2:DescribeImages", "ssm:GetParameter"}

# Codes after which a public parameter is not used and DescribeImages decides.
SSM_FALLBACK_CODES = {
    "ParameterNotFound",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Malformed",
    "InvalidAMIID.Unavailable",
}


@dataclass
class Found:
    """What ``find`` returns: the rows (``catalog find -o json``) and warnings for people."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _parse(t: Any) -> dt.datetime | None:
    if not t:
        return None
    if isinstance(t, dt.datetime):
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    try:
        v = dt.datetime.fromisoformat(str(t).replace("Z", "+00:00"))
    except ValueError:
        return None
    return v if v.tzinfo else v.replace(tzinfo=dt.UTC)


def is_deprecated(image: dict[str, Any], now: dt.datetime) -> bool:
    t = _parse(image.get("DeprecationTime"))
    return t is not None and t <= now


def order(images: Iterable[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """Non-deprecated first, each part newest first (CreationDate, then id for ties)."""
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    newest_first = sorted(
        images,
        key=lambda i: (_parse(i.get("CreationDate")) or epoch, i.get("ImageId", "")),
        reverse=True,
    )
    return sorted(newest_first, key=lambda i: is_deprecated(i, now))  # stable


def row(image: dict[str, Any], region: str, source: str) -> dict[str, Any]:
    return {
        "name": image.get("Name"),
        "image_id": image.get("ImageId"),
        "region": region,
        "owner": image.get("ImageOwnerAlias") or image.get("OwnerId"),
        "architecture": image.get("Architecture"),
        "creation_date": image.get("CreationDate"),
        "deprecation_time": image.get("DeprecationTime"),
        "source": source,
    }


def describe(
    conn: Connector,
    target: Target,
    owners: list[str],
    pattern: str,
    arch: str | None,
) -> list[dict[str, Any]]:
    """Every available image of those owners whose name matches (every page)."""
    ec2 = conn.client("ec2", target.region, target.role_arn)
    filters = [
        {"Name": "name", "Values": [pattern]},
        {"Name": "state", "Values": ["available"]},
    ]
    if arch:
        filters.append({"Name": "architecture", "Values": [arch]})
    out: list[dict[str, Any]] = []
    try:
        for page in ec2.get_paginator("describe_images").paginate(
            Owners=owners, Filters=filters, IncludeDeprecated=True
        ):
            out.extend(page.get("Images", []))
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "DescribeImages", target.region) from None
    return out


def from_parameter(
    conn: Connector, target: Target, name: str
) -> tuple[dict[str, Any] | None, str | None]:
    """(image, None) from the public parameter, or (None, why it was not used)."""
    ssm = conn.client("ssm", target.region, target.role_arn)
    ec2 = conn.client("ec2", target.region, target.role_arn)
    try:
        image_id = str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in SSM_FALLBACK_CODES:
            return None, code
        raise aws_error(exc, "GetParameter/DescribeImages", target.region) from None
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "GetParameter", target.region) from None
    if not images or images[0].get("State") != "available":
        return None, f"{image_id} is not available"
    return images[0], None


def check_arch(base: Base | None, arch: str | None) -> None:
    if arch is not None and arch not in ARCHES:
        raise InputError(f"unknown architecture {arch!r}", key="--arch", hint="x86_64 or arm64")
    if base is not None and arch is not None and arch not in base.arches:
        raise InputError(
            f"{base.name} is published for {', '.join(base.arches)} only, not {arch}",
            key="--arch",
        )


def glob_of(query: str) -> str:
    """A query with * or ? is a name glob as given; otherwise names containing it."""
    return query if any(c in query for c in "*?") else f"*{query}*"


def regions_of(targets: Iterable[Target]) -> list[Target]:
    """Public images are the same for every account: one target per region."""
    seen: dict[str, Target] = {}
    for t in targets:
        seen.setdefault(t.region, t)
    return list(seen.values())


def find(
    conn: Connector,
    targets: Iterable[Target],
    query: str,
    *,
    arch: str | None = None,
    every: bool = False,
    now: dt.datetime | None = None,
) -> Found:
    """The newest image of QUERY per region (or, with ``every``, all of them)."""
    query = query.strip()
    if not query:
        raise InputError(
            "empty query", key="QUERY", hint="a base name (catalog list) or a name glob"
        )
    now = now or dt.datetime.now(dt.UTC)
    base = BASES.get(query.lower())
    check_arch(base, arch)
    found = Found()
    for target in regions_of(targets):
        if base is not None:
            _find_base(conn, target, base, arch or "x86_64", every, now, found)
        else:
            images = describe(conn, target, list(OWNERS), glob_of(query), arch)
            _add(found, images, target.region, "describe-images", every, now, query)
    if not found.rows:
        raise AmictlError(
            f"no image of {query} found: " + "; ".join(found.warnings),
            hint="`amictl catalog list` names the bases; a glob like 'ubuntu*24.04*' searches names",
        )
    return found


def _find_base(
    conn: Connector,
    target: Target,
    base: Base,
    arch: str,
    every: bool,
    now: dt.datetime,
    found: Found,
) -> None:
    param = base.parameter(arch)
    if param and not every:
        image, why = from_parameter(conn, target, param)
        if image is not None:
            found.rows.append(row(image, target.region, f"ssm:{param}"))
            return
        found.warnings.append(
            f"{target.region}: public parameter {param} not used ({why}); "
            "searched DescribeImages instead"
        )
    images = describe(conn, target, list(base.owners), base.pattern(arch), arch)
    _add(found, images, target.region, "describe-images", every, now, base.name)


def _add(
    found: Found,
    images: list[dict[str, Any]],
    region: str,
    source: str,
    every: bool,
    now: dt.datetime,
    what: str,
) -> None:
    ordered = order(images, now)
    if every:
        found.rows.extend(row(i, region, source) for i in ordered)
        return
    current = [i for i in ordered if not is_deprecated(i, now)]
    if current:
        found.rows.append(row(current[0], region, source))
    elif ordered:
        found.warnings.append(f"{region}: every image of {what} is deprecated (--all lists them)")
    else:
        found.warnings.append(f"{region}: no image of {what} found")


def catalog_rows() -> list[dict[str, Any]]:
    """The registry, for ``catalog list``."""
    return [
        {
            "name": b.name,
            "description": b.description,
            "owners": list(b.owners),
            "architectures": list(b.arches),
            "ssm_parameter": b.ssm_parameter,
            "name_pattern": b.name_pattern,
            "platform": b.platform,
        }
        for b in BASES.values()
    ]
