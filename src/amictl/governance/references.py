"""A second opinion on use: AWS's own DescribeImageReferences beside amictl's graph.

``aws_image_references`` asks AWS what references the images (10 image ids a call, the
API's limit) and returns them as ``Reference`` rows of kind ``aws-reference``; a missing
permission or API (an older region, an endpoint without it) is returned as one message,
so that the caller says it once and goes on with amictl's own graph.
``reference_disagreements`` names where the two disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..aws.session import Connector, Target, aws_error
from ..errors import AmictlError
from ..inventory.collectors import ALIVE_STATES
from ..model import Reference

BATCH = 10  # DescribeImageReferences: at most 10 image ids a call
KIND = "aws-reference"
PERMISSIONS = frozenset({"ec2:DescribeImageReferences"})
# amictl counts instances that are not terminated (inventory.collectors.ALIVE_STATES);
# AWS's default is every state: ask for the same states so that the two can be compared.
RESOURCE_TYPES: list[dict[str, Any]] = [
    {
        "ResourceType": "ec2:Instance",
        "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": sorted(ALIVE_STATES)}],
    },
    {"ResourceType": "ec2:LaunchTemplate"},  # AWS's documented default depth: 10 versions
    {"ResourceType": "ssm:Parameter"},
    {"ResourceType": "imagebuilder:ImageRecipe"},
    {"ResourceType": "imagebuilder:ContainerRecipe"},
]
# Codes that mean "this account or region cannot ask": said once, not an error.
UNAVAILABLE = {
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAction",
    "UnsupportedOperation",
    "NotImplemented",
    "OperationNotPermitted",
}
NAMES = {
    "ec2:Instance": "instance",
    "ec2:LaunchTemplate": "launch template",
    "ssm:Parameter": "SSM parameter",
    "imagebuilder:ImageRecipe": "Image Builder image recipe",
    "imagebuilder:ContainerRecipe": "Image Builder container recipe",
}


def resource_id(resource_type: str, arn: str) -> str:
    """The resource's own id from its ARN (instance id, launch template id, parameter name)."""
    tail = arn.split(":", 5)[-1]
    if resource_type == "ssm:Parameter":
        return "/" + tail.split("/", 1)[-1] if "/" in tail else tail
    return tail.split("/", 1)[-1] if "/" in tail else tail


def _to_reference(r: dict[str, Any], target: Target) -> Reference:
    rtype = r.get("ResourceType", "")
    arn = r.get("Arn", "")
    rid = resource_id(rtype, arn)
    return Reference(
        KIND,
        rid,
        f"AWS DescribeImageReferences: {NAMES.get(rtype, rtype)} {rid} ({arn})",
        r.get("ImageId", ""),
        target.account,
        target.region,
    )


def _ask(ec2: Any, ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    pages = ec2.get_paginator("describe_image_references").paginate(
        ImageIds=ids, ResourceTypes=RESOURCE_TYPES
    )
    for page in pages:
        found.extend(page.get("ImageReferences") or [])
    return found


def aws_image_references(
    connector: Connector, target: Target, image_ids: Iterable[str]
) -> tuple[list[Reference], str | None]:
    """AWS's references to the images (of ``target``'s account and region), batched by 10.

    The second value is None, or why AWS could not be asked (missing permission or API):
    the references found until then are kept and the remaining images are not asked.
    An image deregistered meanwhile (``InvalidAMIID.NotFound``) is skipped.
    """
    ids = list(dict.fromkeys(i for i in image_ids if i))
    ec2 = connector.client("ec2", target.region, target.role_arn)
    refs: list[Reference] = []
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        try:
            found = _ask_batch(ec2, batch, target)
        except AmictlError as exc:
            code = getattr(exc, "code", "")
            why = "no permission" if "Denied" in code or "Unauthorized" in code else "unavailable"
            return refs, (
                f"AWS's reference check (DescribeImageReferences) is {why} in "
                f"{target.account}/{target.region}: {exc.message}; using amictl's own "
                "reference graph only"
            )
        refs.extend(_to_reference(r, target) for r in found)
    return refs, None


def _ask_batch(ec2: Any, batch: list[str], target: Target) -> list[dict[str, Any]]:
    try:
        return _ask(ec2, batch)
    except Exception as exc:  # noqa: BLE001
        err = aws_error(exc, "DescribeImageReferences", target.region)
    if not err.code.startswith("InvalidAMIID") or len(batch) == 1:
        if err.code.startswith("InvalidAMIID"):
            return []  # gone since it was listed: nothing references it any more
        raise err
    out: list[dict[str, Any]] = []
    for one in batch:  # which one is gone: ask one by one
        out.extend(_ask_batch(ec2, [one], target))
    return out


def _key(r: Reference) -> tuple[str, str, str] | None:
    """What both sides can name: (image, resource class, resource id); None for kinds AWS
    does not check (ASGs, launch configurations, child images, sharing, recent launches)."""
    if r.kind == KIND:
        if r.detail.startswith(f"AWS DescribeImageReferences: {NAMES['ssm:Parameter']} "):
            return (r.image_id, "SSM parameter", r.id.lstrip("/"))
        if r.id.startswith("i-"):
            return (r.image_id, "instance", r.id)
        if r.id.startswith("lt-"):
            return (r.image_id, "launch template", r.id)
        return None
    if r.kind == "instance":
        return (r.image_id, "instance", r.id)
    if r.kind == "launch-template-version":
        return (r.image_id, "launch template", r.id.split(":", 1)[0])
    if r.kind in ("ssm-parameter", "channel"):
        return (r.image_id, "SSM parameter", r.id.lstrip("/"))
    return None


def reference_disagreements(
    inventory_refs: Iterable[Reference], aws_refs: Iterable[Reference]
) -> list[str]:
    """Where AWS's references and amictl's graph disagree, one sentence each.

    Give both sides for the same images. Only what AWS checks is compared: instances,
    launch templates and SSM parameters.
    """
    ours: dict[tuple[str, str, str], Reference] = {}
    for r in inventory_refs:
        k = _key(r)
        if k is not None:
            ours.setdefault(k, r)
    theirs: dict[tuple[str, str, str], Reference] = {}
    for r in aws_refs:
        k = _key(r)
        if k is not None:
            theirs.setdefault(k, r)
    out = []
    for k in sorted(theirs.keys() - ours.keys()):
        out.append(
            f"{k[0]}: AWS reports {k[1]} {k[2]} referencing it, amictl's graph does not "
            "(AWS's word keeps it)"
        )
    for k in sorted(ours.keys() - theirs.keys()):
        r = ours[k]
        why = {
            "SSM parameter": "AWS checks only parameters of data type aws:ec2:image",
            "launch template": "AWS checks only the latest versions of a template",
            "instance": "AWS may not list it yet",
        }[k[1]]
        out.append(
            f"{k[0]}: amictl found {r.detail}, AWS's DescribeImageReferences does not "
            f"report it ({why})"
        )
    return out


def second_opinion(
    connector: Connector, targets: list[Target], inventory: Any, image_ids: Iterable[str]
) -> tuple[dict[str, list[Reference]], list[str], list[str]]:
    """For the images a plan would retire: AWS's references per image, the disagreements
    with the inventory's graph, and the problems (one per account/region that could not be
    asked). ``inventory`` is an ``amictl.model.Inventory``; images it does not have are
    skipped. Each (account, region) is asked in batches of 10."""
    roles = {t.account: t.role_arn for t in targets}
    groups: dict[tuple[str, str], list[str]] = {}
    for iid in dict.fromkeys(image_ids):
        img = inventory.by_id.get(iid)
        if img is not None:
            groups.setdefault((img.account, img.region), []).append(iid)
    by_image: dict[str, list[Reference]] = {}
    disagreements: list[str] = []
    problems: list[str] = []
    for (account, region), ids in sorted(groups.items()):
        t = Target(account, region, roles.get(account))
        refs, problem = aws_image_references(connector, t, ids)
        if problem:
            problems.append(problem)
            continue
        for r in refs:
            by_image.setdefault(r.image_id, []).append(r)
        ours = [r for iid in ids for r in inventory.refs(iid)]
        disagreements.extend(reference_disagreements(ours, refs))
    return by_image, disagreements, problems
