"""``amictl bake setup``: the IAM role and instance profile bake's instances run with.

A bake's builder and test instances must be SSM managed nodes (Run Command runs the steps),
which needs an instance profile whose role trusts ``ec2.amazonaws.com`` and has the AWS
managed policy ``AmazonSSMManagedInstanceCore`` attached
(https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-instance-permissions.html).
:func:`check` reads what exists in each account and says what is missing; :func:`apply` makes
it. Both are idempotent: a second run finds everything ``ok``. An existing role or profile
that does not fit (a role EC2 may not assume, a profile holding another role) is never
changed: it is reported ``conflict`` and :func:`apply` refuses.

Library code: nothing is printed.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import botocore.exceptions

from ..aws.session import Connector, Target, aws_error
from ..errors import SafetyError

BUILDER_NAME = "amictl-builder"  # the name the example recipes and docs use
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
EC2_SERVICE = "ec2.amazonaws.com"
TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": EC2_SERVICE},
            "Action": "sts:AssumeRole",
        }
    ],
}
ROLE_DESCRIPTION = "amictl bake: builder and test instances (SSM managed nodes)"

PERMISSIONS = frozenset(
    {
        "iam:GetRole",
        "iam:CreateRole",
        "iam:ListAttachedRolePolicies",
        "iam:AttachRolePolicy",
        "iam:GetInstanceProfile",
        "iam:CreateInstanceProfile",
        "iam:AddRoleToInstanceProfile",
    }
)

OK, CREATE, ATTACH, ADD, CONFLICT = "ok", "create", "attach", "add", "conflict"


def _missing(exc: Exception) -> bool:
    return (
        isinstance(exc, botocore.exceptions.ClientError)
        and exc.response.get("Error", {}).get("Code") == "NoSuchEntity"
    )


def _trusts_ec2(document: Any) -> bool:
    """Whether a trust policy lets EC2 assume the role (GetRole URL-encodes it as text)."""
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    for st in (document or {}).get("Statement") or []:
        if st.get("Effect") != "Allow":
            continue
        actions = st.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        if "sts:AssumeRole" not in actions and "sts:*" not in actions:
            continue
        services = (st.get("Principal") or {}).get("Service")
        services = [services] if isinstance(services, str) else services or []
        if EC2_SERVICE in services:
            return True
    return False


def _row(account: str, resource: str, name: str, status: str, detail: str) -> dict[str, Any]:
    return {
        "account": account,
        "resource": resource,
        "name": name,
        "status": status,
        "detail": detail,
    }


def accounts(targets: list[Target]) -> list[Target]:
    """One target per account (IAM is global)."""
    seen: dict[str, Target] = {}
    for t in targets:
        seen.setdefault(t.account, t)
    return list(seen.values())


def check(conn: Connector, targets: list[Target], name: str = BUILDER_NAME) -> list[dict[str, Any]]:
    """What exists and what is missing, per account: rows ``{account, resource (role,
    policy, instance-profile), name, status (ok, create, attach, add, conflict), detail}``."""
    rows: list[dict[str, Any]] = []
    for t in accounts(targets):
        iam = conn.client("iam", t.region, t.role_arn)
        a = t.account
        role: dict[str, Any] | None = None
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            if not _missing(exc):
                raise aws_error(exc, "GetRole", t.region) from None
        if role is None:
            rows.append(_row(a, "role", name, CREATE, f"trusted by {EC2_SERVICE}"))
            rows.append(_row(a, "policy", SSM_CORE_POLICY, ATTACH, f"to role {name}"))
        elif not _trusts_ec2(role.get("AssumeRolePolicyDocument")):
            rows.append(
                _row(
                    a,
                    "role",
                    name,
                    CONFLICT,
                    f"exists, but its trust policy does not let {EC2_SERVICE} assume it",
                )
            )
        else:
            rows.append(_row(a, "role", name, OK, f"trusted by {EC2_SERVICE}"))
            try:
                pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
                attached = {p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]}
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                raise aws_error(exc, "ListAttachedRolePolicies", t.region) from None
            rows.append(
                _row(
                    a,
                    "policy",
                    SSM_CORE_POLICY,
                    OK if SSM_CORE_POLICY in attached else ATTACH,
                    f"{'attached' if SSM_CORE_POLICY in attached else 'to'} role {name}",
                )
            )
        profile: dict[str, Any] | None = None
        try:
            profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            if not _missing(exc):
                raise aws_error(exc, "GetInstanceProfile", t.region) from None
        if profile is None:
            rows.append(_row(a, "instance-profile", name, CREATE, f"holding role {name}"))
            continue
        roles = [r["RoleName"] for r in profile.get("Roles") or []]
        if roles == [name]:
            rows.append(_row(a, "instance-profile", name, OK, f"holds role {name}"))
        elif not roles:
            rows.append(_row(a, "instance-profile", name, ADD, f"role {name} to it"))
        else:
            rows.append(
                _row(
                    a,
                    "instance-profile",
                    name,
                    CONFLICT,
                    f"exists, holding role {roles[0]} (a profile holds one role)",
                )
            )
    return rows


def todo(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] not in (OK,)]


def conflicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == CONFLICT]


def apply(
    conn: Connector, targets: list[Target], rows: list[dict[str, Any]], name: str = BUILDER_NAME
) -> list[dict[str, Any]]:
    """Make what :func:`check` found missing; refuses (exit 3) on any conflict, before any
    change. Returns the rows with ``status`` ``created``, ``attached``, ``added`` or ``ok``."""
    bad = conflicts(rows)
    if bad:
        raise SafetyError(
            "refusing to change IAM: "
            + "; ".join(f"{r['account']}: {r['resource']} {r['name']} {r['detail']}" for r in bad),
            hint=f"fix or remove it by hand, or use another name (--name; the recipe's "
            f"builder.instance_profile), then run `amictl bake setup` again (not {name})",
        )
    by_account = {t.account: t for t in accounts(targets)}
    done = {CREATE: "created", ATTACH: "attached", ADD: "added"}
    out: list[dict[str, Any]] = []
    for r in rows:
        row = dict(r)
        out.append(row)
        if r["status"] == OK:
            continue
        t = by_account[r["account"]]
        iam = conn.client("iam", t.region, t.role_arn)
        call = ""
        try:
            if r["resource"] == "role":
                call = "CreateRole"
                iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                    Description=ROLE_DESCRIPTION,
                )
            elif r["resource"] == "policy":
                call = "AttachRolePolicy"
                iam.attach_role_policy(RoleName=name, PolicyArn=SSM_CORE_POLICY)
            elif r["status"] == CREATE:
                call = "CreateInstanceProfile"
                iam.create_instance_profile(InstanceProfileName=name)
                call = "AddRoleToInstanceProfile"
                iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
            else:
                call = "AddRoleToInstanceProfile"
                iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise aws_error(exc, call, t.region) from None
        row["status"] = done[r["status"]]
    return out
