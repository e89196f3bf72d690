"""Least-privilege IAM policies per persona (``amictl iam-policy --persona NAME``).

Each persona is what one team does with amictl, with resource-level conditions where
AWS supports them (Service Authorization Reference, Amazon EC2: ``ec2:ResourceTag/${key}``
on images, snapshots, instances and launch templates; ``aws:RequestTag`` / ``aws:TagKeys``
and ``ec2:CreateAction`` for tag-on-create):

* builder: bakes and creates images. Instances it launches must be tagged on creation
  (``amictl:bake-id``) and it may stop/terminate only those; images it makes must carry a
  ``family`` tag on creation; CreateTags only as part of a create call. It may not make
  an image public or share it: ModifyImageAttribute and turning Image Block Public Access
  off are explicitly denied.
* releaser: promotes channels (SSM parameters under ``/amictl/channels/`` only), copies and
  shares images of a family, rolls out (launch templates tagged ``amictl:family``, instance
  refreshes). It never deregisters or deletes.
* consumer: reads channels and launches images of a family (``family`` tag); nothing else.
* retirer: deprecates, disables and deregisters only images tagged with a family, deletes
  snapshots, writes only the retirement marks; never modifies launch permissions
  (ModifyImageAttribute / ResetImageAttribute denied) nor lifts deregistration protection.
* auditor: reads (the inventory, audit, drift and the roles' policies); everything else is
  explicitly denied.
"""

from __future__ import annotations

from typing import Any

FAMILY_TAG = "family"  # amictl's family tag on images (FamilyRule's default)
TEMPLATE_FAMILY_TAG = "amictl:family"  # on launch templates (amictl rollout)
BAKE_TAG = "amictl:bake-id"  # on build instances (amictl bake)
MARK_TAGS = ["amictl:retire-since", "amictl:retired-by"]

IMAGE = "arn:aws:ec2:*::image/*"
SNAPSHOT = "arn:aws:ec2:*:*:snapshot/*"
INSTANCE = "arn:aws:ec2:*:*:instance/*"
TEMPLATE = "arn:aws:ec2:*:*:launch-template/*"
CHANNELS = "arn:aws:ssm:*:*:parameter/amictl/channels/*"
LAUNCH_OTHERS = [
    "arn:aws:ec2:*:*:volume/*",
    "arn:aws:ec2:*:*:network-interface/*",
    "arn:aws:ec2:*:*:subnet/*",
    "arn:aws:ec2:*:*:security-group/*",
    "arn:aws:ec2:*:*:key-pair/*",
]

READ = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "ec2:DescribeImageAttribute",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeRegions",
    "ec2:DescribeSnapshots",
    "ssm:DescribeParameters",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "sts:GetCallerIdentity",
]
HAS_FAMILY = {"Null": {f"ec2:ResourceTag/{FAMILY_TAG}": "false"}}


def _s(
    sid: str, effect: str, actions: list[str], resources: Any = "*", **cond: Any
) -> dict[str, Any]:
    st: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": sorted(actions)}
    st["Resource"] = resources
    if cond:
        st["Condition"] = cond
    return st


def _builder() -> list[dict[str, Any]]:
    return [
        _s(
            "Read",
            "Allow",
            [*READ, "ssm:DescribeInstanceInformation", "ssm:GetCommandInvocation"],
        ),
        _s("LaunchUses", "Allow", ["ec2:RunInstances"], [IMAGE, *LAUNCH_OTHERS]),
        _s(
            "LaunchBuildInstancesTagged",
            "Allow",
            ["ec2:RunInstances"],
            INSTANCE,
            Null={f"aws:RequestTag/{BAKE_TAG}": "false"},
        ),
        _s(
            "OwnBuildInstancesOnly",
            "Allow",
            ["ec2:StopInstances", "ec2:TerminateInstances", "ec2:CreateImage", "ssm:SendCommand"],
            INSTANCE,
            Null={f"ec2:ResourceTag/{BAKE_TAG}": "false"},
        ),
        _s("RunCommandDocuments", "Allow", ["ssm:SendCommand"], "arn:aws:ssm:*:*:document/*"),
        _s(
            "ImagesTaggedOnCreate",
            "Allow",
            ["ec2:CreateImage", "ec2:RegisterImage", "ec2:CopyImage"],
            IMAGE,
            Null={f"aws:RequestTag/{FAMILY_TAG}": "false"},
        ),
        _s(
            "ImageSnapshots",
            "Allow",
            ["ec2:CreateImage", "ec2:CopyImage", "ec2:RegisterImage"],
            SNAPSHOT,
        ),
        _s(
            "TagOnCreateOnly",
            "Allow",
            ["ec2:CreateTags"],
            "*",
            StringEquals={
                "ec2:CreateAction": [
                    "RunInstances",
                    "CreateImage",
                    "RegisterImage",
                    "CopyImage",
                    "CreateSnapshot",
                ]
            },
        ),
        _s(
            "NeverPublicNorShared",
            "Deny",
            [
                "ec2:ModifyImageAttribute",
                "ec2:ResetImageAttribute",
                "ec2:DisableImageBlockPublicAccess",
                "ec2:ModifySnapshotAttribute",
            ],
        ),
    ]


def _releaser() -> list[dict[str, Any]]:
    return [
        _s(
            "Read",
            "Allow",
            [*READ, "ssm:GetParameterHistory", "autoscaling:DescribeInstanceRefreshes"],
        ),
        _s("Channels", "Allow", ["ssm:PutParameter"], CHANNELS),
        _s(
            "ShareFamilyImages",
            "Allow",
            ["ec2:ModifyImageAttribute", "ec2:EnableImage"],
            IMAGE,
            **HAS_FAMILY,
        ),
        _s("ShareTheirSnapshots", "Allow", ["ec2:ModifySnapshotAttribute"], SNAPSHOT),
        _s(
            "CopyFamilyImages",
            "Allow",
            ["ec2:CopyImage"],
            IMAGE,
            Null={f"aws:RequestTag/{FAMILY_TAG}": "false"},
        ),
        _s(
            "CopyTagOnCreate",
            "Allow",
            ["ec2:CreateTags"],
            "*",
            StringEquals={"ec2:CreateAction": "CopyImage"},
        ),
        _s(
            "RolloutTemplates",
            "Allow",
            ["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"],
            TEMPLATE,
            Null={f"ec2:ResourceTag/{TEMPLATE_FAMILY_TAG}": "false"},
        ),
        _s(
            "RolloutRefreshes",
            "Allow",
            [
                "autoscaling:StartInstanceRefresh",
                "autoscaling:CancelInstanceRefresh",
                "autoscaling:RollbackInstanceRefresh",
            ],
        ),
        _s(
            "NeverDestroys",
            "Deny",
            [
                "ec2:DeregisterImage",
                "ec2:DeleteSnapshot",
                "ec2:DisableImage",
                "ssm:DeleteParameter",
            ],
        ),
    ]


def _consumer() -> list[dict[str, Any]]:
    return [
        _s(
            "Read",
            "Allow",
            ["ec2:DescribeImages", "ec2:DescribeInstances", "sts:GetCallerIdentity"],
        ),
        _s("ReadChannels", "Allow", ["ssm:GetParameter", "ssm:GetParameters"], CHANNELS),
        _s("LaunchFamilyImages", "Allow", ["ec2:RunInstances"], IMAGE, **HAS_FAMILY),
        _s("LaunchUses", "Allow", ["ec2:RunInstances"], [INSTANCE, *LAUNCH_OTHERS]),
        _s(
            "TagOnLaunch",
            "Allow",
            ["ec2:CreateTags"],
            "*",
            StringEquals={"ec2:CreateAction": "RunInstances"},
        ),
    ]


def _retirer() -> list[dict[str, Any]]:
    return [
        _s("Read", "Allow", [*READ, "rbin:ListRules", "rbin:GetRule"]),
        _s(
            "RetireFamilyImagesOnly",
            "Allow",
            [
                "ec2:DeregisterImage",
                "ec2:DisableImage",
                "ec2:EnableImage",
                "ec2:EnableImageDeprecation",
                "ec2:DisableImageDeprecation",
            ],
            IMAGE,
            **HAS_FAMILY,
        ),
        _s("Snapshots", "Allow", ["ec2:DeleteSnapshot", "ec2:ModifySnapshotTier"], SNAPSHOT),
        _s(
            "RetirementMarksOnly",
            "Allow",
            ["ec2:CreateTags", "ec2:DeleteTags"],
            IMAGE,
            **{"ForAllValues:StringEquals": {"aws:TagKeys": MARK_TAGS}, **HAS_FAMILY},
        ),
        _s(
            "NeverLaunchPermissions",
            "Deny",
            [
                "ec2:ModifyImageAttribute",
                "ec2:ResetImageAttribute",
                "ec2:DisableImageDeregistrationProtection",
            ],
        ),
        _s(
            "NeverUnfamiliedImages",
            "Deny",
            ["ec2:DeregisterImage", "ec2:DisableImage"],
            IMAGE,
            Null={f"ec2:ResourceTag/{FAMILY_TAG}": "true"},
        ),
    ]


AUDIT_READ = [
    "ec2:Describe*",
    "ec2:Get*",
    "ssm:Describe*",
    "ssm:Get*",
    "autoscaling:Describe*",
    "rbin:Get*",
    "rbin:List*",
    "iam:Get*",
    "iam:List*",
    "sts:GetCallerIdentity",
]


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


def _auditor() -> list[dict[str, Any]]:
    return [
        _s(
            "Read",
            "Allow",
            sorted(
                {
                    *READ,
                    *ROLE_READ_PERMISSIONS,
                    "ec2:GetImageBlockPublicAccessState",
                    "rbin:ListRules",
                    "rbin:GetRule",
                    "autoscaling:DescribeInstanceRefreshes",
                }
            ),
        ),
        {"Sid": "ReadOnly", "Effect": "Deny", "NotAction": AUDIT_READ, "Resource": "*"},
    ]


PERSONAS = {
    "builder": _builder,
    "releaser": _releaser,
    "consumer": _consumer,
    "retirer": _retirer,
    "auditor": _auditor,
}


def policy(persona: str) -> dict[str, Any]:
    """The persona's policy document (KeyError for an unknown persona)."""
    return {"Version": "2012-10-17", "Statement": PERSONAS[persona]()}
