"""Allowed AMIs from the release channels: build the criteria, show what they change, apply.

The criteria allow what the channels point at (``/amictl/channels/<family>/<channel>``),
per region: a family whose channel images all carry its provenance watermark is allowed by
that watermark (``<owner>:amictl/<family>``: names the owner and the family, and survives
copies); otherwise by the owner account AND a name pattern (the longest common prefix of
the channel images' names). ``--also`` adds providers (amazon, aws-marketplace,
aws-backup-vault, account ids). Images the account owns are never restricted by AWS.

Before anything changes, each running instance is checked against the NEW criteria
(amictl evaluates them on DescribeInstanceImageMetadata, as AWS documents each field), and
so is every other launcher (launch-template versions, Auto Scaling groups, launch
configurations, SSM parameters and every other in-use kind the inventory reads:
``allowed_launchers``): ``enabled`` is refused while one would become non-compliant or
could not be read, unless it is named.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import re
import uuid
from collections import defaultdict
from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..channels import list_channels
from ..errors import InputError, SafetyError
from ..findings import condition_met
from ..state.store import Store
from . import allowed_launchers
from .names import image_name_matches
from .watermarks import DEFAULT_TEMPLATE, family_watermark_key

MODES = ("audit-mode", "enabled")
ALIASES = ("amazon", "aws-marketplace", "aws-backup-vault")
MAX_CRITERIA = 10
MAX_NAMES = 50
MAX_WATERMARKS = 50
LIVE_STATES = ["pending", "running"]
STATUS_PERMISSIONS = frozenset(
    {"ec2:GetAllowedImagesSettings", "ec2:DescribeInstanceImageMetadata"}
)
SET_PERMISSIONS = STATUS_PERMISSIONS | {
    "ec2:DescribeImages",
    "ec2:ReplaceImageCriteriaInAllowedImagesSettings",
    "ec2:EnableAllowedImagesSettings",
    "ssm:DescribeParameters",
    "ssm:GetParameters",
}


def check_also(values: list[str]) -> list[str]:
    out = []
    for v in values:
        for part in (p.strip() for p in v.split(",")):
            if not part:
                continue
            if part not in ALIASES and not re.fullmatch(r"\d{12}", part):
                raise InputError(
                    f"{part!r} is not an image provider: amazon, aws-marketplace, "
                    "aws-backup-vault or a 12-digit account id",
                    key="--also",
                )
            out.append(part)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------ evaluation


def _time(v: Any) -> dt.datetime | None:
    if v in (None, ""):
        return None
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    t = dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _days(v: Any, at: dt.datetime) -> float | None:
    t = _time(v)
    return None if t is None else (at - t).total_seconds() / 86400.0


def _mark_ok(w: dict[str, Any], f: dict[str, Any], at: dt.datetime) -> bool:
    for field in ("WatermarkKey", "SourceImageRegion"):
        if f.get(field) and not fnmatch.fnmatchcase(str(w.get(field) or ""), f[field]):
            return False
    for field, src in (
        ("MaximumDaysSinceSourceImageCreated", "SourceImageCreationTime"),
        ("MaximumDaysSinceWatermarkCreated", "WatermarkCreationTime"),
    ):
        if f.get(field) is not None:
            d = _days(w.get(src), at)
            if d is None or d > int(f[field]):
                return False
    return True


def criterion_allows(image: dict[str, Any], c: dict[str, Any], at: dt.datetime) -> bool:
    """One ImageCriterion on an ImageMetadata / Image dict: every field given must match.

    What the metadata cannot tell (marketplace codes, Inspector scans) does not match:
    amictl then says the instance may become non-compliant rather than that it will not.
    """
    providers = [p for p in c.get("ImageProviders") or [] if p != "none"]
    if c.get("ImageProviders") and not (
        image.get("ImageOwnerAlias") in providers or image.get("OwnerId") in providers
    ):
        return False
    names = c.get("ImageNames") or []
    if names and not any(image_name_matches(str(image.get("Name") or ""), n) for n in names):
        return False
    if c.get("MarketplaceProductCodes"):
        return False
    if c.get("ScanResultCondition") and not condition_met(
        image.get("ScanResults"), c["ScanResultCondition"], at
    ):  # issue 28: instance metadata has no ScanResults: it may become non-compliant
        return False
    created = (c.get("CreationDateCondition") or {}).get("MaximumDaysSinceCreated")
    if created is not None:
        d = _days(image.get("CreationDate"), at)
        if d is None or d > int(created):
            return False
    deprecated = (c.get("DeprecationTimeCondition") or {}).get("MaximumDaysSinceDeprecated")
    d = _days(image.get("DeprecationTime"), at)
    if (
        deprecated is not None
        and d is not None
        and d >= 0
        and (int(deprecated) == 0 or d > int(deprecated))
    ):
        return False
    marks = c.get("ImageWatermarks") or []
    return not marks or any(
        _mark_ok(w, f, at) for w in image.get("ImageWatermarks") or [] for f in marks
    )


def allows(
    image: dict[str, Any], criteria: list[dict[str, Any]], account: str, at: dt.datetime
) -> bool:
    """Whether the criteria allow the image in ``account`` (its own images always are)."""
    if image.get("OwnerId") == account:
        return True
    return any(criterion_allows(image, c, at) for c in criteria)


# ------------------------------------------------------------------ reading


def _pages(ec2: Any, op: str, key: str, region: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        for page in ec2.get_paginator(op).paginate(**kwargs):
            out.extend(page.get(key) or [])
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, op, region) from None
    return out


def images_by_id(ec2: Any, region: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """DescribeImages of ``ids`` (deprecated and disabled ones too), 100 ids a call."""
    return {
        d["ImageId"]: d
        for i in range(0, len(ids), 100)
        for d in _pages(
            ec2,
            "describe_images",
            "Images",
            region,
            ImageIds=ids[i : i + 100],
            IncludeDeprecated=True,
            IncludeDisabled=True,
        )
    }


def read_settings(conn: Connector, t: Target) -> dict[str, Any]:
    ec2 = conn.client("ec2", t.region, t.role_arn)
    try:
        got = ec2.get_allowed_images_settings()
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "GetAllowedImagesSettings", t.region) from None
    return {
        "state": got.get("State", "disabled"),
        "managed_by": got.get("ManagedBy", "account"),
        "criteria": got.get("ImageCriteria") or [],
    }


def live_instances(conn: Connector, t: Target) -> list[dict[str, Any]]:
    """Pending and running instances with their image's metadata."""
    ec2 = conn.client("ec2", t.region, t.role_arn)
    return _pages(
        ec2,
        "describe_instance_image_metadata",
        "InstanceImageMetadata",
        t.region,
        Filters=[{"Name": "instance-state-name", "Values": LIVE_STATES}],
    )


def _instance_row(t: Target, inst: dict[str, Any], reason: str) -> dict[str, Any]:
    img = inst.get("ImageMetadata") or {}
    name = next((x["Value"] for x in inst.get("Tags") or [] if x.get("Key") == "Name"), None)
    return {
        "account": t.account,
        "region": t.region,
        "instance_id": inst["InstanceId"],
        "name": name,
        "state": (inst.get("State") or {}).get("Name"),
        "image_id": img.get("ImageId"),
        "image_name": img.get("Name"),
        "image_owner": img.get("ImageOwnerAlias") or img.get("OwnerId"),
        "reason": reason,
    }


def noncompliant(
    t: Target,
    instances: list[dict[str, Any]],
    criteria: list[dict[str, Any]] | None = None,
    at: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Instances whose image is not allowed: AWS's ImageAllowed (``criteria`` None), or
    amictl's evaluation of ``criteria`` (the criteria about to be set)."""
    at = at or dt.datetime.now(dt.UTC)
    out = []
    for inst in instances:
        img = inst.get("ImageMetadata") or {}
        if criteria is None:
            if img.get("ImageAllowed") is False:  # absent while disabled: AWS says nothing
                out.append(_instance_row(t, inst, "ImageAllowed is false (AWS)"))
        elif not allows(img, criteria, t.account, at):
            out.append(_instance_row(t, inst, "its image matches none of the new criteria"))
    return out


def status(conn: Connector, targets: list[Target]) -> list[dict[str, Any]]:
    """Per account and region: state, criteria, and the running instances whose image is
    not allowed (AWS's ImageAllowed; while disabled, amictl's evaluation of the criteria)."""
    rows = []
    for t in targets:
        s = read_settings(conn, t)
        insts = live_instances(conn, t)
        if s["state"] == "disabled":
            bad = noncompliant(t, insts, s["criteria"]) if s["criteria"] else []
        else:
            bad = noncompliant(t, insts)
        rows.append(
            {
                "account": t.account,
                "region": t.region,
                "state": s["state"],
                "managed_by": s["managed_by"],
                "criteria": s["criteria"],
                "running_instances": len(insts),
                "noncompliant_instances": bad,
            }
        )
    return rows


# ------------------------------------------------------------------ building


def name_patterns(family: str, names: list[str]) -> list[str]:
    """The family's name pattern: ``<family>-*`` when every channel image is named so (the
    default convention), else the names' common prefix + ``*``, else the names themselves."""
    names = sorted({n for n in names if n})
    if names and all(n.startswith(f"{family}-") for n in names):
        return [f"{family}-*"]
    prefix = os.path.commonprefix(names)
    if len(names) > 1 and len(prefix) >= 3:
        return [f"{prefix}*"]
    return names[:MAX_NAMES]


def criteria_from_channels(
    channel_rows: list[dict[str, Any]],
    images: dict[str, dict[str, Any]],
    also: list[str],
    template: str = DEFAULT_TEMPLATE,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(ImageCriteria, one line per family saying which criterion allows it and why).

    ``images``: DescribeImages of the channel images by id (OwnerId, Name, ImageWatermarks).
    """
    fams: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in channel_rows:
        img = images.get(r["image_id"])
        if img is not None:
            fams[r["family"]].append(img)
    marks: list[dict[str, Any]] = []
    names_by_owner: dict[str, list[str]] = defaultdict(list)
    why: list[str] = []
    for fam, imgs in sorted(fams.items()):
        owners = sorted({str(i.get("OwnerId")) for i in imgs})
        keys = [family_watermark_key(o, fam, template) for o in owners]
        carried = all(
            any(w.get("WatermarkKey") in keys for w in i.get("ImageWatermarks") or []) for i in imgs
        )
        if carried:
            marks.extend({"WatermarkKey": k} for k in keys)
            why.append(f"{fam}: watermark {', '.join(keys)} (every channel image carries it)")
            continue
        for owner in owners:
            pattern = name_patterns(
                fam, [str(i.get("Name")) for i in imgs if i.get("OwnerId") == owner]
            )
            names_by_owner[owner].extend(pattern)
            why.append(
                f"{fam}: images of {owner} named {', '.join(pattern)} (not every channel image "
                "carries the family watermark)"
            )
    criteria: list[dict[str, Any]] = []
    for i in range(0, len(marks), MAX_WATERMARKS):
        criteria.append({"ImageWatermarks": marks[i : i + MAX_WATERMARKS]})
    for owner, names in sorted(names_by_owner.items()):
        names = list(dict.fromkeys(names))
        for i in range(0, len(names), MAX_NAMES):
            criteria.append({"ImageProviders": [owner], "ImageNames": names[i : i + MAX_NAMES]})
    if also:
        criteria.append({"ImageProviders": list(also)})
        why.append(f"--also: every image of {', '.join(also)}")
    if len(criteria) > MAX_CRITERIA:
        raise InputError(
            f"the channels need {len(criteria)} criteria; AWS allows {MAX_CRITERIA}",
            key="--from-channels",
            hint="attach the family watermarks (amictl create/bake do) so that one criterion "
            "allows them all",
        )
    return criteria, why


def _canon(c: dict[str, Any]) -> str:
    return json.dumps(c, sort_keys=True, default=str)


def diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """'- criterion' / '+ criterion' lines (criteria in both are not listed)."""
    a = {_canon(c) for c in old}
    b = {_canon(c) for c in new}
    return [f"- {x}" for x in sorted(a - b)] + [f"+ {x}" for x in sorted(b - a)]


def channels_for(rows: list[dict[str, Any]], t: Target) -> list[dict[str, Any]]:
    """The channel rows ``set --from-channels`` builds ``t``'s criteria from: every
    account's channels in ``t``'s region (a consumer account's criteria come from the
    producer account's channels). ``amictl revoke`` recomputes them with the same rule."""
    return [r for r in rows if r["region"] == t.region]


def plan_set(
    conn: Connector,
    targets: list[Target],
    mode: str,
    also: list[str],
    template: str = DEFAULT_TEMPLATE,
    scan: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """What ``allowed-images set --from-channels`` would do, per account and region
    (``scan``: a ScanResultCondition added to every criterion, issue 28)."""
    if mode not in MODES:
        raise InputError(f"expected one of {', '.join(MODES)}", key="--mode")
    rows = list_channels(conn, targets)
    if not rows and not also:
        raise InputError(
            "no release channel found (/amictl/channels/...) and no --also: nothing to allow",
            key="--from-channels",
            hint="promote a version first (`amictl promote FAMILY VERSION --channel C`)",
        )
    at = dt.datetime.now(dt.UTC)
    inv = allowed_launchers.read(conn, targets)  # every launcher kind, every region set
    plans = []
    for t in targets:
        chan = channels_for(rows, t)
        ids = sorted({r["image_id"] for r in chan if r["image_id"].startswith("ami-")})
        images = images_by_id(conn.client("ec2", t.region, t.role_arn), t.region, ids)
        criteria, why = criteria_from_channels(chan, images, also, template)
        if scan:
            criteria = [{**c, "ScanResultCondition": scan} for c in criteria]
            why.append(f"every criterion: ScanResultCondition {json.dumps(scan, sort_keys=True)}")
        current = read_settings(conn, t)
        insts = live_instances(conn, t)
        refs = allowed_launchers.launchers(inv, t)
        seen = allowed_launchers.describe(conn, t, [r.image_id for r in refs])
        defaults, unread = allowed_launchers.amazon_defaults(conn, t)
        plans.append(
            {
                "account": t.account,
                "region": t.region,
                "role_arn": t.role_arn,
                "current_state": current["state"],
                "managed_by": current["managed_by"],
                "new_state": mode,
                "criteria": criteria,
                "why": why,
                "diff": diff(current["criteria"], criteria),
                "would_be_noncompliant": noncompliant(t, insts, criteria, at),
                "would_break": allowed_launchers.would_break(t, refs, seen, allows, criteria, at)
                + allowed_launchers.default_breaks(t, defaults, allows, criteria, at),
                "not_read": allowed_launchers.not_read(inv, t) + unread,
            }
        )
    return plans


def enforces_new_criteria(p: dict[str, Any]) -> bool:
    """Whether applying plan ``p`` ever leaves its region ``enabled`` with the NEW criteria.

    The one rule behind both the refusal and the order of the two AWS calls (``apply_set``):
    going to ``enabled``, the criteria are written first, then the state (so yes); going to
    a less strict mode, the state changes first, then the criteria (so an ``enabled`` region
    moved to ``audit-mode`` is never enforced with the new criteria, even if the second
    call fails or the run is cut between the two)."""
    return bool(p["new_state"] == "enabled")


def waived(row: dict[str, Any], named: set[str]) -> bool:
    """Whether ``--allow-noncompliant`` names this launcher: its full id exactly (an ARN, a
    group, a parameter name, ``lt-…:N``), or, for a launch-template version, its template's
    id (``lt-…`` waives every version). Never a part of an id: ``arn`` names nothing."""
    if row["id"] in named:
        return True
    tid, sep, version = str(row["id"]).rpartition(":")
    return (
        row.get("kind") == "launch-template-version"
        and bool(sep)
        and tid.startswith("lt-")
        and version.isdigit()
        and tid in named
    )


def check_refusal(plans: list[dict[str, Any]], allow_noncompliant: list[str]) -> None:
    """A plan that enforces the new criteria (``enforces_new_criteria``) is refused (exit 3)
    while a running instance or a launcher would be non-compliant and is not named in
    ``allow_noncompliant``; a declarative policy cannot be changed."""
    for p in plans:
        if p["managed_by"] == "declarative-policy":
            raise SafetyError(
                f"{p['account']}/{p['region']}: Allowed AMIs is managed by a declarative "
                "policy: it cannot be changed in the account",
                hint="change the organization's declarative policy instead",
            )
    plans = [p for p in plans if enforces_new_criteria(p)]
    named = set(allow_noncompliant)
    left = [r for p in plans for r in p["would_be_noncompliant"] if r["instance_id"] not in named]
    if left:
        ids = ", ".join(f"{r['instance_id']} ({r['image_id']})" for r in left[:10])
        more = f" and {len(left) - 10} more" if len(left) > 10 else ""
        raise SafetyError(
            f"enabling Allowed AMIs would leave {len(left)} running instance(s) on images "
            f"it does not allow: {ids}{more}",
            hint="use --mode audit-mode first, move them to allowed images, or name each with "
            "--allow-noncompliant INSTANCE",
        )
    broken = [r for p in plans for r in p.get("would_break", []) if not waived(r, named)]
    if broken:
        what = "; ".join(
            f"{r['region']} {r['kind']} {r['id']} ({r['image_id']} {r['image_name'] or ''})"
            for r in broken[:10]
        )
        more = f" and {len(broken) - 10} more" if len(broken) > 10 else ""
        raise SafetyError(
            f"enabling Allowed AMIs would stop {len(broken)} launcher(s) from launching their "
            f"image: {what}{more}",
            hint="use --mode audit-mode first, point them at allowed images, add their "
            "provider with --also, or name each with --allow-noncompliant ID",
        )
    unread = [x for p in plans for x in p.get("not_read", [])]
    if unread:
        raise SafetyError(
            "cannot tell what enabling Allowed AMIs would break: "
            + "; ".join(unread[:5])
            + (f" and {len(unread) - 5} more" if len(unread) > 5 else ""),
            hint="grant the read (amictl iam-policy allowed-images) or use --mode audit-mode",
        )


def _journal(
    store: Store | None,
    run_id: str,
    p: dict[str, Any],
    step: tuple[str, str, str, str],
    status: str,
    caller: str | None,
    code: str | None = None,
    text: str | None = None,
) -> None:
    if store is None:
        return
    action_id, kind, _op, message = step
    store.journal_write(
        plan_checksum=run_id,
        action_id=f"{p['region']}:{action_id}",
        type=kind,
        account=p["account"],
        region=p["region"],
        resource="allowed-images-settings",
        status=status,
        error_code=code,
        message=text or message,
        caller=caller,
    )


def apply_set(
    conn: Connector,
    plans: list[dict[str, Any]],
    store: Store | None = None,
    caller: str | None = None,
) -> str:
    """Per account and region: to ``enabled``, replace the criteria then set the state; to
    a less strict mode, set the state then replace the criteria (``enforces_new_criteria``).
    Journaled (intended / done / failed) under one run id, which is returned."""
    run_id = uuid.uuid4().hex  # `amictl journal --plan` takes hex ids
    for p in plans:
        ec2 = conn.client("ec2", p["region"], p["role_arn"])
        steps = [
            (
                (
                    "criteria",
                    "replace-image-criteria",
                    "ReplaceImageCriteriaInAllowedImagesSettings",
                    json.dumps(p["criteria"], sort_keys=True)[:2000],
                ),
                ec2.replace_image_criteria_in_allowed_images_settings,
                {"ImageCriteria": p["criteria"]},
            ),
            (
                (
                    "state",
                    f"allowed-images-{p['new_state']}",
                    "EnableAllowedImagesSettings",
                    f"{p['current_state']} -> {p['new_state']}",
                ),
                ec2.enable_allowed_images_settings,
                {"AllowedImagesSettingsState": p["new_state"]},
            ),
        ]
        if not enforces_new_criteria(p):
            steps.reverse()  # leave enforcement first: state, then criteria
        for step, fn, kwargs in steps:
            _journal(store, run_id, p, step, "intended", caller)
            try:
                fn(**kwargs)
            except Exception as exc:  # noqa: BLE001
                err = aws_error(exc, step[2], p["region"])
                _journal(store, run_id, p, step, "failed", caller, err.code, err.message)
                raise err from None
            _journal(store, run_id, p, step, "done", caller)
    return run_id
