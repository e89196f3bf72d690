"""Sandbox behaviours for distribution and sharing that moto 5.2.5 lacks.

Imported by ``patches.apply_all`` so that its ``@patch`` functions register with the
others; asserted through boto3 over HTTP in ``tests/test_distribute.py``.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.amis import AmiBackend
from moto.ec2.responses.amis import AmisResponse

from .helpers import err, patch

BLOCKED = "block-new-sharing"
UNBLOCKED = "unblocked"

# Image Block Public Access per (account, region). The sandbox starts "unblocked", as an
# account that already had public AMIs does on AWS (new accounts start blocked there).
IMAGE_BLOCK_PUBLIC_ACCESS: dict[tuple[str, str], str] = {}

# The error AWS returns for ModifyImageAttribute adding Group=all while the block is on
# (seen in hortonworks/cloudbreak-images#926 and aws-deepracer-community/deepracer-on-the-spot#106).
BLOCKED_CODE = "OperationNotPermitted"
BLOCKED_MESSAGE = (
    "You can't publicly share this image because block public access for AMIs is enabled "
    "for this account. To publicly share the image, you must call the "
    "DisableImageBlockPublicAccess API."
)


def block_state(account: str, region: str) -> str:
    return IMAGE_BLOCK_PUBLIC_ACCESS.get((account, region), UNBLOCKED)


@patch(
    "Get/Enable/DisableImageBlockPublicAccess per account and region; while block-new-sharing, "
    "ModifyImageAttribute adding Group=all fails with OperationNotPermitted (public images stay public)"
)
def image_block_public_access() -> None:
    def get_state(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        return ActionResult(
            {
                "ImageBlockPublicAccessState": block_state(b.account_id, b.region_name),
                "ManagedBy": "account",
            }
        )

    def enable(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        state = self._get_param("ImageBlockPublicAccessState")
        if state != BLOCKED:
            raise err(
                "InvalidParameterValue",
                f"Value ({state}) for parameter ImageBlockPublicAccessState is invalid. "
                f"Valid value: {BLOCKED}.",
            )
        IMAGE_BLOCK_PUBLIC_ACCESS[(b.account_id, b.region_name)] = BLOCKED
        return ActionResult({"ImageBlockPublicAccessState": BLOCKED})

    def disable(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        IMAGE_BLOCK_PUBLIC_ACCESS[(b.account_id, b.region_name)] = UNBLOCKED
        return ActionResult({"ImageBlockPublicAccessState": UNBLOCKED})

    orig_modify = AmiBackend.modify_image_attribute

    def modify_image_attribute(
        self: Any, ami_id: str, launch_permissions_to_add: Any, launch_permissions_to_remove: Any
    ) -> None:
        adds = launch_permissions_to_add or []
        if any(lp.get("Group") == "all" for lp in adds) and (
            block_state(self.account_id, self.region_name) == BLOCKED
        ):
            raise err(BLOCKED_CODE, BLOCKED_MESSAGE)
        orig_modify(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove)

    AmisResponse.get_image_block_public_access_state = get_state  # type: ignore[attr-defined]
    AmisResponse.enable_image_block_public_access = enable  # type: ignore[attr-defined]
    AmisResponse.disable_image_block_public_access = disable  # type: ignore[attr-defined]
    AmiBackend.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]
