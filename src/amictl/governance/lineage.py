"""The chain of images an image was made from: AWS's GetImageAncestry, else lineage tags.

GetImageAncestry follows CopyImage (across regions) and CreateImage back to the root.
Without it (no permission, API missing) amictl follows what DescribeImages and its own
tags record: ``SourceImageId``/``SourceImageRegion``, ``amictl:source-image`` and
``amictl:source-region``. Each ancestor's state is read where it lives.
"""

from __future__ import annotations

from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..distribute.common import describe_image, find_image
from ..errors import AmictlError

PERMISSIONS = frozenset({"ec2:GetImageAncestry", "ec2:DescribeImages"})
MAX_DEPTH = 50


def _tags(data: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in data.get("Tags") or []}


def _parent(data: dict[str, Any], region: str) -> tuple[str, str] | None:
    src = data.get("SourceImageId")
    if src:
        return src, data.get("SourceImageRegion") or region
    tags = _tags(data)
    src = tags.get("amictl:source-image")
    if src:
        return src, tags.get("amictl:source-region") or region
    return None


def _row(depth: int, image_id: str, region: str, data: dict[str, Any] | None) -> dict[str, Any]:
    data = data or {}
    return {
        "depth": depth,
        "image_id": image_id,
        "region": region,
        "name": data.get("Name"),
        "owner": data.get("ImageOwnerAlias") or data.get("OwnerId"),
        "state": data.get("State") or "gone",
        "created": data.get("CreationDate"),
        "watermarks": [w.get("WatermarkKey") for w in data.get("ImageWatermarks") or []],
        "source_image_id": None,
        "source_image_region": None,
    }


def lineage(
    connector: Connector, targets: list[Target], image_id: str
) -> tuple[list[dict[str, Any]], str, str | None]:
    """(rows from the image to its root, how they were found, why AWS's API was not used).

    ``how`` is ``GetImageAncestry`` or ``lineage tags``. An ancestor that is gone
    (deregistered, or not visible to this account) has state ``gone``.
    """
    found = find_image(connector, targets, image_id)
    t = found.target
    ec2 = connector.client("ec2", t.region, t.role_arn)

    def state_of(iid: str, region: str) -> dict[str, Any] | None:
        if iid == found.image_id:
            return found.data
        client = connector.client("ec2", region, t.role_arn)
        return describe_image(client, iid, region)

    try:
        entries = ec2.get_image_ancestry(ImageId=found.image_id)["ImageAncestryEntries"]
    except Exception as exc:  # noqa: BLE001
        why: str | None = aws_error(exc, "GetImageAncestry", t.region).message
    else:
        rows = []
        region = t.region
        for depth, e in enumerate(entries):
            try:
                data = state_of(e["ImageId"], region)
            except AmictlError:
                data = None
            row = _row(depth, e["ImageId"], region, data)
            row["created"] = row["created"] or e.get("CreationDate")
            row["owner"] = row["owner"] or e.get("ImageOwnerAlias")
            row["source_image_id"] = e.get("SourceImageId")
            row["source_image_region"] = e.get("SourceImageRegion")
            rows.append(row)
            region = e.get("SourceImageRegion") or region
        last = entries[-1] if entries else {}
        if last.get("SourceImageId"):  # the chain stops at a parent AWS no longer has
            try:
                data = state_of(last["SourceImageId"], region)
            except AmictlError:
                data = None
            rows.append(_row(len(rows), last["SourceImageId"], region, data))
        return rows, "GetImageAncestry", None
    rows = []
    seen: set[str] = set()
    cur: tuple[str, str] | None = (found.image_id, t.region)
    while cur and cur[0] not in seen and len(rows) < MAX_DEPTH:
        seen.add(cur[0])
        try:
            data = state_of(*cur)
        except AmictlError:
            data = None
        row = _row(len(rows), cur[0], cur[1], data)
        parent = _parent(data, cur[1]) if data else None
        if parent:
            row["source_image_id"], row["source_image_region"] = parent
        rows.append(row)
        cur = parent
    return rows, "lineage tags", why


def ancestry_ids(connector: Connector, target: Target, image_id: str) -> list[str] | None:
    """The ids GetImageAncestry names for ``image_id`` (its sources back to the root, the
    image itself excluded), or None when AWS does not answer (no permission, API missing):
    the caller then relies on lineage tags alone (``amictl revoke``)."""
    ec2 = connector.client("ec2", target.region, target.role_arn)
    try:
        entries = ec2.get_image_ancestry(ImageId=image_id)["ImageAncestryEntries"]
    except Exception:  # noqa: BLE001 - absent API or permission: tags decide
        return None
    out = [str(e["ImageId"]) for e in entries if e.get("ImageId")]
    out += [str(e["SourceImageId"]) for e in entries if e.get("SourceImageId")]
    return [i for i in dict.fromkeys(out) if i != image_id]
