"""iam-policy --persona (issue 21): each persona's policy against its allowed and denied
calls (the evaluator in amictl.personas.evaluate), the evaluator's own rules, and the
audit check for roles whose policies exceed their persona (sandbox IAM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amictl.personas import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    TABLES,
    Request,
    evaluate,
)
from amictl.personas.policies import PERSONAS, policy
from cli_fleet import CliFleet, invoke

CASES = [
    (persona, kind, req)
    for persona, table in TABLES.items()
    for kind, rows in table.items()
    for req in rows
]


@pytest.mark.parametrize(
    ("persona", "kind", "req"),
    CASES,
    ids=[f"{p}-{k}-{r.action}-{r.resource.rsplit('/', 1)[-1]}" for p, k, r in CASES],
)
def test_persona_table(persona: str, kind: str, req: Request) -> None:
    got = evaluate([policy(persona)], req)
    if kind == "allowed":
        assert got == ALLOWED, (persona, req)
    else:
        assert got != ALLOWED, (persona, req)


def test_every_persona_has_both_tables_and_the_cli_prints_it() -> None:
    assert set(TABLES) == set(PERSONAS)
    for name in PERSONAS:
        assert TABLES[name]["allowed"] and TABLES[name]["denied"]
        code, out, err = invoke(["iam-policy", "--persona", name])
        assert code == 0, err
        assert json.loads(out) == policy(name)
    code, _, err = invoke(["iam-policy", "--persona", "admin"])
    assert code == 2
    code, _, err = invoke(["iam-policy"])
    assert code == 2


def test_retirer_never_touches_launch_permissions_whatever_the_tags() -> None:
    for action in ("ec2:ModifyImageAttribute", "ec2:ResetImageAttribute"):
        for ctx in ({}, {"ec2:ResourceTag/family": "web"}):
            req = Request(action, "arn:aws:ec2:us-east-1::image/ami-1", ctx)
            assert evaluate([policy("retirer")], req) == EXPLICIT_DENY


def test_evaluator_rules() -> None:
    allow_tagged = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:Deregister*",
                "Resource": "arn:aws:ec2:*::image/*",
                "Condition": {"Null": {"ec2:ResourceTag/family": "false"}},
            }
        ]
    }
    img = "arn:aws:ec2:us-east-1::image/ami-1"
    tagged = {"EC2:resourcetag/family": "x"}  # condition keys are case-insensitive
    assert evaluate([allow_tagged], Request("EC2:deregisterimage", img, tagged)) == ALLOWED
    assert evaluate([allow_tagged], Request("ec2:DeregisterImage", img)) == IMPLICIT_DENY
    snap = "arn:aws:ec2:us-east-1:1:snapshot/snap-1"
    assert evaluate([allow_tagged], Request("ec2:DeregisterImage", snap, tagged)) == IMPLICIT_DENY
    deny = {"Statement": [{"Effect": "Deny", "NotAction": "ec2:Describe*", "Resource": "*"}]}
    assert evaluate([allow_tagged, deny], Request("ec2:DeregisterImage", img, tagged)) == (
        EXPLICIT_DENY
    )
    assert evaluate([deny], Request("ec2:DescribeImages")) == IMPLICIT_DENY
    keys = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            }
        ]
    }
    assert evaluate([keys], Request("ec2:CreateTags", "*", {"aws:TagKeys": ["a"]})) == ALLOWED
    assert evaluate([keys], Request("ec2:CreateTags", "*", {"aws:TagKeys": ["a", "c"]})) != ALLOWED
    neg = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestTag/env": "prod"}},
            }
        ]
    }
    assert evaluate([neg], Request("ec2:RunInstances")) == ALLOWED  # absent key: true
    assert evaluate([neg], Request("ec2:RunInstances", "*", {"aws:RequestTag/env": "prod"})) != (
        ALLOWED
    )


AUDIT_FLEET = """
images:
  - {alias: web-1, name: web-1, tags: {family: web, version: "1"}}
"""


def test_audit_reports_roles_that_exceed_their_persona(sandbox: Any, tmp_path: Path) -> None:
    f = CliFleet(sandbox, AUDIT_FLEET, tmp_path)
    iam = f.env.client("iam")
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )

    def role(name: str, persona: str, doc: dict[str, Any], inline: bool = False) -> None:
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=trust,
            Tags=[{"Key": "amictl:persona", "Value": persona}],
        )
        if inline:
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(doc))
        else:
            arn = iam.create_policy(PolicyName=f"{name}-p", PolicyDocument=json.dumps(doc))[
                "Policy"
            ]["Arn"]
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)

    role("exact-retirer", "retirer", policy("retirer"))
    role(
        "broad-retirer",
        "retirer",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}],
        },
    )
    role(
        "sharing-builder",
        "builder",
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "ec2:ModifyImageAttribute", "Resource": "*"}
            ],
        },
        inline=True,
    )
    iam.create_role(RoleName="untagged", AssumeRolePolicyDocument=trust)
    data = f.json("audit")
    found = [x for x in data["findings"] if x["check"] == "role-exceeds-persona"]
    assert {x["name"] for x in found} == {"broad-retirer", "sharing-builder"}
    broad = next(x for x in found if x["name"] == "broad-retirer")
    assert "ec2:ModifyImageAttribute" in broad["detail"] and broad["severity"] == "high"


def test_evaluator_empty_key_sets_as_aws() -> None:
    """A multi-valued key with no values is absent: Null true, ForAllValues true,
    ForAnyValue false; a negated operator under ForAllValues applies to each value."""

    def doc(cond: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": cond}]}
        ]

    for keys in (None, [], ""):
        ctx = {} if keys is None else {"aws:TagKeys": keys}
        req = Request("ec2:DeleteTags", "*", ctx)
        assert evaluate(doc({"Null": {"aws:TagKeys": "true"}}), req) == ALLOWED
        assert evaluate(doc({"Null": {"aws:TagKeys": "false"}}), req) == IMPLICIT_DENY
        assert evaluate(doc({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}), req) == (
            ALLOWED
        )
        assert evaluate(doc({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}), req) == (
            IMPLICIT_DENY
        )
    not_in = doc({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["legal-hold"]}})
    assert evaluate(not_in, Request("x:Y", "*", {"aws:TagKeys": ["a", "b"]})) == ALLOWED
    assert evaluate(not_in, Request("x:Y", "*", {"aws:TagKeys": ["a", "legal-hold"]})) == (
        IMPLICIT_DENY
    )
    assert evaluate(not_in, Request("x:Y", "*", {"aws:TagKeys": []})) == ALLOWED


def test_retirer_cannot_strip_holds_and_the_twin_without_the_guard_can() -> None:
    """R9: DeleteTags without Tags deletes every tag (legal-hold included) on AWS. The
    retirer's policy denies it; with the Null condition and the Deny removed (the policy
    as it was), the same request is allowed."""
    img = "arn:aws:ec2:us-east-1::image/ami-1"
    strip = Request("ec2:DeleteTags", img, {"ec2:ResourceTag/family": "web"})
    assert evaluate([policy("retirer")], strip) == EXPLICIT_DENY
    twin = policy("retirer")
    twin["Statement"] = [s for s in twin["Statement"] if s.get("Sid") != "NeverEveryTag"]
    for s in twin["Statement"]:
        if s.get("Sid") == "RetirementMarksOnly":
            s["Condition"]["Null"].pop("aws:TagKeys")
    assert evaluate([twin], strip) == ALLOWED


def test_releaser_shares_only_image_snapshots_never_publicly() -> None:
    """R10: snapshot sharing only for snapshots tagged with a family (image snapshots),
    never Group=all; the twin without the conditions allows both."""
    backup = "arn:aws:ec2:us-east-1:1:snapshot/snap-backup"
    share = Request("ec2:ModifySnapshotAttribute", backup, {"ec2:Add/userId": "444455556666"})
    public = Request(
        "ec2:ModifyImageAttribute",
        "arn:aws:ec2:us-east-1::image/ami-1",
        {"ec2:ResourceTag/family": "web", "ec2:Add/group": "all"},
    )
    assert evaluate([policy("releaser")], share) != ALLOWED
    assert evaluate([policy("releaser")], public) == EXPLICIT_DENY
    twin = policy("releaser")
    twin["Statement"] = [s for s in twin["Statement"] if s.get("Sid") != "NeverPublic"]
    for s in twin["Statement"]:
        if s.get("Sid") == "ShareFamilyImageSnapshots":
            s.pop("Condition")
    assert evaluate([twin], share) == ALLOWED and evaluate([twin], public) == ALLOWED
