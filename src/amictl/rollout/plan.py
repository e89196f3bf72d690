"""What a rollout of a family's channel would change: launch templates that follow the
family, the Auto Scaling groups using them, the instances each refresh would replace.

A launch template follows FAMILY when it is tagged ``amictl:family=FAMILY`` or its default
version's ImageId is ``resolve:ssm:/amictl/channels/FAMILY/<channel>``. The plan is read
live, changes nothing, and is data (``to_dict``) so that a journaled rollout can resume.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error, error_code
from ..channels.names import parameter_name
from ..channels.ops import image_by_id
from ..errors import AmictlError, InputError

FAMILY_TAG = "amictl:family"
PINNED, DEFAULT, FOLLOWS_SSM = "pinned", "default", "ssm"


@dataclass
class TemplateChange:
    """One launch template: the version made with the channel's image, made default."""

    account: str
    region: str
    role_arn: str | None
    template_id: str
    template_name: str
    old_default: int
    old_image: str | None
    follows_ssm: bool = False  # resolve:ssm: of the channel: no new version needed
    new_version: int | None = None  # set when made


@dataclass
class GroupChange:
    """One Auto Scaling group: its instance refresh to the new version."""

    account: str
    region: str
    role_arn: str | None
    asg: str
    template_id: str
    spec_version: str  # the version the group names: "3", "$Default", "$Latest"
    mode: str  # pinned | default | ssm
    current_image: str | None
    current_version: str | None
    instances: int
    to_replace: int


@dataclass
class RolloutPlan:
    rollout_id: str
    family: str
    channel: str
    new_images: dict[str, str]  # "account/region" -> image id
    new_version: str | None
    canary: int
    min_healthy: int
    canary_wait: int
    templates: list[TemplateChange] = field(default_factory=list)
    groups: list[GroupChange] = field(default_factory=list)

    @property
    def journal_key(self) -> str:
        return f"rollout-{self.rollout_id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RolloutPlan:
        d = dict(d)
        d["templates"] = [TemplateChange(**t) for t in d.get("templates", [])]
        d["groups"] = [GroupChange(**g) for g in d.get("groups", [])]
        return cls(**d)

    def rows(self) -> list[dict[str, Any]]:
        """One row per group for the confirmation table and -o json."""
        out = []
        for g in self.groups:
            new = self.new_images.get(f"{g.account}/{g.region}")
            out.append(
                {
                    "account": g.account,
                    "region": g.region,
                    "asg": g.asg,
                    "template": g.template_id,
                    "version_spec": g.spec_version,
                    "mode": g.mode,
                    "instances": g.instances,
                    "to_replace": g.to_replace,
                    "current_image": g.current_image,
                    "current_version": g.current_version,
                    "new_image": new,
                    "new_version": self.new_version,
                }
            )
        return out


def _call(fn: Any, op: str, region: str, **kw: Any) -> Any:
    try:
        return fn(**kw)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, op, region) from None


def parse_percent(value: str, what: str) -> int:
    """``10%`` or ``10`` -> 10 (1..100)."""
    text = str(value).strip().rstrip("%").strip()
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise InputError(f"{value!r} is not a percentage 1..100", key=what)
    return int(text)


def _channel_image(conn: Connector, t: Target, family: str, channel: str) -> str:
    ssm = conn.client("ssm", t.region, t.role_arn)
    name = parameter_name(family, channel)
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            raise AmictlError(
                f"channel {channel} of family {family} does not exist in {t.account}/{t.region}",
                hint=f"promote a version first: amictl promote {family} VERSION --channel {channel}",
            ) from None
        raise aws_error(exc, "GetParameter", t.region) from None
    except BotoCoreError as exc:
        raise aws_error(exc, "GetParameter", t.region) from None


def _templates(conn: Connector, t: Target, family: str) -> list[TemplateChange]:
    ec2 = conn.client("ec2", t.region, t.role_arn)
    found: list[TemplateChange] = []
    try:
        for page in ec2.get_paginator("describe_launch_templates").paginate():
            for lt in page.get("LaunchTemplates", []):
                tags = {x["Key"]: x["Value"] for x in lt.get("Tags") or []}
                default = int(lt.get("DefaultVersionNumber") or 1)
                vers = ec2.describe_launch_template_versions(
                    LaunchTemplateId=lt["LaunchTemplateId"], Versions=[str(default)]
                ).get("LaunchTemplateVersions", [])
                image = ((vers[0].get("LaunchTemplateData") or {}) if vers else {}).get("ImageId")
                ssm = str(image or "").startswith(f"resolve:ssm:/amictl/channels/{family}/")
                if tags.get(FAMILY_TAG) == family or ssm:
                    found.append(
                        TemplateChange(
                            t.account,
                            t.region,
                            t.role_arn,
                            lt["LaunchTemplateId"],
                            lt.get("LaunchTemplateName", ""),
                            default,
                            image,
                            follows_ssm=ssm,
                        )
                    )
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "DescribeLaunchTemplates", t.region) from None
    return found


def _version_image(ec2: Any, region: str, template_id: str, version: str) -> str | None:
    vers = _call(
        ec2.describe_launch_template_versions,
        "DescribeLaunchTemplateVersions",
        region,
        LaunchTemplateId=template_id,
        Versions=[version],
    ).get("LaunchTemplateVersions", [])
    return ((vers[0].get("LaunchTemplateData") or {}) if vers else {}).get("ImageId")


def make_plan(
    conn: Connector,
    targets: list[Target],
    family: str,
    channel: str,
    asgs: list[str] | None = None,
    canary: int = 10,
    min_healthy: int = 90,
    canary_wait: int = 600,
) -> RolloutPlan:
    """Read the account(s) and say what the rollout would do; changes nothing."""
    parameter_name(family, channel)  # bad names: exit 2
    plan = RolloutPlan(
        uuid.uuid4().hex[:16], family, channel, {}, None, canary, min_healthy, canary_wait
    )
    wanted = set(asgs or [])
    seen: set[str] = set()
    for t in targets:
        new_image = _channel_image(conn, t, family, channel)
        img = image_by_id(conn, t, new_image)
        if img is None:
            raise AmictlError(
                f"channel {channel} of {family} names {new_image}, which is gone in {t.region}",
                hint="promote an available version first",
            )
        plan.new_images[f"{t.account}/{t.region}"] = new_image
        plan.new_version = plan.new_version or img.version
        templates = {x.template_id: x for x in _templates(conn, t, family)}
        ec2 = conn.client("ec2", t.region, t.role_arn)
        asg = conn.client("autoscaling", t.region, t.role_arn)
        used: set[str] = set()
        try:
            pages = asg.get_paginator("describe_auto_scaling_groups").paginate()
            groups = [g for p in pages for g in p.get("AutoScalingGroups", [])]
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, "DescribeAutoScalingGroups", t.region) from None
        for g in groups:
            name = g["AutoScalingGroupName"]
            spec = g.get("LaunchTemplate") or {}
            tid = spec.get("LaunchTemplateId")
            if tid not in templates or (wanted and name not in wanted):
                continue
            seen.add(name)
            used.add(tid)
            tc = templates[tid]
            version = str(spec.get("Version") or "$Default")
            current = _version_image(ec2, t.region, tid, version)
            ids = [i["InstanceId"] for i in g.get("Instances", [])]
            images: dict[str, str] = {}
            if ids:
                for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
                    for r in page.get("Reservations", []):
                        for i in r.get("Instances", []):
                            images[i["InstanceId"]] = i.get("ImageId", "")
            cur = image_by_id(conn, t, current) if current and current.startswith("ami-") else None
            mode = FOLLOWS_SSM if tc.follows_ssm else PINNED if version.isdigit() else DEFAULT
            plan.groups.append(
                GroupChange(
                    t.account,
                    t.region,
                    t.role_arn,
                    name,
                    tid,
                    version,
                    mode,
                    current,
                    cur.version if cur else None,
                    len(ids),
                    sum(1 for i in ids if images.get(i) != new_image),
                )
            )
        plan.templates.extend(tc for tid, tc in templates.items() if tid in used)
    missing = sorted(wanted - seen)
    if missing:
        raise InputError(
            f"no Auto Scaling group {', '.join(missing)} uses a launch template that follows "
            f"family {family}",
            key="--asg",
            hint=f"tag its launch template {FAMILY_TAG}={family}",
        )
    return plan
