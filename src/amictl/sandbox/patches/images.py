"""Image-creation behaviours of the amictl layer (``amictl create``, bake).

Registered with ``patches.patch`` like the others (imported by the sandbox server before
``patches.apply_all``); each one is asserted through boto3 over HTTP in
``tests/test_create.py``.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.ec2.models.instances import InstanceBackend

from .helpers import patch


def _int(v: Any) -> int | None:
    if v in (None, ""):
        return None
    return int(v)


def instance_mappings(
    backend: Any, ami: Any, requested: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The volumes AWS gives a new instance: the image's EBS mappings (root and extra),
    each overridden by a requested mapping of the same device (size, type, delete on
    termination), removed by ``NoDevice``; requested devices the image lacks are added."""
    by_device: dict[str, dict[str, Any]] = {}
    for m in getattr(ami, "bdm", None) or []:
        ebs = m.get("Ebs")
        if not ebs or not m.get("DeviceName"):
            continue
        snap_id = ebs.get("SnapshotId")
        if snap_id and snap_id not in backend.snapshots:
            snap_id = None  # another account's snapshot: keep its size only
        by_device[m["DeviceName"]] = {
            "DeviceName": m["DeviceName"],
            "VirtualName": None,
            "NoDevice": None,
            "Ebs": {
                "SnapshotId": snap_id,
                "VolumeSize": _int(ebs.get("VolumeSize")) or 8,
                "DeleteOnTermination": ebs.get("DeleteOnTermination", True),
                "VolumeType": ebs.get("VolumeType") or "gp3",
                "Iops": ebs.get("Iops"),
                "Encrypted": bool(ebs.get("Encrypted", False)),
                "KmsKeyId": None,
            },
        }
    for m in requested or []:
        device = m.get("DeviceName")
        if not device:
            continue
        if m.get("NoDevice") == "":
            by_device.pop(device, None)
            continue
        ebs = dict(m.get("Ebs") or {})
        if "VolumeSize" in ebs:
            ebs["VolumeSize"] = _int(ebs["VolumeSize"])
        if device in by_device:
            base = by_device[device]["Ebs"]
            for key, value in ebs.items():
                if value is not None and key not in ("SnapshotId", "Encrypted"):
                    base[key] = value
            if ebs.get("Encrypted") in (True, "true"):
                # an unencrypted snapshot's volume can be encrypted (bake), never the reverse
                base["Encrypted"] = True
                base["KmsKeyId"] = ebs.get("KmsKeyId")
        else:
            new = copy.deepcopy(m)
            new["Ebs"] = ebs
            by_device[device] = new
    return list(by_device.values())


@patch(
    "RunInstances: an instance gets a volume per EBS mapping of its image (root and extra) "
    "merged with the requested ones, so CreateImage snapshots every attached EBS volume "
    "keeping device, size and type"
)
def instance_volumes_from_image() -> None:
    orig = InstanceBackend.run_instances

    def run_instances(
        self: Any,
        image_id: str,
        count: int,
        user_data: Any,
        security_group_names: Any,
        **kwargs: Any,
    ) -> Any:
        ami = self.amis.get(image_id) if image_id else None
        if ami is not None and not kwargs.get("launch_config"):
            requested = kwargs.get("block_device_mappings")
            if requested is None and kwargs.get("launch_template"):
                template = self._get_template_from_args(kwargs["launch_template"])
                requested = template.data.get("BlockDeviceMappings")
            merged = instance_mappings(self, ami, requested)
            if merged:
                kwargs["block_device_mappings"] = merged
        return orig(self, image_id, count, user_data, security_group_names, **kwargs)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
