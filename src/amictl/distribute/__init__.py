"""Distribution: copy images across regions, share them, and list who can launch what."""

from .copy import PERMISSIONS as COPY_PERMISSIONS
from .copy import copy_image
from .share import PERMISSIONS as SHARE_PERMISSIONS
from .share import Grantees, block_public_access_state, change_sharing, grantees
from .sharing import PERMISSIONS as SHARING_PERMISSIONS
from .sharing import sharing

PERMISSIONS: dict[str, set[str]] = {
    "copy": COPY_PERMISSIONS,
    "share": SHARE_PERMISSIONS,
    # issue 20: the image usage report of the accounts losing access
    "unshare": (SHARE_PERMISSIONS - {"ec2:GetImageBlockPublicAccessState"})
    | {
        "ec2:CreateImageUsageReport",
        "ec2:DescribeImageUsageReports",
        "ec2:DescribeImageUsageReportEntries",
        "ec2:CreateTags",
    },
    "sharing": SHARING_PERMISSIONS,
}

__all__ = [
    "PERMISSIONS",
    "Grantees",
    "block_public_access_state",
    "change_sharing",
    "copy_image",
    "grantees",
    "sharing",
]
