"""Which other accounts still use an image you share: AWS's image usage reports.

``usage_report`` runs (or reuses a recent) report for an image and reads its entries;
``shared_image_consumers`` answers the retirement question: which of the accounts the
image is shared with still run instances or keep launch templates of it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import botocore.exceptions

from ..aws import stopping
from ..aws.session import Connector, Target, aws_error
from ..errors import AmictlError
from ..model import Reference

PERMISSIONS = frozenset(
    {
        "ec2:CreateImageUsageReport",
        "ec2:DescribeImageUsageReports",
        "ec2:DescribeImageUsageReportEntries",
        "ec2:CreateTags",  # the report is tagged on creation (TagSpecifications)
    }
)
MAX_ACCOUNTS = 200  # CreateImageUsageReport: at most 200 account ids a report
DEFAULT_MAX_AGE = dt.timedelta(hours=24)
RESOURCE_TYPES = [{"ResourceType": "ec2:Instance"}, {"ResourceType": "ec2:LaunchTemplate"}]
WORDS = {"ec2:Instance": "instance", "ec2:LaunchTemplate": "launch template"}
TAG = "amictl:purpose"


def _call(target: Target, operation: str, fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, operation, target.region) from None


def _pages(ec2: Any, op: str, key: str, target: Target, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        for page in ec2.get_paginator(op).paginate(**kwargs):
            out.extend(page.get(key) or [])
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, op, target.region) from None
    return out


def _covers(report: dict[str, Any], accounts: list[str] | None) -> bool:
    have = report.get("AccountIds") or None
    if have is None:
        return True  # a report on every account covers any list
    return accounts is not None and set(accounts) <= set(have)


def _reusable(
    reports: list[dict[str, Any]],
    accounts: list[str] | None,
    now: dt.datetime,
    max_age: dt.timedelta,
) -> dict[str, Any] | None:
    fresh = [
        r
        for r in reports
        if r.get("State") in ("available", "pending")
        and now - r["CreationTime"] <= max_age
        and _covers(r, accounts)
        and {t.get("ResourceType") for t in r.get("ResourceTypes") or []}
        >= {"ec2:Instance", "ec2:LaunchTemplate"}
    ]
    return max(fresh, key=lambda r: r["CreationTime"]) if fresh else None


def usage_report(
    connector: Connector,
    target: Target,
    image_id: str,
    accounts: list[str] | None = None,
    *,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    wait_delay: int = 15,
    max_attempts: int = 40,
) -> dict[str, Any]:
    """The usage of ``image_id`` by other accounts (``accounts``, or every one: None).

    Reuses an ``available`` or ``pending`` report on the image created at most
    ``max_age`` ago that covers the accounts; otherwise creates one (tagged
    ``amictl:purpose``) and waits for it (botocore's ``image_usage_report_available``).
    Returns the report's id, creation time, whether it was reused, and per account the
    count of instances and launch templates using the image.
    """
    if accounts is not None and len(accounts) > MAX_ACCOUNTS:
        raise AmictlError(
            f"{image_id} is shared with {len(accounts)} accounts: an image usage report "
            f"covers at most {MAX_ACCOUNTS}",
            hint="report on every account instead (no --account)",
        )
    ec2 = connector.client("ec2", target.region, target.role_arn)
    now = dt.datetime.now(dt.UTC)
    reports = _pages(
        ec2,
        "describe_image_usage_reports",
        "ImageUsageReports",
        target,
        ImageIds=[image_id],
    )
    report = _reusable(reports, accounts, now, max_age)
    reused = report is not None
    if report is None:
        kwargs: dict[str, Any] = {
            "ImageId": image_id,
            "ResourceTypes": RESOURCE_TYPES,
            "ClientToken": str(uuid.uuid4()),
            "TagSpecifications": [
                {"ResourceType": "image-usage-report", "Tags": [{"Key": TAG, "Value": "amictl"}]}
            ],
        }
        if accounts is not None:
            kwargs["AccountIds"] = accounts
        rid = _call(target, "CreateImageUsageReport", ec2.create_image_usage_report, **kwargs)[
            "ReportId"
        ]
    else:
        rid = report["ReportId"]
    try:
        stopping.wait(
            ec2.get_waiter("image_usage_report_available"),
            ReportIds=[rid],
            WaiterConfig={"Delay": wait_delay, "MaxAttempts": max_attempts},
        )
    except botocore.exceptions.WaiterError as exc:
        last = exc.last_response or {}
        if "Error" in last:
            raise AmictlError(
                f"waiting for image usage report {rid} in {target.region}: "
                f"{last['Error'].get('Code')}: {last['Error'].get('Message', '')}"
            ) from None
        states = [r.get("State") for r in last.get("ImageUsageReports") or []]
        raise AmictlError(
            f"image usage report {rid} of {image_id} is {', '.join(map(str, states)) or 'gone'} "
            f"after {wait_delay * max_attempts} s",
            hint="look again later with `amictl usage`: a report is reused for --max-age",
        ) from None
    (report,) = _pages(
        ec2, "describe_image_usage_reports", "ImageUsageReports", target, ReportIds=[rid]
    )
    entries = _pages(
        ec2,
        "describe_image_usage_report_entries",
        "ImageUsageReportEntries",
        target,
        ReportIds=[rid],
    )
    by_account: dict[str, dict[str, int]] = {}
    for e in entries:
        if int(e.get("UsageCount") or 0) > 0:
            counts = by_account.setdefault(e["AccountId"], {})
            counts[e["ResourceType"]] = counts.get(e["ResourceType"], 0) + int(e["UsageCount"])
    return {
        "image_id": image_id,
        "account": target.account,
        "region": target.region,
        "report_id": rid,
        "created": report.get("CreationTime"),
        "expires": report.get("ExpirationTime"),
        "reused": reused,
        "accounts_asked": report.get("AccountIds") or None,
        "consumers": by_account,
    }


def describe_usage(counts: dict[str, int]) -> list[str]:
    """['2 instances', '1 launch template'] from {'ec2:Instance': 2, ...}."""
    out = []
    for rtype, n in sorted(counts.items()):
        word = WORDS.get(rtype, rtype)
        out.append(f"{n} {word}{'s' if n != 1 else ''}")
    return out


def shared_image_consumers(
    connector: Connector,
    target: Target,
    image_id: str,
    accounts: list[str] | None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    *,
    wait_delay: int = 15,
) -> dict[str, list[str]]:
    """The accounts (of ``accounts``; None: any account, for a public image) that still run
    instances or keep launch templates of the image, each with what: ``{account:
    ["2 instances", "1 launch template"]}``. An empty ``accounts`` asks nothing.

    Runs or reuses (``max_age``) an image usage report. An AWS failure (no permission, API
    missing) is raised as an AwsError: the caller cannot know who uses the image then.
    """
    if accounts is not None and not accounts:
        return {}
    report = usage_report(
        connector, target, image_id, accounts, max_age=max_age, wait_delay=wait_delay
    )
    wanted = set(accounts) if accounts is not None else None
    return {
        acct: describe_usage(counts)
        for acct, counts in sorted(report["consumers"].items())
        if wanted is None or acct in wanted
    }


def check_unshare(
    connector: Connector,
    targets: list[Target],
    image_id: str,
    accounts: list[str] | None,
    *,
    force_unsafe: bool = False,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    wait_delay: int = 15,
) -> dict[str, list[str]]:
    """Before launch permissions are removed: the accounts (``accounts``; None: any, for
    public, organization or OU grants) still using the image. Refused (exit 3) while one
    does, or when AWS cannot say (no permission, API missing), unless ``force_unsafe``;
    returns the consumers found (empty when forced without a report)."""
    from ..distribute.common import find_image
    from ..errors import SafetyError

    found = find_image(connector, targets, image_id)
    if found.data.get("OwnerId") not in (None, found.target.account):
        return {}  # not ours: change_sharing refuses it with its own message
    try:
        consumers = shared_image_consumers(
            connector, found.target, found.image_id, accounts, max_age, wait_delay=wait_delay
        )
    except AmictlError as exc:
        if force_unsafe:
            return {}
        raise SafetyError(
            f"cannot tell whether other accounts still use {found.image_id}: {exc.message}",
            hint="allow ec2:CreateImageUsageReport and ec2:DescribeImageUsageReport* "
            "(`amictl iam-policy unshare`), or pass --force-unsafe",
        ) from None
    if consumers and not force_unsafe:
        who = "; ".join(f"{a}: {', '.join(what)}" for a, what in consumers.items())
        raise SafetyError(
            f"{found.image_id} is still used by {len(consumers)} other account(s): {who}",
            hint="ask them to move off it (`amictl usage` shows the report), or pass "
            "--force-unsafe",
        )
    return consumers


def consumer_references(
    connector: Connector,
    target: Target,
    images: list[Any],
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    *,
    wait_delay: int = 2,
) -> list[Reference]:
    """For shared images about to be retired: the OTHER accounts still launching each, from
    an image usage report (run, or reused when at most ``max_age`` old), as references of
    kind ``consumer-account`` (a reason to keep: the account is named). When AWS cannot say
    (no permission, no API), the image gets a ``consumer-account`` reference saying so: who
    uses it is unknown, so it stays."""
    out: list[Reference] = []
    for img in images:
        if not (img.public or img.shared_with):
            continue
        accounts = [a for a in img.shared_with if a.isdigit() and len(a) == 12]
        # a public, organization or OU grant: any account may use it
        asked = None if img.public or len(accounts) < len(img.shared_with) else accounts
        try:
            found = shared_image_consumers(
                connector, target, img.image_id, asked, max_age, wait_delay=wait_delay
            )
        except AmictlError as exc:
            out.append(
                Reference(
                    "consumer-account",
                    "unknown",
                    f"its image usage report could not be made ({exc.message}): who launches "
                    "it is unknown",
                    img.image_id,
                    target.account,
                    target.region,
                )
            )
            continue
        for acct, what in sorted(found.items()):
            out.append(
                Reference(
                    "consumer-account",
                    acct,
                    f"account {acct} launches it: {', '.join(what)} (image usage report)",
                    img.image_id,
                    target.account,
                    target.region,
                )
            )
    return out
