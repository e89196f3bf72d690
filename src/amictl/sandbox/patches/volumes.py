"""EBS volume options on images (issue 21), as the EC2 API reference documents them and
moto 5.2.5 does not:

* CopySnapshot ``Encrypted`` / ``KmsKeyId``: the copy is encrypted (under the given key, or
  ``alias/aws/ebs``); ``KmsKeyId`` without ``Encrypted`` is refused
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopySnapshot.html). moto kept
  the source's encryption.
* RegisterImage keeps each EBS mapping's ``Iops`` and ``Throughput`` (moto dropped them),
  refuses ``Iops`` for gp2/st1/sc1/standard and ``Throughput`` for all but gp3, and refuses
  ``Encrypted`` on a mapping made from a snapshot (EbsBlockDevice: "If you are creating a
  block device mapping from an existing encrypted or unencrypted snapshot, you must omit
  this parameter").
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from .helpers import as_bool, err, patch

IOPS_TYPES = {"gp3", "io1", "io2"}


@patch(
    "CopySnapshot Encrypted/KmsKeyId encrypts the copy; RegisterImage keeps Iops/Throughput "
    "per mapping and refuses Encrypted on a mapping from a snapshot"
)
def ebs_volume_options() -> None:
    orig_copy = ElasticBlockStore.copy_snapshot
    orig_register = AmisResponse.register_image

    def copy_snapshot(self: Any) -> ActionResult:
        encrypted = as_bool(self._get_param("Encrypted") or False)
        key = self._get_param("KmsKeyId")
        if key and not encrypted:
            raise err("InvalidParameterDependency", "KmsKeyId requires Encrypted to be true")
        result = orig_copy(self)
        if encrypted:
            snap = self.ec2_backend.snapshots[result.result["SnapshotId"]]  # type: ignore[index]
            snap.encrypted = True
            snap.kms_key_id = key or "alias/aws/ebs"
        return result

    def register_image(self: Any) -> ActionResult:
        mappings = self._get_param("BlockDeviceMappings", []) or []
        extra: dict[str, dict[str, int]] = {}
        for m in mappings:
            ebs = m.get("Ebs") or {}
            vtype = ebs.get("VolumeType", "gp3")
            if ebs.get("SnapshotId") and ebs.get("Encrypted") is not None:
                raise err(
                    "InvalidParameterCombination",
                    "The parameter Encrypted is not allowed with a snapshot: omit it "
                    "(copy the snapshot encrypted first)",
                )
            if ebs.get("Iops") is not None and vtype not in IOPS_TYPES:
                raise err(
                    "InvalidParameterCombination",
                    f"The parameter iops is not supported for {vtype} volumes.",
                )
            if ebs.get("Throughput") is not None and vtype != "gp3":
                raise err(
                    "InvalidParameterCombination",
                    f"The parameter throughput is not supported for {vtype} volumes.",
                )
            keep = {k: int(ebs[k]) for k in ("Iops", "Throughput") if ebs.get(k) is not None}
            if keep:
                extra[m["DeviceName"]] = keep
        result = orig_register(self)
        if extra:
            ami = self.ec2_backend.amis[result.result["ImageId"]]  # type: ignore[index]
            for m in ami.bdm:
                if m.get("DeviceName") in extra and "Ebs" in m:
                    m["Ebs"].update(extra[m["DeviceName"]])
        return result

    ElasticBlockStore.copy_snapshot = copy_snapshot  # type: ignore[method-assign]
    AmisResponse.register_image = register_image  # type: ignore[method-assign]
