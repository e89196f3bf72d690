"""Least-privilege IAM policies per persona (``amictl iam-policy --persona NAME``).

A persona is the amictl commands one team runs (``COMMANDS``) plus its conditions: its
policy is derived from the registry that ``amictl iam-policy CMD`` uses
(:func:`amictl.iam.permissions`), so a call a command registers is never missing from the
persona that runs it. Each policy is:

* ``Commands``: every registered call of the persona's commands, on any resource, except
  the calls below (the auditor: only the reads, ``Describe*``/``Get*``/``List*``);
* the conditioned statements: calls AWS can scope to a resource or a request (Service
  Authorization Reference, Amazon EC2: ``ec2:ResourceTag/${key}`` on images, snapshots,
  instances and launch templates; ``aws:RequestTag`` / ``aws:TagKeys``,
  ``ec2:CreateAction`` for tag-on-create, ``ec2:Add/group`` for public sharing,
  ``iam:PassedToService``, ``kms:ViaService``); a call named there is allowed only by them;
* ``LEFT_OUT``: calls of its commands the persona does not get, with the reason (the
  step of the command another persona does);
* the explicit Deny statements (the "may not" column of the table in docs/cli.md).

* builder: bakes and creates images. Instances it launches must be tagged on creation
  (``amictl:bake-id``) and it may stop/terminate/image only those; images it makes must carry
  a ``family`` tag on creation; CreateTags only as part of a create call; PassRole only to
  EC2. It may not make an image public or share it.
* releaser: promotes channels (SSM parameters under ``/amictl/channels/`` only), copies and
  shares images of a family and their snapshots (tagged ``family``, as ``create`` and
  ``bake`` tag them), never with everyone (``Group=all`` denied), rolls out (launch
  templates tagged ``amictl:family``, instance refreshes). It never deregisters or deletes.
* consumer: reads channels and launches images of a family (``family`` tag); nothing else.
* retirer: deprecates, disables and deregisters only images tagged with a family, deletes
  snapshots, writes and removes only the retirement marks (a DeleteTags that names no key,
  which removes every tag, holds included, is denied); never modifies launch permissions
  nor lifts deregistration protection.
* auditor: the reads of the read-only commands; everything else is explicitly denied.
"""

from __future__ import annotations

from typing import Any

from ..iam import permissions
from ..tagnames import FAMILY_TAG, TEMPLATE_FAMILY_TAG
from .roles import ROLE_READ_PERMISSIONS

BAKE_TAG = "amictl:bake-id"  # on build instances (amictl bake)
MARK_TAGS = ["amictl:retire-since", "amictl:retired-by"]

IMAGE = "arn:aws:ec2:*::image/*"
SNAPSHOT = "arn:aws:ec2:*:*:snapshot/*"
INSTANCE = "arn:aws:ec2:*:*:instance/*"
TEMPLATE = "arn:aws:ec2:*:*:launch-template/*"
CHANNELS = "arn:aws:ssm:*:*:parameter/amictl/channels/*"
PUBLIC_PARAMETERS = "arn:aws:ssm:*::parameter/aws/service/*"  # the publishers' (catalog)
LAUNCH_OTHERS = [
    "arn:aws:ec2:*:*:volume/*",
    "arn:aws:ec2:*:*:network-interface/*",
    "arn:aws:ec2:*:*:subnet/*",
    "arn:aws:ec2:*:*:security-group/*",
    "arn:aws:ec2:*:*:key-pair/*",
]
HAS_FAMILY = {"Null": {f"ec2:ResourceTag/{FAMILY_TAG}": "false"}}
PUBLIC = {"StringEquals": {"ec2:Add/group": "all"}}
READ_PREFIXES = ("Describe", "Get", "List")

# The commands each persona runs (the registry of `amictl iam-policy CMD`).
COMMANDS: dict[str, tuple[str, ...]] = {
    "builder": ("create", "bake", "stale", "catalog", "versions", "lineage"),
    "releaser": (
        "promote",
        "rollback",
        "channels",
        "versions",
        "copy",
        "share",
        "unshare",
        "sharing",
        "rollout",
        "drift",
    ),
    "consumer": ("launch", "catalog"),
    "retirer": (
        "inventory",
        "plan",
        "explain",
        "apply",
        "deprecate",
        "disable",
        "retire",
        "recycle-bin",
    ),
    "auditor": (
        "inventory",
        "ls",
        "show",
        "refs",
        "snapshots",
        "plan",
        "explain",
        "versions",
        "channels",
        "sharing",
        "drift",
        "stale",
        "cost",
        "audit",
        "report",
        "lineage",
        "allowed-images",
        "catalog",
        "lint",
        "recycle-bin",
    ),
}
READS_ONLY = frozenset({"auditor"})

# Calls of a persona's commands it does not get, and why.
LEFT_OUT: dict[str, dict[str, str]] = {
    "builder": {
        "ec2:ModifyImageAttribute": "sharing a baked image is the releaser's (`amictl share`)",
        "ec2:ModifySnapshotAttribute": "sharing a baked image is the releaser's",
        "ssm:PutParameter": "promoting a baked image is the releaser's (`amictl promote`)",
    },
}


def is_read(action: str) -> bool:
    return action.split(":", 1)[1].startswith(READ_PREFIXES)


def _s(
    sid: str, effect: str, actions: list[str], resources: Any = "*", **cond: Any
) -> dict[str, Any]:
    st: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": sorted(actions)}
    st["Resource"] = resources
    if cond:
        st["Condition"] = cond
    return st


def _tag_on_create(sid: str, actions: list[str]) -> dict[str, Any]:
    return _s(sid, "Allow", ["ec2:CreateTags"], "*", StringEquals={"ec2:CreateAction": actions})


def _builder() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    allow = [
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
            ["ec2:CreateImage", "ec2:CopyImage", "ec2:RegisterImage", "ec2:CopySnapshot"],
            SNAPSHOT,
        ),
        _s("WatermarkFamilyImages", "Allow", ["ec2:AttachImageWatermark"], IMAGE, **HAS_FAMILY),
        _tag_on_create(
            "TagOnCreateOnly",
            [
                "RunInstances",
                "CreateImage",
                "RegisterImage",
                "CopyImage",
                "CreateSnapshot",
                "CopySnapshot",
            ],
        ),
        _s(
            "PassRoleToEc2Only",
            "Allow",
            ["iam:PassRole"],
            "arn:aws:iam::*:role/*",
            StringEquals={"iam:PassedToService": "ec2.amazonaws.com"},
        ),
        _s(
            "KeysThroughEc2Only",
            "Allow",
            [
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            StringLike={"kms:ViaService": "ec2.*.amazonaws.com"},
        ),
    ]
    deny = [
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
    return allow, deny


def _releaser() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    allow = [
        _s("Channels", "Allow", ["ssm:PutParameter"], CHANNELS),
        _s(
            "ShareFamilyImages",
            "Allow",
            ["ec2:ModifyImageAttribute", "ec2:EnableImage"],
            IMAGE,
            **HAS_FAMILY,
        ),
        _s(
            "ShareFamilyImageSnapshots",
            "Allow",
            ["ec2:ModifySnapshotAttribute"],
            SNAPSHOT,
            **HAS_FAMILY,
        ),
        _s(
            "CopyFamilyImages",
            "Allow",
            ["ec2:CopyImage"],
            IMAGE,
            Null={f"aws:RequestTag/{FAMILY_TAG}": "false"},
        ),
        _tag_on_create("CopyTagOnCreate", ["CopyImage", "CreateImageUsageReport"]),
        _s(
            "RolloutTemplates",
            "Allow",
            ["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"],
            TEMPLATE,
            Null={f"ec2:ResourceTag/{TEMPLATE_FAMILY_TAG}": "false"},
        ),
    ]
    deny = [
        _s(
            "NeverPublic",
            "Deny",
            ["ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"],
            **PUBLIC,
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
    return allow, deny


def _consumer() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    allow = [
        _s(
            "ReadChannels",
            "Allow",
            ["ssm:GetParameter", "ssm:GetParameters"],
            [CHANNELS, PUBLIC_PARAMETERS],
        ),
        _s("LaunchFamilyImages", "Allow", ["ec2:RunInstances"], IMAGE, **HAS_FAMILY),
        _s("LaunchUses", "Allow", ["ec2:RunInstances"], [INSTANCE, *LAUNCH_OTHERS]),
        _tag_on_create("TagOnLaunch", ["RunInstances"]),
    ]
    return allow, []


def _retirer() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    marks = {"ForAllValues:StringEquals": {"aws:TagKeys": MARK_TAGS}}
    allow = [
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
        # ForAllValues is true for a request with no tag keys: the Null condition makes
        # the keys required (a DeleteTags without Tags deletes every tag on AWS).
        _s(
            "RetirementMarksOnly",
            "Allow",
            ["ec2:CreateTags", "ec2:DeleteTags"],
            IMAGE,
            **marks,
            Null={f"ec2:ResourceTag/{FAMILY_TAG}": "false", "aws:TagKeys": "false"},
        ),
        _s(
            "RestoredSnapshotMarks",
            "Allow",
            ["ec2:DeleteTags"],
            SNAPSHOT,
            **marks,
            Null={"aws:TagKeys": "false"},
        ),
        _tag_on_create("UsageReportTags", ["CreateImageUsageReport"]),
    ]
    deny = [
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
        _s("NeverEveryTag", "Deny", ["ec2:DeleteTags"], Null={"aws:TagKeys": "true"}),
    ]
    return allow, deny


AUDIT_READ = [
    "ec2:Describe*",
    "ec2:Get*",
    "ec2:List*",
    "ssm:Describe*",
    "ssm:Get*",
    "autoscaling:Describe*",
    "rbin:Get*",
    "rbin:List*",
    "iam:Get*",
    "iam:List*",
    "sts:GetCallerIdentity",
]


def audit_reads() -> list[str]:
    """What the auditor may call: ``AUDIT_READ``, and each service its commands read by verb
    (``Describe*``/``Get*``/``List*``), so a reference kind registered for another service
    (Batch, EMR, CloudFormation, ...) is readable without a second list."""
    out = set(AUDIT_READ)
    for action in command_actions("auditor"):
        prefix, _, op = action.partition(":")
        out.update(f"{prefix}:{v}*" for v in ("Describe", "Get", "List") if op.startswith(v))
    return sorted(out)


def _auditor() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    deny = [{"Sid": "ReadOnly", "Effect": "Deny", "NotAction": audit_reads(), "Resource": "*"}]
    return [], deny


PERSONAS = {
    "builder": _builder,
    "releaser": _releaser,
    "consumer": _consumer,
    "retirer": _retirer,
    "auditor": _auditor,
}


def command_actions(persona: str) -> set[str]:
    """Every call the persona's commands register (the auditor's: their reads)."""
    actions: set[str] = set()
    for c in COMMANDS[persona]:
        actions |= permissions(c)
    if persona in READS_ONLY:
        actions = {a for a in actions if is_read(a)} | set(ROLE_READ_PERMISSIONS)
    return actions


def _named(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in s.get("Action", [])}


def policy(persona: str) -> dict[str, Any]:
    """The persona's policy document (KeyError for an unknown persona)."""
    conditioned, deny = PERSONAS[persona]()
    unconditional_deny = {a for s in deny if "Condition" not in s for a in s.get("Action", [])}
    plain = command_actions(persona) - _named(conditioned) - unconditional_deny
    plain -= set(LEFT_OUT.get(persona, {}))
    statements = [_s("Commands", "Allow", sorted(plain))] if plain else []
    return {"Version": "2012-10-17", "Statement": [*statements, *conditioned, *deny]}
