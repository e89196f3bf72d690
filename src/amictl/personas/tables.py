"""Each persona's allowed and denied calls, as data: the test evaluates every persona's
policy against its table, and the audit uses every row of every table as a probe (a role
tagged with a persona whose policies allow a probe the persona's policy does not, exceeds it).
"""

from __future__ import annotations

from typing import Any

from .evaluate import Request

A = "111122223333"
R = "us-east-1"
FAMILY_IMAGE = f"arn:aws:ec2:{R}::image/ami-0family"
BARE_IMAGE = f"arn:aws:ec2:{R}::image/ami-0nofamily"
SNAP = f"arn:aws:ec2:{R}:{A}:snapshot/snap-1"
IMAGE_SNAP = f"arn:aws:ec2:{R}:{A}:snapshot/snap-image"  # made by create/bake: tagged family
BACKUP_SNAP = f"arn:aws:ec2:{R}:{A}:snapshot/snap-backup"  # a volume or database backup
BUILD_INSTANCE = f"arn:aws:ec2:{R}:{A}:instance/i-build"
OTHER_INSTANCE = f"arn:aws:ec2:{R}:{A}:instance/i-prod"
FAMILY_TEMPLATE = f"arn:aws:ec2:{R}:{A}:launch-template/lt-web"
OTHER_TEMPLATE = f"arn:aws:ec2:{R}:{A}:launch-template/lt-other"
CHANNEL = f"arn:aws:ssm:{R}:{A}:parameter/amictl/channels/web/prod"
OTHER_PARAM = f"arn:aws:ssm:{R}:{A}:parameter/app/db-password"
ASG = f"arn:aws:autoscaling:{R}:{A}:autoScalingGroup:uuid:autoScalingGroupName/web"

FAMILY = {"ec2:ResourceTag/family": "web"}
BUILD = {"ec2:ResourceTag/amictl:bake-id": "b-1"}
TEMPLATE_FAMILY = {"ec2:ResourceTag/amictl:family": "web"}


def _r(action: str, resource: str = "*", context: dict[str, Any] | None = None) -> Request:
    return Request(action, resource, dict(context or {}))


PUBLIC = {"ec2:Add/group": "all"}
SHARE_WITH = {"ec2:Add/userId": "444455556666"}

# Denied to every persona: what a hostile user of any of them would try (issue 27, R9/R10).
EVERY_PERSONA_DENIED = [
    # DeleteTags without Tags: no aws:TagKeys, and AWS deletes every tag (holds included)
    _r("ec2:DeleteTags", FAMILY_IMAGE, FAMILY),
    _r("ec2:DeleteTags", FAMILY_IMAGE, {**FAMILY, "aws:TagKeys": []}),
    _r("ec2:CreateTags", FAMILY_IMAGE, {**FAMILY, "aws:TagKeys": []}),
    # make public (Group=all): images and snapshots
    _r("ec2:ModifyImageAttribute", FAMILY_IMAGE, {**FAMILY, **PUBLIC}),
    _r("ec2:ModifySnapshotAttribute", IMAGE_SNAP, {**FAMILY, **PUBLIC}),
    _r("ec2:ModifySnapshotAttribute", BACKUP_SNAP, PUBLIC),
    # share a snapshot that is not an image snapshot (a volume or database backup)
    _r("ec2:ModifySnapshotAttribute", BACKUP_SNAP, SHARE_WITH),
    _r("ec2:DeregisterImage", BARE_IMAGE),
]


TABLES: dict[str, dict[str, list[Request]]] = {
    "builder": {
        "allowed": [
            _r("ec2:DescribeImages"),
            _r("ec2:RunInstances", FAMILY_IMAGE),
            _r("ec2:RunInstances", BUILD_INSTANCE, {"aws:RequestTag/amictl:bake-id": "b-1"}),
            _r("ec2:TerminateInstances", BUILD_INSTANCE, BUILD),
            _r("ec2:CreateImage", BUILD_INSTANCE, BUILD),
            _r("ec2:CreateImage", FAMILY_IMAGE, {"aws:RequestTag/family": "web"}),
            _r("ec2:CreateTags", FAMILY_IMAGE, {"ec2:CreateAction": "CreateImage"}),
            _r("ssm:SendCommand", BUILD_INSTANCE, BUILD),
            _r(
                "iam:PassRole",
                "arn:aws:iam::111122223333:role/amictl-builder",
                {"iam:PassedToService": "ec2.amazonaws.com"},
            ),
            _r("ec2:AttachImageWatermark", FAMILY_IMAGE, FAMILY),
        ],
        "denied": [
            _r("ec2:ModifyImageAttribute", FAMILY_IMAGE, FAMILY),  # make public / share
            _r("ec2:DisableImageBlockPublicAccess"),
            _r("ec2:RunInstances", BUILD_INSTANCE),  # an untagged instance
            _r("ec2:TerminateInstances", OTHER_INSTANCE),  # not a build instance
            _r("ec2:CreateImage", FAMILY_IMAGE),  # no family tag on creation
            _r("ec2:CreateTags", FAMILY_IMAGE),  # tags outside a create call
            _r("ec2:DeregisterImage", FAMILY_IMAGE, FAMILY),
            _r("ssm:PutParameter", CHANNEL),
            _r(
                "iam:PassRole",
                "arn:aws:iam::111122223333:role/admin",
                {"iam:PassedToService": "lambda.amazonaws.com"},
            ),
        ],
    },
    "releaser": {
        "allowed": [
            _r("ssm:PutParameter", CHANNEL),
            _r("ssm:GetParameterHistory", CHANNEL),
            _r("ec2:ModifyImageAttribute", FAMILY_IMAGE, {**FAMILY, **SHARE_WITH}),
            _r("ec2:ModifySnapshotAttribute", IMAGE_SNAP, {**FAMILY, **SHARE_WITH}),
            _r("ec2:CopyImage", FAMILY_IMAGE, {"aws:RequestTag/family": "web"}),
            _r("ec2:CreateLaunchTemplateVersion", FAMILY_TEMPLATE, TEMPLATE_FAMILY),
            _r("ec2:ModifyLaunchTemplate", FAMILY_TEMPLATE, TEMPLATE_FAMILY),
            _r("autoscaling:StartInstanceRefresh", ASG),
            _r("autoscaling:RollbackInstanceRefresh", ASG),
        ],
        "denied": [
            _r("ssm:PutParameter", OTHER_PARAM),
            _r("ec2:ModifyImageAttribute", BARE_IMAGE),
            _r("ec2:ModifyLaunchTemplate", OTHER_TEMPLATE),
            _r("ec2:DeregisterImage", FAMILY_IMAGE, FAMILY),
            _r("ec2:DeleteSnapshot", SNAP),
            _r("ec2:RunInstances", FAMILY_IMAGE, FAMILY),
        ],
    },
    "consumer": {
        "allowed": [
            _r("ec2:DescribeImages"),
            _r("ssm:GetParameter", CHANNEL),
            _r("ec2:RunInstances", FAMILY_IMAGE, FAMILY),
            _r("ec2:RunInstances", OTHER_INSTANCE),
            _r("ec2:CreateTags", OTHER_INSTANCE, {"ec2:CreateAction": "RunInstances"}),
        ],
        "denied": [
            _r("ec2:RunInstances", BARE_IMAGE),
            _r("ssm:GetParameter", OTHER_PARAM),
            _r("ssm:PutParameter", CHANNEL),
            _r("ec2:CreateImage", FAMILY_IMAGE, {"aws:RequestTag/family": "web"}),
            _r("ec2:ModifyImageAttribute", FAMILY_IMAGE, FAMILY),
            _r("ec2:CreateTags", FAMILY_IMAGE, FAMILY),
        ],
    },
    "retirer": {
        "allowed": [
            _r("ec2:DeregisterImage", FAMILY_IMAGE, FAMILY),
            _r("ec2:DisableImage", FAMILY_IMAGE, FAMILY),
            _r("ec2:EnableImageDeprecation", FAMILY_IMAGE, FAMILY),
            _r("ec2:DeleteSnapshot", SNAP),
            _r(
                "ec2:CreateTags",
                FAMILY_IMAGE,
                {**FAMILY, "aws:TagKeys": ["amictl:retire-since", "amictl:retired-by"]},
            ),
            _r("ec2:DescribeImageAttribute", FAMILY_IMAGE),
            _r(
                "ec2:DeleteTags",
                FAMILY_IMAGE,
                {**FAMILY, "aws:TagKeys": ["amictl:retire-since", "amictl:retired-by"]},
            ),
            _r("ssm:GetParameterHistory", CHANNEL),
            _r("ec2:DescribeImageReferences"),
            _r("ec2:DescribeSnapshotAttribute", SNAP),
            _r("ec2:CreateImageUsageReport", FAMILY_IMAGE),
        ],
        "denied": [
            _r("ec2:DeregisterImage", BARE_IMAGE),  # no family tag
            _r("ec2:DeleteTags", FAMILY_IMAGE, {**FAMILY, "aws:TagKeys": ["legal-hold"]}),
            _r("ec2:CreateTags", FAMILY_IMAGE, {**FAMILY, "aws:TagKeys": ["legal-hold"]}),
            _r("ec2:ModifyImageAttribute", FAMILY_IMAGE, FAMILY),  # launch permissions
            _r("ec2:ResetImageAttribute", FAMILY_IMAGE, FAMILY),
            _r("ec2:DisableImageDeregistrationProtection", FAMILY_IMAGE, FAMILY),
            _r("ec2:CreateTags", FAMILY_IMAGE, {**FAMILY, "aws:TagKeys": ["family"]}),
            _r("ec2:CreateImage", FAMILY_IMAGE, {"aws:RequestTag/family": "web"}),
            _r("ssm:PutParameter", CHANNEL),
        ],
    },
    "auditor": {
        "allowed": [
            _r("ec2:DescribeImages"),
            _r("ec2:DescribeImageAttribute", FAMILY_IMAGE),
            _r("ec2:GetImageBlockPublicAccessState"),
            _r("iam:ListRoles"),
            _r("iam:GetPolicyVersion"),
            _r("ssm:GetParameter", CHANNEL),
            _r("ssm:GetParameterHistory", CHANNEL),
            _r("ec2:GetAllowedImagesSettings"),
            _r("ec2:DescribeInstanceImageMetadata"),
            _r("ec2:GetImageAncestry", FAMILY_IMAGE),
        ],
        "denied": [
            _r("ec2:DeregisterImage", FAMILY_IMAGE, FAMILY),
            _r("ec2:CreateTags", FAMILY_IMAGE, {"ec2:CreateAction": "CreateImage"}),
            _r("ec2:CreateImageUsageReport", FAMILY_IMAGE),
            _r("ec2:EnableAllowedImagesSettings"),
            _r("ssm:PutParameter", CHANNEL),
            _r("ec2:ModifyImageAttribute", FAMILY_IMAGE, FAMILY),
            _r("iam:AttachRolePolicy"),
            _r("ec2:RunInstances", FAMILY_IMAGE, FAMILY),
        ],
    },
}


for _table in TABLES.values():
    _table["denied"] = [*_table["denied"], *EVERY_PERSONA_DENIED]


def probes() -> list[Request]:
    """Every row of every table, once."""
    seen: dict[tuple[str, str, str], Request] = {}
    for table in TABLES.values():
        for rows in table.values():
            for r in rows:
                seen.setdefault((r.action, r.resource, repr(sorted(r.context.items()))), r)
    return list(seen.values())
