"""EC2 Image Builder resources that launch an image: image recipes' and container recipes'
parent image (and a container recipe's build-instance image), when it is an image id (a
parent named by an Image Builder image ARN is a managed image, see ``keep.managed``), and
every image id a distribution configuration names (its launch template settings name
launch templates, whose versions the ``launch-templates`` kind already reads).

The recipes' summaries (List*) carry the parent image: one call a page. A distribution
configuration is read whole (GetDistributionConfiguration), a few at a time.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ... import interrupts
from ...model import Reference
from ..registry import SliceData, collector, pages
from .amis import ami_ids_in, is_ami_id, references

RECIPE = "imagebuilder-recipe"
DISTRIBUTION = "imagebuilder-distribution"
WORKERS = 3


def amazon_parent(parent: str) -> bool:
    """Whether a recipe's parent is an Image Builder image ARN that Amazon owns
    (``arn:aws:imagebuilder:REGION:aws:image/...``): its build launches an Amazon AMI."""
    parts = str(parent or "").split(":")
    return len(parts) >= 6 and parts[2] == "imagebuilder" and parts[4] == "aws"


def _recipe_refs(
    summary: dict[str, Any], what: str, fields: tuple[str, ...], account: str, region: str
) -> list[Reference]:
    places = [(f, str(summary[f])) for f in fields if is_ami_id(summary.get(f))]
    arn = str(summary.get("arn", ""))
    label = f"Image Builder {what} {summary.get('name', '')} ({arn})"
    return references(RECIPE, arn, label, places, account, region)


def _distribution_refs(ib: Any, arn: str, account: str, region: str) -> list[Reference]:
    interrupts.check()
    try:
        cfg = ib.get_distribution_configuration(distributionConfigurationArn=arn)[
            "distributionConfiguration"
        ]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []  # deleted since it was listed
        raise
    places = list(ami_ids_in(cfg.get("distributions") or [], "distributions"))
    label = f"Image Builder distribution configuration {cfg.get('name', '')} ({arn})"
    return references(DISTRIBUTION, arn, label, places, account, region)


@collector(
    "imagebuilder",
    "imagebuilder",
    [
        "imagebuilder:ListImageRecipes",
        "imagebuilder:ListContainerRecipes",
        "imagebuilder:ListDistributionConfigurations",
        "imagebuilder:GetDistributionConfiguration",
    ],
    "EC2 Image Builder image and container recipes (parent image) and distribution "
    "configurations (image ids they name)",
)
def collect_imagebuilder(ib: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    for page in pages(ib, "list_image_recipes", owner="Self"):
        for r in page.get("imageRecipeSummaryList", []):
            out.items += 1
            out.references += _recipe_refs(r, "image recipe", ("parentImage",), account, region)
    for page in pages(ib, "list_container_recipes", owner="Self"):
        for r in page.get("containerRecipeSummaryList", []):
            out.items += 1
            out.references += _recipe_refs(
                r, "container recipe", ("parentImage", "instanceImage"), account, region
            )
    arns: list[str] = []
    for page in pages(ib, "list_distribution_configurations"):
        for d in page.get("distributionConfigurationSummaryList", []):
            out.items += 1
            arns.append(str(d["arn"]))
    if arns:
        with interrupts.Pool(min(WORKERS, len(arns))) as pool:
            for refs in pool.map(lambda a: _distribution_refs(ib, a, account, region), arns):
                out.references.extend(refs)
    return out
