"""CloudFormation stacks that can still launch an image: every stack not deleted, through
its parameters of the image types and the image ids its template names.

A parameter of type ``AWS::EC2::Image::Id`` or ``List<AWS::EC2::Image::Id>`` (and, to be
safe, any other parameter whose value is an image id) keeps the images it holds: every
update and rollback of the stack resolves it again. A parameter of an SSM-parameter type
(``AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>``) names a parameter, which the
``ssm-parameters`` kind already reads: it records nothing here. The template (GetTemplate,
as submitted) is parsed with cfn-lint's decoder (JSON, or YAML with the ``!Ref``/``!Sub``
short forms) and every string value that is an image id is a reference (resources,
mappings, defaults). A template that does not parse makes the slice incomplete.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ... import interrupts
from ...model import Reference
from ..registry import SliceData, collector, pages
from .amis import ami_ids_in, is_ami_id, references

KIND = "cloudformation-stack"
IMAGE_TYPES = ("AWS::EC2::Image::Id", "List<AWS::EC2::Image::Id>")
GONE = "DELETE_COMPLETE"
WORKERS = 3  # concurrent GetTemplate calls per region


class TemplateError(ValueError):
    """A stack's template that could not be parsed."""


def parse_template(body: Any, where: str) -> dict[str, Any]:
    """A template as GetTemplate returns it (botocore decodes a JSON one into a dict)."""
    if isinstance(body, dict):
        return body
    from cfnlint.decode import decode_str  # loaded only when a YAML template is read

    tree, problems = decode_str(str(body))
    if tree is None or not isinstance(tree, dict):
        detail = "; ".join(str(p.message) for p in problems or [])[:300]
        raise TemplateError(f"the template of {where} does not parse: {detail or 'empty'}")
    return dict(tree)


def parameter_places(stack: dict[str, Any], template: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, image id) for the stack's parameters that hold image ids."""
    slots = template.get("Parameters") or {}
    out = []
    for p in stack.get("Parameters") or []:
        key = str(p.get("ParameterKey", ""))
        slot = slots.get(key) if isinstance(slots, dict) else None
        typ = str((slot or {}).get("Type", "String")) if isinstance(slot, dict) else "String"
        if typ.startswith("AWS::SSM::Parameter::"):
            continue  # names an SSM parameter: the ssm-parameters kind keeps its image
        values = [v.strip() for v in str(p.get("ParameterValue") or "").split(",")]
        for value in values:
            if is_ami_id(value):
                what = typ if typ in IMAGE_TYPES else f"{typ} holding an image id"
                out.append((f"parameter {key} ({what})", value))
    return out


def stack_references(cfn: Any, stack: dict[str, Any], account: str, region: str) -> list[Reference]:
    interrupts.check()
    arn = str(stack.get("StackId") or stack.get("StackName"))
    name = stack.get("StackName", arn)
    try:
        body = cfn.get_template(StackName=arn).get("TemplateBody")
    except ClientError as exc:
        err = exc.response.get("Error", {})
        if err.get("Code") == "ValidationError" and "does not exist" in str(err.get("Message")):
            return []  # deleted since it was listed
        raise
    template = parse_template(body, f"stack {name}")
    places = parameter_places(stack, template)
    places += [(f"template {where}", image) for where, image in ami_ids_in(template)]
    label = f"CloudFormation stack {name} ({stack.get('StackStatus', '?')}, {arn})"
    return references(KIND, arn, label, places, account, region)


@collector(
    "cloudformation-stacks",
    "cloudformation",
    ["cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
    "CloudFormation stacks not deleted: parameters of the image types and image ids in "
    "their templates",
)
def collect_stacks(cfn: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    stacks: list[dict[str, Any]] = []
    for page in pages(cfn, "describe_stacks"):
        for s in page.get("Stacks", []):
            out.items += 1
            if s.get("StackStatus") != GONE:
                stacks.append(s)
    if not stacks:
        return out
    with interrupts.Pool(min(WORKERS, len(stacks))) as pool:
        for refs in pool.map(lambda s: stack_references(cfn, s, account, region), stacks):
            out.references.extend(refs)
    return out
