"""The AWS calls of the governance commands (issue 20), for ``amictl iam-policy``."""

from __future__ import annotations

from . import allowed, lineage, references, usage

PERMISSIONS: dict[str, frozenset[str]] = {
    # status reads; set also reads the channels and images and writes the settings
    "allowed-images": frozenset(allowed.SET_PERMISSIONS),
    "lineage": lineage.PERMISSIONS,
    "usage": usage.PERMISSIONS | {"ec2:DescribeImages"},
}
# `refs --aws` asks AWS's reference check on top of the inventory's reads.
REFS_PERMISSIONS = references.PERMISSIONS
