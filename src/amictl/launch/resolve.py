"""Which image a launch reference means: AMI id, FAMILY@VERSION or FAMILY@CHANNEL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..distribute.common import FAMILY_TAG, VERSION_TAG, Found, check_image_id, describe_image
from ..errors import AmictlError, InputError, SafetyError
from ..model import iso, parse_time
from ..tagnames import BAKE_STATUS_TAG, bake_status, bake_unusable, revoked_reason
from ..versions import VERSION_RE, same_version

CHANNEL_PARAMETER = "/amictl/channels/{family}/{channel}"


@dataclass
class Resolved:
    found: Found
    reason: str

    @property
    def image_id(self) -> str:
        return self.found.image_id


def _by_version(ec2: Any, region: str, family: str, version: str) -> list[dict[str, Any]]:
    try:
        pages = ec2.get_paginator("describe_images").paginate(
            Owners=["self"],
            Filters=[
                {"Name": f"tag:{FAMILY_TAG}", "Values": [family]},
                {"Name": f"tag:{VERSION_TAG}", "Values": [version]},
            ],
            IncludeDeprecated=True,
            IncludeDisabled=True,
        )
        return [i for p in pages for i in p.get("Images", [])]
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "DescribeImages", region) from None


def _by_precedence(ec2: Any, region: str, family: str, version: str) -> list[dict[str, Any]]:
    """Images of the family whose version has the same SemVer precedence (``v1.2.3``,
    ``1.2.3+build.7`` name ``1.2.3``)."""
    if not VERSION_RE.match(version.strip()):
        return []
    try:
        pages = ec2.get_paginator("describe_images").paginate(
            Owners=["self"],
            Filters=[{"Name": f"tag:{FAMILY_TAG}", "Values": [family]}],
            IncludeDeprecated=True,
            IncludeDisabled=True,
        )
        found = [i for p in pages for i in p.get("Images", [])]
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "DescribeImages", region) from None
    out = []
    for img in found:
        tags = {t["Key"]: t.get("Value", "") for t in img.get("Tags", []) or []}
        if same_version(tags.get(VERSION_TAG), version):
            out.append(img)
    return out


def _one(images: list[dict[str, Any]], what: str) -> dict[str, Any]:
    if len(images) > 1:
        ids = ", ".join(sorted(i["ImageId"] for i in images))
        raise AmictlError(
            f"{what} matches {len(images)} images ({ids}): refusing to guess",
            hint="launch one of them by its id",
        )
    return images[0]


def _hidden_hint(ec2: Any) -> str | None:
    """Why an image may not be found (issue 31): with Allowed AMIs ``enabled``, AWS hides
    every image no criterion allows (the account's own excepted). Read live
    (GetAllowedImagesSettings); a failed read says nothing rather than guess."""
    try:
        got = ec2.get_allowed_images_settings()
    except Exception:  # noqa: BLE001 - a hint only: the "not found" stands either way
        return None
    if got.get("State") != "enabled":
        return None
    return (
        "Allowed AMIs is enabled in this account and region: it hides every image no "
        "criterion allows (`amictl allowed-images status` shows the criteria)"
    )


def resolve(conn: Connector, target: Target, ref: str) -> Resolved:
    """The one image ``ref`` names in the target's account/region, and why."""
    ref = ref.strip()
    ec2 = conn.client("ec2", target.region, target.role_arn)
    if ref.startswith("ami-"):
        image_id = check_image_id(ref)
        data = describe_image(ec2, image_id, target.region)
        if data is None:
            raise AmictlError(
                f"image {image_id} not found in {target.region}", hint=_hidden_hint(ec2)
            )
        return Resolved(Found(target, data), f"{image_id} given by id")
    family, sep, token = ref.partition("@")
    if not sep or not family or not token or "@" in token:
        raise InputError(
            f"{ref!r}: expected FAMILY@VERSION, FAMILY@CHANNEL or an image id (ami-…)",
            key="IMAGE",
        )
    images = _by_version(ec2, target.region, family, token) or _by_precedence(
        ec2, target.region, family, token
    )
    if images:
        img = _one(images, f"{family}@{token}")
        return Resolved(
            Found(target, img),
            f"{family}@{token}: the owned image tagged {FAMILY_TAG}={family}, "
            f"{VERSION_TAG}={token} in {target.region}",
        )
    name = CHANNEL_PARAMETER.format(family=family, channel=token)
    ssm = conn.client("ssm", target.region, target.role_arn)
    try:
        value = str(ssm.get_parameter(Name=name)["Parameter"]["Value"]).strip()
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "GetParameter", target.region)
        if err.code == "ParameterNotFound":
            raise AmictlError(
                f"{family}@{token}: no version {token} of {family} in {target.region}, "
                f"and no channel {token} (SSM parameter {name})",
                hint=f"`amictl versions {family}` lists its versions, `amictl channels` its channels",
            ) from None
        raise err from None
    if value.startswith("ami-"):
        data = describe_image(ec2, value, target.region)
        if data is None:
            raise AmictlError(
                f"channel {family}@{token} ({name}) points at {value}, which is not in "
                f"{target.region}",
                hint=_hidden_hint(ec2),
            )
        return Resolved(Found(target, data), f"channel {token} of {family}: {name} = {value}")
    images = _by_version(ec2, target.region, family, value)
    if not images:
        raise AmictlError(
            f"channel {family}@{token} ({name}) names version {value}, not found in {target.region}"
        )
    img = _one(images, f"{family}@{value}")
    return Resolved(Found(target, img), f"channel {token} of {family}: {name} = version {value}")


def check_launchable(
    found: Found,
    allow_deprecated: bool,
    now: dt.datetime | None = None,
    allow_failed_bake: bool = False,
) -> list[str]:
    """Refuse (exit 3) deprecated or disabled images unless allowed, and images whose bake
    is still building, failed or abandoned unless ``allow_failed_bake``; returns warnings.
    A revoked image (``amictl revoke``) is refused always, with the revocation's reason:
    launch, bake (its source) and rollout all come here."""
    now = now or dt.datetime.now(dt.UTC)
    state = found.data.get("State")
    tags = {t["Key"]: t.get("Value", "") for t in found.data.get("Tags", []) or []}
    revoked = revoked_reason(tags)
    if revoked:
        raise SafetyError(
            f"{found.image_id} is {revoked}: refusing to use it",
            hint="use a version that is not revoked (`amictl unrevoke` undoes a revocation)",
        )
    if bake_unusable(tags):
        msg = f"{found.image_id} is a bake that is {bake_status(tags)} ({BAKE_STATUS_TAG})"
        if not allow_failed_bake:
            raise SafetyError(
                msg + ": refusing to launch it",
                hint="launch a tested version, or pass --allow-failed-bake to debug this one",
            )
        warnings = [msg]
    else:
        warnings = []
    problems = []
    if state == "disabled":
        problems.append(f"{found.image_id} is disabled")
    dep = parse_time(found.data.get("DeprecationTime"))
    if dep is not None and dep <= now:
        problems.append(f"{found.image_id} is deprecated since {iso(dep)}")
    if problems and not allow_deprecated:
        raise SafetyError(
            "; ".join(problems) + ": refusing to launch it",
            hint="launch a current version, or pass --allow-deprecated if you really mean it",
        )
    if state not in ("available", "disabled"):
        raise AmictlError(f"{found.image_id} is {state}: only an available image can be launched")
    return warnings + problems
