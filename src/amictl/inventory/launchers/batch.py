"""AWS Batch compute environments and the images their instances launch from (issue 26).

A managed compute environment launches ``computeResources.imageId``, or per image type
``ec2Configuration[].imageIdOverride``, on every job wave; when it names a launch
template, the image of the template version it names (resolved after the scan against
the ``launch-templates`` slice, like an Auto Scaling group's: see
:func:`amictl.inventory.launchers.templates.template_references`).
"""

from __future__ import annotations

from typing import Any

from ...model import Reference
from ..registry import PAGE_SIZES, SliceData, collector, pages

PAGE_SIZES["describe_compute_environments"] = 100


def _template_specs(ce: dict[str, Any], rid: str, label: str) -> list[Any]:
    """(kind, id, detail, spec) of the launch template the environment names (and the
    overrides per instance type), as ``templates.template_references`` takes them."""
    lt = (ce.get("computeResources") or {}).get("launchTemplate") or {}
    out = []
    for t in [lt, *(lt.get("overrides") or [])]:
        spec = {
            "LaunchTemplateId": t.get("launchTemplateId"),
            "LaunchTemplateName": t.get("launchTemplateName"),
            "Version": t.get("version") or "$Default",
        }
        if spec["LaunchTemplateId"] or spec["LaunchTemplateName"]:
            out.append(("batch-compute-environment", rid, f"{label} via launch template", spec))
    return out


def launches_amazon_default(ce: dict[str, Any]) -> bool:
    """Whether a managed EC2/Spot compute environment launches Amazon's default
    (ECS-optimized) AMI: no ``imageId``, no launch template, and an image type without an
    ``imageIdOverride`` (no ec2Configuration at all: Batch's default type). Fargate runs no
    AMI; an unmanaged environment launches nothing itself."""
    res = ce.get("computeResources") or {}
    if ce.get("status") == "DELETED" or ce.get("type") != "MANAGED":
        return False
    if res.get("type") not in ("EC2", "SPOT") or res.get("imageId") or res.get("launchTemplate"):
        return False
    confs = res.get("ec2Configuration") or []
    return not confs or any(not c.get("imageIdOverride") for c in confs)


@collector(
    "batch-compute-environments",
    "batch",
    ["batch:DescribeComputeEnvironments"],
    "AWS Batch compute environments: imageId, ec2Configuration imageIdOverride, launch template",
    depends_on=("launch-templates",),
)
def collect_batch_compute_environments(batch: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    specs: list[Any] = []
    for page in pages(batch, "describe_compute_environments"):
        for ce in page.get("computeEnvironments", []):
            out.items += 1
            if ce.get("status") == "DELETED":
                continue
            rid = ce.get("computeEnvironmentArn") or ce["computeEnvironmentName"]
            label = f"Batch compute environment {rid} ({ce.get('state', '')})"
            res = ce.get("computeResources") or {}
            found = [("imageId", res.get("imageId") or "")]
            found += [
                (
                    f"ec2Configuration {c.get('imageType', '')} imageIdOverride",
                    c.get("imageIdOverride") or "",
                )
                for c in res.get("ec2Configuration") or []
            ]
            for where, image in dict.fromkeys(found):
                if image.startswith("ami-"):
                    out.references.append(
                        Reference(
                            "batch-compute-environment",
                            rid,
                            f"{label} {where}",
                            image,
                            account,
                            region,
                        )
                    )
            specs += _template_specs(ce, rid, label)
    if specs:
        out.raw["launch_template_specs"] = specs
    return out
