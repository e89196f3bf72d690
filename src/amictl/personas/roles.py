"""Roles tagged with a persona (``amictl:persona=NAME``) and whether their policies allow
more than that persona's: read live from IAM for ``amictl audit``."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error
from .evaluate import ALLOWED, Request, evaluate
from .tables import probes

PERSONA_TAG = "amictl:persona"

# What reading the roles and their attached policies needs (audit's role-exceeds-persona).
ROLE_READ_PERMISSIONS = frozenset(
    {
        "iam:ListRoles",
        "iam:ListRoleTags",
        "iam:ListAttachedRolePolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
    }
)

PERMISSIONS = ROLE_READ_PERMISSIONS  # what reading the roles and their policies needs


@dataclass
class PersonaRole:
    account: str
    role: str
    arn: str
    persona: str
    policies: list[dict[str, Any]] = field(default_factory=list)
    policy_names: list[str] = field(default_factory=list)

    def exceeds(self, persona_policy: dict[str, Any] | None) -> list[Request]:
        """Probes the role's policies allow and its persona's policy (``None``: an unknown
        persona) does not."""
        if persona_policy is None:
            return []
        mine = [persona_policy]
        return [
            r
            for r in probes()
            if evaluate(self.policies, r) == ALLOWED and evaluate(mine, r) != ALLOWED
        ]


def _doc(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    return dict(json.loads(urllib.parse.unquote(str(raw))))


def persona_roles(conn: Connector, target: Target) -> list[PersonaRole]:
    """Every role of the target's account tagged ``amictl:persona``, with its policies."""
    iam = conn.client("iam", target.region, target.role_arn)
    out: list[PersonaRole] = []
    try:
        for page in iam.get_paginator("list_roles").paginate():
            for role in page.get("Roles", []):
                name = role["RoleName"]
                tags = {
                    t["Key"]: t["Value"]
                    for p in iam.get_paginator("list_role_tags").paginate(RoleName=name)
                    for t in p.get("Tags", [])
                }
                if PERSONA_TAG not in tags:
                    continue
                pr = PersonaRole(target.account, name, role["Arn"], tags[PERSONA_TAG])
                for p in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
                    for ap in p.get("AttachedPolicies", []):
                        meta = iam.get_policy(PolicyArn=ap["PolicyArn"])["Policy"]
                        ver = iam.get_policy_version(
                            PolicyArn=ap["PolicyArn"], VersionId=meta["DefaultVersionId"]
                        )["PolicyVersion"]
                        pr.policies.append(_doc(ver["Document"]))
                        pr.policy_names.append(ap["PolicyName"])
                for p in iam.get_paginator("list_role_policies").paginate(RoleName=name):
                    for pname in p.get("PolicyNames", []):
                        doc = iam.get_role_policy(RoleName=name, PolicyName=pname)
                        pr.policies.append(_doc(doc["PolicyDocument"]))
                        pr.policy_names.append(f"{pname} (inline)")
                out.append(pr)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "ListRoles", target.region) from None
    return out
