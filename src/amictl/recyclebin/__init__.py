"""Recycle Bin support: coverage of retention rules, rules amictl creates, the bin, restore.

A library: it never prints and never exits; AWS failures become ``AwsError`` (or, for
:func:`coverage`, an ``unknown`` coverage with the AWS error code). The CLI is
``amictl recycle-bin`` (``amictl.cli.recyclebin_cmd``).
"""

from __future__ import annotations

from .bin import NotInRecycleBin, kind_of, list_bin, restore
from .model import (
    EBS_SNAPSHOT,
    EC2_IMAGE,
    RESOURCE_TYPES,
    Coverage,
    ResourceCoverage,
    Rule,
    Scope,
    resource_type,
)
from .rules import MAX_DAYS, MIN_DAYS, check_retention, coverage, ensure, list_rules

# IAM actions per library function (`amictl iam-policy recycle-bin` is their union).
PERMISSIONS: dict[str, frozenset[str]] = {
    "coverage": frozenset({"rbin:ListRules", "rbin:GetRule"}),
    "ensure": frozenset({"rbin:ListRules", "rbin:GetRule", "rbin:CreateRule"}),
    "list_bin": frozenset({"ec2:ListImagesInRecycleBin", "ec2:ListSnapshotsInRecycleBin"}),
    "restore": frozenset(
        {
            "ec2:ListImagesInRecycleBin",
            "ec2:ListSnapshotsInRecycleBin",
            "ec2:RestoreImageFromRecycleBin",
            "ec2:RestoreSnapshotFromRecycleBin",
            "ec2:DescribeImages",
            "ec2:DescribeSnapshots",
            "ec2:DeleteTags",  # the retirement marks of a restored image
        }
    ),
}
ALL_PERMISSIONS: frozenset[str] = frozenset().union(*PERMISSIONS.values())

__all__ = [
    "ALL_PERMISSIONS",
    "EBS_SNAPSHOT",
    "EC2_IMAGE",
    "MAX_DAYS",
    "MIN_DAYS",
    "PERMISSIONS",
    "RESOURCE_TYPES",
    "Coverage",
    "NotInRecycleBin",
    "ResourceCoverage",
    "Rule",
    "Scope",
    "check_retention",
    "coverage",
    "ensure",
    "kind_of",
    "list_bin",
    "list_rules",
    "resource_type",
    "restore",
]
