"""Per-volume options of ``create from-snapshot`` and the ``--tag K=V`` of ``create`` (issue 21).

``--volume N:type=io2,size=100,iops=4000,throughput=250,encrypted=true,kms-key=KEY``
(N: the snapshot's position, 1 = root, or its device name) sets that volume's EBS mapping
in RegisterImage, checked against the EC2 API reference (EbsBlockDevice):

* type one of gp2, gp3, io1, io2, st1, sc1, standard; size in GiB at least the snapshot's,
  at most 16,384 (standard 1,024; st1/sc1 at least 125; io2 65,536);
* iops only for gp3 (3,000-16,000), io1 (100-64,000), io2 (100-256,000), and required
  for io1/io2; throughput only for gp3 (125-1,000 MiB/s);
* encryption: RegisterImage refuses ``Encrypted`` on a mapping made from a snapshot, so an
  unencrypted snapshot (or one under another key) is first copied encrypted
  (CopySnapshot ``Encrypted``/``KmsKeyId``, waited for with ``snapshot_completed``) and
  the image registered over the copy. ``kms-key`` implies ``encrypted=true``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from ..aws import stopping
from ..aws.session import Target, aws_error
from ..errors import InputError
from ..tagnames import check_user_tags

TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
IOPS = {"gp3": (3000, 16000), "io1": (100, 64000), "io2": (100, 256000)}
SIZES = {"standard": (1, 1024), "st1": (125, 16384), "sc1": (125, 16384), "io2": (4, 65536)}
KEYS = ("type", "size", "iops", "throughput", "encrypted", "kms-key")
RESERVED_TAG_PREFIXES = ("amictl:", "aws:")
PERMISSIONS = frozenset(
    {
        "ec2:CopySnapshot",
        "kms:CreateGrant",
        "kms:DescribeKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:Decrypt",
    }
)
"""On top of ``create``'s: encrypted copies of snapshots under a KMS key."""


@dataclass
class VolumeOptions:
    volume_type: str | None = None
    size: int | None = None
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool = False
    kms_key: str | None = None


def _int(value: str, key: str, text: str) -> int:
    if not value.isdigit():
        raise InputError(f"{key}={value!r} is not a whole number in {text!r}", key="--volume")
    return int(value)


def parse_volume(text: str) -> tuple[str, VolumeOptions]:
    """``"2:type=gp3,iops=4000"`` -> ("2", options); shape errors are InputError (exit 2)."""
    sel, sep, rest = text.partition(":")
    if not sep or not sel or not rest:
        raise InputError(
            f"{text!r} is not N:key=value,... (N: 1 = root, or a device name)", key="--volume"
        )
    opts = VolumeOptions()
    for part in rest.split(","):
        key, eq, value = part.strip().partition("=")
        if not eq or key not in KEYS:
            raise InputError(
                f"{part!r} in {text!r}: expected one of {', '.join(KEYS)} as key=value",
                key="--volume",
            )
        if key == "type":
            if value not in TYPES:
                raise InputError(f"type {value!r}: one of {', '.join(TYPES)}", key="--volume")
            opts.volume_type = value
        elif key == "size":
            opts.size = _int(value, key, text)
        elif key == "iops":
            opts.iops = _int(value, key, text)
        elif key == "throughput":
            opts.throughput = _int(value, key, text)
        elif key == "encrypted":
            if value not in ("true", "false"):
                raise InputError(f"encrypted={value!r}: true or false", key="--volume")
            opts.encrypted = value == "true"
        else:
            if not value:
                raise InputError("kms-key is empty", key="--volume")
            opts.kms_key = value
    if opts.kms_key and "encrypted=false" in rest:
        raise InputError("kms-key needs encrypted=true", key="--volume")
    opts.encrypted = opts.encrypted or bool(opts.kms_key)
    return sel, opts


def check(opts: VolumeOptions, snapshot_size: int, where: str) -> None:
    """The EbsBlockDevice rules for the volume's final type and size."""
    vtype = opts.volume_type or "gp3"
    size = opts.size if opts.size is not None else snapshot_size
    low, high = SIZES.get(vtype, (1, 16384))
    if size < snapshot_size:
        raise InputError(
            f"{where}: size {size} GiB is smaller than its snapshot ({snapshot_size} GiB)",
            key="--volume",
        )
    if not low <= size <= high:
        raise InputError(
            f"{where}: {vtype} volumes are {low}-{high} GiB, not {size}", key="--volume"
        )
    if opts.iops is not None:
        if vtype not in IOPS:
            raise InputError(f"{where}: iops is not supported for {vtype} volumes", key="--volume")
        lo, hi = IOPS[vtype]
        if not lo <= opts.iops <= hi:
            raise InputError(
                f"{where}: {vtype} iops are {lo}-{hi}, not {opts.iops}", key="--volume"
            )
    elif vtype in ("io1", "io2"):
        raise InputError(f"{where}: {vtype} volumes need iops", key="--volume")
    if opts.throughput is not None:
        if vtype != "gp3":
            raise InputError(f"{where}: throughput is for gp3 volumes only", key="--volume")
        if not 125 <= opts.throughput <= 1000:
            raise InputError(
                f"{where}: gp3 throughput is 125-1000 MiB/s, not {opts.throughput}", key="--volume"
            )


# Tags amictl writes from other options; --tag may not set them another way.
OWN_TAGS = ("family", "version")
MAX_USER_TAGS = 40  # EC2 allows 50 tags per resource; amictl writes up to 6 of its own


def parse_tags(values: Sequence[str]) -> dict[str, str]:
    """``--tag K=V`` (repeatable) as a dict; bad or reserved keys are refused (exit 2): the
    ``amictl:`` namespace (amictl's own, ``tagnames.check_user_tags``), ``aws:`` (AWS's), and
    ``family``/``version`` (set from --family/--version)."""
    tags: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{text!r}: expected KEY=VALUE", key="--tag")
        if len(key) > 128 or len(value) > 256:
            raise InputError(
                f"{key[:40]!r}: a tag key has at most 128 characters, a value 256", key="--tag"
            )
        if key.lower().startswith("aws:"):
            raise InputError(f"tag {key!r}: keys starting with 'aws:' are AWS's", key="--tag")
        if key in OWN_TAGS:
            raise InputError(
                f"tag {key!r} is set from --{key}", key="--tag", hint=f"use --{key} instead"
            )
        if key in tags and tags[key] != value:
            raise InputError(f"tag {key!r} is given twice with different values", key="--tag")
        tags[key] = value
    check_user_tags(tags, "--tag")
    if len(tags) > MAX_USER_TAGS:
        raise InputError(f"at most {MAX_USER_TAGS} tags, got {len(tags)}", key="--tag")
    return tags


def resolve(
    specs: Sequence[str], snapshots: Sequence[str], devices: Sequence[str]
) -> dict[int, VolumeOptions]:
    """Snapshot position -> options, from ``--volume`` values."""
    out: dict[int, VolumeOptions] = {}
    for text in specs:
        sel, opts = parse_volume(text)
        if sel.isdigit():
            i = int(sel) - 1
            if not 0 <= i < len(snapshots):
                raise InputError(
                    f"{text!r}: there are {len(snapshots)} snapshots (1 = root)", key="--volume"
                )
        elif sel in devices[: len(snapshots)]:
            i = list(devices).index(sel)
        else:
            raise InputError(f"{text!r}: no volume {sel}", key="--volume")
        if i in out:
            raise InputError(f"volume {sel} is given twice", key="--volume")
        out[i] = opts
    return out


def apply(
    ec2: Any,
    target: Target,
    mappings: list[dict[str, Any]],
    options: dict[int, VolumeOptions],
    snapshots: dict[str, dict[str, Any]],
    waiter_delay: int = 15,
) -> list[str]:
    """Set each mapping's EBS options; encrypted copies made where asked. The snapshot ids
    the image is registered over (copies replace their sources)."""
    for i, opts in options.items():  # every volume checked before anything is copied
        snap = snapshots[mappings[i]["Ebs"]["SnapshotId"]]
        check(opts, int(snap["VolumeSize"]), mappings[i]["DeviceName"])
    for i, opts in options.items():
        ebs = mappings[i]["Ebs"]
        snap = snapshots[ebs["SnapshotId"]]
        if opts.volume_type:
            ebs["VolumeType"] = opts.volume_type
        if opts.size is not None:
            ebs["VolumeSize"] = opts.size
        if opts.iops is not None:
            ebs["Iops"] = opts.iops
        if opts.throughput is not None:
            ebs["Throughput"] = opts.throughput
        wants_key = opts.kms_key and opts.kms_key != snap.get("KmsKeyId")
        if opts.encrypted and (not snap.get("Encrypted") or wants_key):
            ebs["SnapshotId"] = _encrypted_copy(
                ec2, target, ebs["SnapshotId"], opts.kms_key, waiter_delay
            )
    return [m["Ebs"]["SnapshotId"] for m in mappings]


def _encrypted_copy(
    ec2: Any, target: Target, snapshot_id: str, kms_key: str | None, delay: int
) -> str:
    kw: dict[str, Any] = {
        "SourceSnapshotId": snapshot_id,
        "SourceRegion": target.region,
        "Encrypted": True,
        "Description": f"amictl: encrypted copy of {snapshot_id}",
    }
    if kms_key:
        kw["KmsKeyId"] = kms_key
    try:
        new = str(ec2.copy_snapshot(**kw)["SnapshotId"])
        stopping.wait(
            ec2.get_waiter("snapshot_completed"),
            SnapshotIds=[new],
            WaiterConfig={"Delay": delay, "MaxAttempts": 240},
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise aws_error(exc, "CopySnapshot", target.region) from None
    return new
