"""An organization's accounts (``--org``) and their split into shards (``--shard``).

``--org ROLE`` lists the organization's accounts with Organizations ``ListAccounts`` (from
the caller's account: the management account or a delegated administrator), keeps the
ACTIVE ones and makes each a role ARN from ROLE: a role name (``amictl-scan`` gives
``arn:aws:iam::ACCOUNT:role/amictl-scan``) or a template with ``{account}`` (for a path or
another partition: ``arn:aws-us-gov:iam::{account}:role/ops/amictl``).
https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html

``--shard K/N`` keeps the K-th of N shards of the accounts (K from 1). The assignment
depends on the account ids alone: sorted, the i-th account (from 0) goes to shard
``i mod N + 1``, so shards are as even as they can be and every shard, given the same
account list, computes the same split without talking to the others. ``--shard auto``
takes K from the job runner: ``JOB_COMPLETION_INDEX`` (a Kubernetes Indexed Job),
``AWS_BATCH_JOB_ARRAY_INDEX`` (an AWS Batch array job) — both count from 0 — or
``AMICTL_SHARD`` (``K/N`` or ``K``, from 1); N from ``auto/N`` or ``AMICTL_SHARDS``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .session import ARN_ACCOUNT_RE, aws_error

ROLE_NAME_RE = re.compile(r"^[\w+=,.@/-]{1,512}$")

# The runners' index variables, in the order they are looked at; (name, counts from 0).
RUNNER_INDEX = (
    ("JOB_COMPLETION_INDEX", True),
    ("AWS_BATCH_JOB_ARRAY_INDEX", True),
    ("AMICTL_SHARD", False),
)


def role_arn_for(template: str, account: str) -> str:
    """The role to assume in ``account`` from ``--org``'s role name or ARN template."""
    if "{account}" in template:
        return template.replace("{account}", account)
    return f"arn:aws:iam::{account}:role/{template.strip('/')}"


def check_role_template(template: str) -> None:
    if "{account}" in template:
        if not template.startswith("arn:aws"):
            raise InputError(
                "an --org role template with {account} is a role ARN",
                key="--org",
                hint="e.g. arn:aws:iam::{account}:role/amictl-scan, or just the role name",
            )
        return
    if not ROLE_NAME_RE.match(template) or template.startswith("arn:"):
        raise InputError(
            f"--org {template!r} is not a role name",
            key="--org",
            hint="give the role name every account has (amictl-scan), or an ARN with {account}",
        )


def org_accounts(org_client: Any) -> list[dict[str, str]]:
    """The organization's accounts (every status): id, name, status, sorted by id."""
    out: list[dict[str, str]] = []
    try:
        for page in org_client.get_paginator("list_accounts").paginate():
            for a in page.get("Accounts", []):
                out.append(
                    {"id": a["Id"], "name": a.get("Name", ""), "status": a.get("Status", "")}
                )
    except Exception as exc:  # noqa: BLE001 - becomes an AwsError with its hint
        raise aws_error(exc, "ListAccounts") from None
    return sorted(out, key=lambda a: a["id"])


def discover_role_arns(org_client: Any, template: str) -> list[str]:
    """One role ARN per ACTIVE account of the organization (suspended and closing accounts
    cannot be scanned and are left out), sorted by account id."""
    return discover(org_client, template)[0]


def discover(org_client: Any, template: str) -> tuple[list[str], list[dict[str, str]]]:
    """(one role ARN per ACTIVE account, the accounts left out: ``{id, name, status}``),
    so that a suspended or closing member is named, never skipped silently (issue 31)."""
    check_role_template(template)
    accounts = org_accounts(org_client)
    arns = [role_arn_for(template, a["id"]) for a in accounts if a["status"] == "ACTIVE"]
    return arns, [a for a in accounts if a["status"] != "ACTIVE"]


def account_of_arn(arn: str) -> str | None:
    m = ARN_ACCOUNT_RE.match(arn)
    return m.group(1) if m else None


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def accounts(self, accounts: Iterable[str]) -> list[str]:
        """This shard's accounts: the sorted ids' every count-th, from index - 1."""
        ids = sorted(set(accounts))
        return [a for i, a in enumerate(ids) if i % self.count == self.index - 1]

    def role_arns(self, arns: Iterable[str]) -> list[str]:
        """The role ARNs whose account falls in this shard (the account is read off the
        ARN: no call is made for the other shards' accounts)."""
        arns = list(dict.fromkeys(arns))
        by_account: dict[str, list[str]] = {}
        for arn in arns:
            acct = account_of_arn(arn)
            if acct is None:
                raise InputError(f"cannot shard by account: {arn!r} is not an IAM role ARN")
            by_account.setdefault(acct, []).append(arn)
        mine = set(self.accounts(by_account))
        return [arn for arn in arns if account_of_arn(arn) in mine]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a whole number", key="--shard") from None


def parse_shard(text: str, environ: Mapping[str, str] | None = None) -> Shard:
    """``K/N`` (K from 1), ``auto`` or ``auto/N`` (K from the runner's index variable)."""
    env = os.environ if environ is None else environ
    text = text.strip()
    if text == "auto" or text.startswith("auto/"):
        count_text = text.partition("/")[2] or env.get("AMICTL_SHARDS", "")
        index: int | None = None
        source = ""
        for name, from_zero in RUNNER_INDEX:
            value = env.get(name, "").strip()
            if not value:
                continue
            source = name
            if name == "AMICTL_SHARD" and "/" in value:
                k, _, n = value.partition("/")
                index = _int(k, name)
                count_text = count_text or n
            else:
                index = _int(value, name) + (1 if from_zero else 0)
            break
        if index is None:
            raise InputError(
                "auto: no shard index in the environment",
                key="--shard",
                hint="set JOB_COMPLETION_INDEX (Kubernetes Indexed Job), "
                "AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job) or AMICTL_SHARD=K/N",
            )
        if not count_text:
            raise InputError(
                f"auto: the shard count is unknown (index from {source})",
                key="--shard",
                hint="give it as --shard auto/N or AMICTL_SHARDS=N",
            )
        count = _int(count_text, "shard count")
    else:
        k, sep, n = text.partition("/")
        if not sep:
            raise InputError(f"{text!r}: expected K/N (e.g. 2/4), auto or auto/N", key="--shard")
        index, count = _int(k, "shard"), _int(n, "shard count")
    if count < 1 or not 1 <= index <= count:
        raise InputError(
            f"{index}/{count}: K must be between 1 and N (N >= 1)",
            key="--shard",
            hint="runner indexes count from 0 and are read as K = index + 1",
        )
    return Shard(index, count)
