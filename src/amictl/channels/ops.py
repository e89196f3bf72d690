"""Versions of a family, and release channels: promote, rollback, list.

A channel is an SSM parameter per region, ``/amictl/channels/<family>/<channel>``, of
type String and data type ``aws:ec2:image``, whose value is the image id. Launch
templates follow it with ``resolve:ssm:/amictl/channels/<family>/<channel>``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error, error_code
from ..errors import AmictlError, InputError, SafetyError
from ..findings import summary, worst_of
from ..inventory.collectors import image_from_api
from ..inventory.releases import (
    PROMOTE_PREFIX,
    describe_promotion,
    describe_rollback,
    is_rollback,
    release_stack,
    rollback_targets,
)
from ..inventory.views import image_cost
from ..model import FamilyRule, Image, Inventory, iso, parse_time, version_key
from ..tagnames import BAKE_STATUS_TAG, bake_status, bake_unusable, revoked_reason
from ..versions import same_version
from .gates import Gate, closed_reasons
from .names import CHANNEL_PREFIX, channel_of_parameter, check_name, parameter_name

T = TypeVar("T")

NOT_FOUND = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed"}

PERMISSIONS: dict[str, set[str]] = {
    "promote": {
        "ec2:DescribeImages",
        "ssm:GetParameter",
        "ssm:GetParameterHistory",
        "ssm:PutParameter",
    },
    "rollback": {"ec2:DescribeImages", "ssm:GetParameterHistory", "ssm:PutParameter"},
    "channels": {  # the listing and `channels history`
        "ec2:DescribeImages",
        "ssm:DescribeParameters",
        "ssm:GetParameters",
        "ssm:GetParameterHistory",
    },
}
"""AWS permissions of each channel command (``versions`` needs the inventory's)."""


def _aws(fn: Callable[..., T], op: str, region: str, **kw: Any) -> T:
    try:
        return fn(**kw)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, op, region) from None


# ---------------------------------------------------------------- versions


def versions(
    inv: Inventory, family: str, now: dt.datetime, rule: FamilyRule | None = None
) -> list[dict[str, Any]]:
    """One row per version of ``family`` (oldest first, ``version_key`` order); copies of
    a version in several regions (or accounts) are one row listing them."""
    inv.resolve_families(rule or FamilyRule())
    by_version: dict[str, list[Image]] = defaultdict(list)
    for img in inv.images:
        if img.owned and img.family == family:
            by_version[img.version or ""].append(img)
    rows = []
    for ver in sorted(by_version, key=lambda v: (version_key(v), v)):
        imgs = sorted(by_version[ver], key=lambda i: (i.account, i.region, i.image_id))
        regions = sorted({i.region for i in imgs})
        chan_regions: dict[str, set[str]] = defaultdict(set)
        for img in imgs:
            for r in inv.refs(img.image_id):
                if r.kind == "channel":
                    ch = channel_of_parameter(r.id)
                    if ch:
                        chan_regions[ch[1]].add(img.region)
        channels = sorted(
            name if regs == set(regions) else f"{name} ({', '.join(sorted(regs))})"
            for name, regs in chan_regions.items()
        )
        created = [i.created_at for i in imgs if i.created_at]
        deps = [i.deprecation_time for i in imgs if i.deprecation_time]
        rows.append(
            {
                "family": family,
                "version": ver or None,
                "regions": regions,
                "image_ids": [i.image_id for i in imgs],
                "images": [
                    {
                        "account": i.account,
                        "region": i.region,
                        "image_id": i.image_id,
                        "name": i.name,
                        "state": i.state,
                        "created_at": iso(i.created_at),
                        "deprecation_time": iso(i.deprecation_time),
                    }
                    for i in imgs
                ],
                "state": ", ".join(sorted({i.state for i in imgs})),
                "created_at": iso(min(created)) if created else None,
                "age_days": (now - min(created)).days if created else None,
                "channels": channels,
                "size_gib": max(i.size_gib for i in imgs),
                "monthly_cost_usd": round(sum(image_cost(inv, i) for i in imgs), 4),
                "deprecation_time": iso(min(deps)) if deps else None,
                "deprecated": any(i.deprecated_at(now) for i in imgs),
                # issue 28: Amazon Inspector's worst finding over the copies, and revocation
                "findings": worst_of([summary(i.scan_results, now) for i in imgs]).text,
                "revoked": next((r for r in (revoked_reason(i.tags) for i in imgs) if r), None),
            }
        )
    return rows


# ---------------------------------------------------------------- live reads


def owned_images(conn: Connector, target: Target, rule: FamilyRule) -> list[Image]:
    """Every owned image of the region (deprecated and disabled too), families resolved."""
    ec2 = conn.client("ec2", target.region, target.role_arn)
    out: list[Image] = []
    try:
        for page in ec2.get_paginator("describe_images").paginate(
            Owners=["self"],
            IncludeDeprecated=True,
            IncludeDisabled=True,
            PaginationConfig={"PageSize": 1000},
        ):
            for d in page.get("Images", []):
                img = image_from_api(d, target.account, target.region)
                img.family, img.version = rule.resolve(img)
                out.append(img)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "DescribeImages", target.region) from None
    return out


def image_by_id(
    conn: Connector, target: Target, image_id: str, rule: FamilyRule | None = None
) -> Image | None:
    """The image (deprecated or disabled too), or None when it is gone."""
    ec2 = conn.client("ec2", target.region, target.role_arn)
    try:
        resp = ec2.describe_images(
            ImageIds=[image_id], IncludeDeprecated=True, IncludeDisabled=True
        )
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise aws_error(exc, "DescribeImages", target.region) from None
    except BotoCoreError as exc:
        raise aws_error(exc, "DescribeImages", target.region) from None
    imgs = [d for d in resp.get("Images", []) if d.get("ImageId") == image_id]
    if not imgs:
        return None
    img = image_from_api(imgs[0], target.account, target.region)
    img.family, img.version = (rule or FamilyRule()).resolve(img)
    return img


def parameter_history(conn: Connector, target: Target, name: str) -> list[dict[str, Any]] | None:
    """Every version of the parameter, oldest first: {version, value, modified, user};
    None when it does not exist."""
    ssm = conn.client("ssm", target.region, target.role_arn)
    out: list[dict[str, Any]] = []
    try:
        for page in ssm.get_paginator("get_parameter_history").paginate(
            Name=name, PaginationConfig={"PageSize": 50}
        ):
            for h in page.get("Parameters", []):
                out.append(
                    {
                        "version": int(h.get("Version") or 0),
                        "value": str(h.get("Value", "")),
                        "modified": parse_time(h.get("LastModifiedDate")),
                        "user": h.get("LastModifiedUser"),
                        "description": h.get("Description"),
                    }
                )
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise aws_error(exc, "GetParameterHistory", target.region) from None
    except BotoCoreError as exc:
        raise aws_error(exc, "GetParameterHistory", target.region) from None
    out.sort(key=lambda h: h["version"])
    return out


def _put(conn: Connector, target: Target, name: str, image_id: str, desc: str) -> int:
    ssm = conn.client("ssm", target.region, target.role_arn)
    resp = _aws(
        ssm.put_parameter,
        "PutParameter",
        target.region,
        Name=name,
        Value=image_id,
        Type="String",
        DataType="aws:ec2:image",
        Overwrite=True,
        Description=desc[:1024],
    )
    return int(resp.get("Version") or 0)


def _matches(img: Image, version: str) -> bool:
    return img.version == version or (
        img.version is not None and version_key(img.version) == version_key(version)
    )


def _unusable(img: Image, now: dt.datetime) -> str | None:
    revoked = revoked_reason(img.tags)
    if revoked:
        return revoked
    if bake_unusable(img.tags):
        return f"a bake that is {bake_status(img.tags)} ({BAKE_STATUS_TAG})"
    if img.state == "disabled":
        return "disabled"
    if img.deprecated_at(now):
        return f"deprecated since {iso(img.deprecation_time)}"
    if img.state != "available":
        return f"in state {img.state}"
    return None


def _check_gate(
    conn: Connector,
    gate: Gate,
    chosen: list[tuple[Target, Image]],
    family: str,
    channel: str,
    version: str,
    now: dt.datetime,
) -> None:
    """Refuse (exit 3) when the channel's gate is closed for any chosen image."""
    closed: list[str] = []
    for t, img in chosen:
        hist = None
        if gate.requires_channel:
            hist = parameter_history(conn, t, parameter_name(family, gate.requires_channel))
        closed.extend(closed_reasons(gate, img, hist, now))
    if closed:
        raise SafetyError(
            f"gate {channel} ({gate.where}) is closed for {family} {version}: " + "; ".join(closed),
            hint=f"meet the gate of channel {channel}, or change it in {gate.where}"
            + (
                " (or `--skip-gates REASON` for a rollback)"
                if version.startswith("rollback")
                else ""
            ),
        )


# ---------------------------------------------------------------- promote


def promote(
    conn: Connector,
    targets: list[Target],
    family: str,
    version: str,
    channel: str,
    gates: dict[str, Gate] | None = None,
    now: dt.datetime | None = None,
    rule: FamilyRule | None = None,
) -> list[dict[str, Any]]:
    """Point the channel at the version's image in every target region.

    Every region is checked first (the version exists there once, is available, not
    deprecated nor disabled, the channel's gate is open); only then is anything written.
    Refusals are SafetyError (exit 3).
    """
    name = parameter_name(family, channel)
    if not version.strip():
        raise InputError("the version is empty", key="VERSION")
    now = now or dt.datetime.now(dt.UTC)
    rule = rule or FamilyRule()
    gate = (gates or {}).get(channel)
    chosen: list[tuple[Target, Image]] = []
    missing: list[str] = []
    present: list[str] = []
    problems: list[str] = []
    for t in targets:
        imgs = [
            i for i in owned_images(conn, t, rule) if i.family == family and _matches(i, version)
        ]
        where = f"{t.account}/{t.region}"
        if not imgs:
            missing.append(where)
            continue
        present.append(where)
        if len(imgs) > 1:
            problems.append(
                f"{where}: {len(imgs)} images are version {version} of {family} "
                f"({', '.join(sorted(i.image_id for i in imgs))}): which one is meant is unclear"
            )
            continue
        bad = _unusable(imgs[0], now)
        if bad:
            problems.append(f"{where}: {imgs[0].image_id} ({family} {version}) is {bad}")
            continue
        chosen.append((t, imgs[0]))
    if missing:
        raise SafetyError(
            f"version {version} of family {family} is missing in {', '.join(missing)}"
            + (f" (present in {', '.join(present)})" if present else ""),
            hint="copy the image there first, or promote only where it is with --region",
        )
    if problems:
        raise SafetyError(
            f"refusing to promote {family} {version} to channel {channel}: " + "; ".join(problems),
            hint="promote a version that is available, neither deprecated nor disabled",
        )
    if gate is not None:
        _check_gate(conn, gate, chosen, family, channel, version, now)
    rows: list[dict[str, Any]] = []
    for t, img in chosen:
        hist = parameter_history(conn, t, name)
        previous = hist[-1]["value"] if hist else None
        row = {
            "family": family,
            "channel": channel,
            "account": t.account,
            "region": t.region,
            "version": img.version,
            "image_id": img.image_id,
            "previous_image_id": previous,
            "parameter": name,
            "parameter_version": hist[-1]["version"] if hist else None,
            "status": "unchanged",
        }
        if previous != img.image_id:
            row["parameter_version"] = _put(
                conn, t, name, img.image_id, describe_promotion(family, channel, version)
            )
            row["status"] = "promoted"
        rows.append(row)
    return rows


# ---------------------------------------------------------------- rollback


def rollback_problem(img: Image | None, image_id: str, target: Target, family: str) -> str | None:
    """Why ``img`` may not be a rollback target of ``family`` in ``target`` (None: it may):
    the same checks as a promotion (own account, this family, available, neither
    deprecated-and-disabled nor a failed bake)."""
    where = f"{target.account}/{target.region}"
    if img is None:
        return f"{where}: the earlier image {image_id} is gone (deregistered)"
    if img.owner_id != target.account:
        return (
            f"{where}: the earlier image {image_id} is owned by {img.owner_id or 'another account'}"
        )
    if img.family != family:
        return f"{where}: the earlier image {image_id} is not of family {family} ({img.family})"
    revoked = revoked_reason(img.tags)
    if revoked:
        return f"{where}: the earlier image {image_id} is {revoked}"
    if bake_unusable(img.tags):
        return f"{where}: the earlier image {image_id} is a bake that {bake_status(img.tags)}"
    if img.state != "available":
        return f"{where}: the earlier image {image_id} is {img.state}"
    return None


def rollback(
    conn: Connector,
    targets: list[Target],
    family: str,
    channel: str,
    now: dt.datetime | None = None,
    *,
    to_version: str | None = None,
    gates: dict[str, Gate] | None = None,
    skip_gates: str | None = None,
    rule: FamilyRule | None = None,
) -> list[dict[str, Any]]:
    """Set the channel one release back (or back to ``to_version``) in every target region
    where it exists. The channel's releases are read from its parameter history
    (``inventory.releases``): two rollbacks go two steps back. Every target is re-checked
    (own account, this family, available, not a failed bake) and the channel's gate
    applies unless ``skip_gates`` gives the reason; every region is checked before any
    is written. Refusals are SafetyError (exit 3)."""
    name = parameter_name(family, channel)
    now = now or dt.datetime.now(dt.UTC)
    rule = rule or FamilyRule()
    todo: list[tuple[Target, str, str, Image]] = []
    problems: list[str] = []
    absent: list[str] = []
    for t in targets:
        where = f"{t.account}/{t.region}"
        hist = parameter_history(conn, t, name)
        if not hist:
            absent.append(where)
            continue
        current = release_stack(hist)[-1]
        candidates = rollback_targets(hist)
        if not candidates:
            problems.append(f"{where}: channel {channel} has no earlier release than {current}")
            continue
        chosen: str | None = None
        img: Image | None = None
        if to_version is None:
            chosen = candidates[0]
            img = image_by_id(conn, t, chosen, rule)
        else:
            for c in candidates:
                cand = image_by_id(conn, t, c, rule)
                if (
                    cand is not None
                    and cand.version is not None
                    and same_version(cand.version, to_version)
                ):
                    chosen, img = c, cand
                    break
            if chosen is None:
                problems.append(
                    f"{where}: version {to_version} is not among the earlier releases of "
                    f"channel {channel}"
                )
                continue
        assert chosen is not None
        bad = rollback_problem(img, chosen, t, family)
        if bad:
            problems.append(bad)
            continue
        assert img is not None
        todo.append((t, current, chosen, img))
    if problems:
        raise SafetyError(
            f"refusing to roll back channel {channel} of {family}: " + "; ".join(problems),
            hint=f"promote a known-good version instead: amictl promote {family} VERSION "
            f"--channel {channel}",
        )
    if not todo:
        raise AmictlError(
            f"channel {channel} of family {family} does not exist in {', '.join(absent)}",
            hint="see `amictl channels`",
        )
    gate = (gates or {}).get(channel)
    if gate is not None and not skip_gates:
        _check_gate(
            conn, gate, [(t, img) for t, _, _, img in todo], family, channel, "rollback", now
        )
    rows = []
    for t, current, previous, img in todo:
        version = _put(
            conn,
            t,
            name,
            previous,
            describe_rollback(family, channel, img.version or previous),
        )
        rows.append(
            {
                "family": family,
                "channel": channel,
                "account": t.account,
                "region": t.region,
                "version": img.version,
                "image_id": previous,
                "previous_image_id": current,
                "parameter": name,
                "parameter_version": version,
                "status": "rolled back",
                "deprecated": img.deprecated_at(now),
                "gates_skipped": skip_gates,
            }
        )
    return rows


def channel_history(
    conn: Connector,
    targets: list[Target],
    family: str,
    channel: str | None = None,
    rule: FamilyRule | None = None,
) -> list[dict[str, Any]]:
    """Every value each channel of ``family`` took, oldest first, with its version, what
    wrote it (promote, rollback, other) and its place now: current, or how many
    rollbacks back."""
    rule = rule or FamilyRule()
    rows: list[dict[str, Any]] = []
    names = (
        [parameter_name(family, channel)]
        if channel
        else sorted({r["parameter"] for r in list_channels(conn, targets, family, rule)})
    )
    for t in targets:
        images = {i.image_id: i for i in owned_images(conn, t, rule)}
        for name in names:
            hist = parameter_history(conn, t, name)
            if not hist:
                continue
            stack = release_stack(hist)
            back = {v: n for n, v in enumerate(rollback_targets(hist), 1)}
            chan = channel_of_parameter(name) or ("", "")
            for h in hist:
                img = images.get(h["value"])
                desc = h.get("description") or ""
                place = (
                    "current"
                    if h is hist[-1]
                    else (f"{back[h['value']]} back" if h["value"] in back else "")
                )
                rows.append(
                    {
                        "family": family,
                        "channel": chan[1],
                        "account": t.account,
                        "region": t.region,
                        "parameter_version": h["version"],
                        "image_id": h["value"],
                        "version": img.version if img else None,
                        "state": img.state if img else "gone",
                        "by": "rollback"
                        if is_rollback(desc)
                        else "promote"
                        if desc.startswith(PROMOTE_PREFIX)
                        else "other",
                        "at": iso(h["modified"]),
                        "user": h.get("user"),
                        "place": place,
                        "in_stack": h["value"] in stack,
                    }
                )
    return rows


# ---------------------------------------------------------------- listing


def list_channels(
    conn: Connector,
    targets: list[Target],
    family: str | None = None,
    rule: FamilyRule | None = None,
) -> list[dict[str, Any]]:
    """Every channel parameter (of ``family``) in every target: image, version, updated."""
    prefix = f"{CHANNEL_PREFIX}{check_name(family, 'family')}/" if family else CHANNEL_PREFIX
    rule = rule or FamilyRule()
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    for t in targets:
        ssm = conn.client("ssm", t.region, t.role_arn)
        metas: dict[str, dict[str, Any]] = {}
        try:
            for page in ssm.get_paginator("describe_parameters").paginate(
                ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [prefix]}],
                PaginationConfig={"PageSize": 50},
            ):
                for p in page.get("Parameters", []):
                    if channel_of_parameter(p["Name"]):
                        metas[p["Name"]] = p
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, "DescribeParameters", t.region) from None
        if not metas:
            continue
        values: dict[str, str] = {}
        names = sorted(metas)
        for i in range(0, len(names), 10):
            resp = _aws(ssm.get_parameters, "GetParameters", t.region, Names=names[i : i + 10])
            for p in resp.get("Parameters", []):
                values[p["Name"]] = str(p.get("Value", ""))
        images = {i.image_id: i for i in owned_images(conn, t, rule)}
        for n in names:
            if n not in values:
                continue  # deleted between the two calls
            fam, chan = channel_of_parameter(n) or ("", "")
            img = images.get(values[n])
            rows.append(
                {
                    "family": fam,
                    "channel": chan,
                    "account": t.account,
                    "region": t.region,
                    "image_id": values[n],
                    "version": img.version if img else None,
                    "state": img.state if img else "gone",
                    "deprecated": bool(img and img.deprecated_at(now)),
                    "updated_at": iso(parse_time(metas[n].get("LastModifiedDate"))),
                    "parameter_version": metas[n].get("Version"),
                    "parameter": n,
                }
            )
    rows.sort(key=lambda r: (r["family"], r["channel"], r["account"], r["region"]))
    return rows
