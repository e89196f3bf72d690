"""Instance-store-backed images (issue 21), which moto 5.2.5 registers as EBS ones.

As the EC2 API reference documents RegisterImage
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html) and the
user guide "Create an instance-store backed AMI": an image registered with
``ImageLocation`` (the S3 path of its bundle manifest, ``BUCKET/PATH.manifest.xml``) and no
EBS mapping for its root device is instance-store-backed: ``RootDeviceType
instance-store``, no snapshots, ``ImageLocation`` kept as given. Deregistering it leaves
the bundle in S3 (AWS never deletes it). Fleet files declare one with ``image_location``.
"""

from __future__ import annotations

import re
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses.amis import AmisResponse

from .helpers import err, patch

MANIFEST_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.manifest\.xml$")


@patch(
    "RegisterImage with ImageLocation and no EBS root mapping: an instance-store-backed "
    "image (RootDeviceType instance-store, the S3 manifest location, no snapshots)"
)
def instance_store_images() -> None:
    orig = AmisResponse.register_image

    def register_image(self: Any) -> ActionResult:
        location = self._get_param("ImageLocation")
        mappings = self._get_param("BlockDeviceMappings", []) or []
        root = self._get_param("RootDeviceName") or "/dev/sda1"
        ebs_root = any(m.get("DeviceName") == root and m.get("Ebs") for m in mappings)
        if not location or ebs_root:
            return orig(self)
        if not MANIFEST_RE.match(location):
            raise err(
                "InvalidManifest",
                f"ImageLocation {location} is not BUCKET/PATH.manifest.xml",
            )
        result = orig(self)
        ami = self.ec2_backend.amis[result.result["ImageId"]]  # type: ignore[index]
        ami.root_device_type = "instance-store"
        ami.root_device_name = root
        ami.image_location = location
        if not any(m.get("DeviceName") == root for m in ami.bdm):
            ami.bdm.insert(0, {"DeviceName": root, "VirtualName": "ephemeral0"})
        return result

    AmisResponse.register_image = register_image  # type: ignore[method-assign]
