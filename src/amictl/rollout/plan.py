"""What a rollout of a family's channel would change: launch templates that follow the
family, the Auto Scaling groups using them, the instances each refresh would replace.

A group follows channel C of FAMILY when the launch template version it launches (the
number it names, or the template's default or latest) has the ImageId
``resolve:ssm:/amictl/channels/FAMILY/C`` (mode ``ssm``: only a rollout of C matches it), or
when its template is tagged ``amictl:family=FAMILY`` and that version names an image
(modes ``pinned``, ``default``, ``latest``). The channel's image must be one ``launch`` would
launch (``launch.check_launchable``: not a failed bake, not disabled nor deprecated), of this
account and of the family. The plan is read live, changes nothing, and is data
(``to_dict``) so that a journaled rollout can resume.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector, Target, aws_error, error_code
from ..channels.names import parameter_name
from ..channels.ops import image_by_id
from ..distribute.common import Found, describe_image
from ..errors import AmictlError, InputError, SafetyError
from ..launch.resolve import check_launchable
from ..tagnames import TEMPLATE_FAMILY_TAG

CFN_TAG_PREFIX = "aws:cloudformation:"
PINNED, DEFAULT, LATEST, FOLLOWS_SSM = "pinned", "default", "latest", "ssm"
ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}


def _known(cls: Any, d: dict[str, Any]) -> dict[str, Any]:
    """The keys of a journaled dict this version of the dataclass knows."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass
class TemplateChange:
    """One launch template: a version with the channel's image built on each version a
    group of the rollout launches (``SourceVersion``, only the image changed)."""

    account: str
    region: str
    role_arn: str | None
    template_id: str
    template_name: str
    old_default: int
    old_image: str | None  # the default version's ImageId
    follows_ssm: bool = False  # every group of it resolves the channel: no new version
    new_version: int | None = None  # the new default, when the old default was a source
    old_latest: int = 0
    sources: list[int] = field(default_factory=list)  # versions built on, the latest last
    new_versions: dict[str, int] = field(default_factory=dict)  # str(source) -> new version
    managed_by: str | None = None  # "CloudFormation stack NAME"
    latest_followed: bool = False  # a group of the rollout launches $Latest

    @property
    def makes_default(self) -> bool:
        return self.old_default in self.sources


@dataclass
class GroupChange:
    """One Auto Scaling group: its instance refresh to the new version."""

    account: str
    region: str
    role_arn: str | None
    asg: str
    template_id: str
    spec_version: str  # the version the group names: "3", "$Default", "$Latest"
    mode: str  # pinned | default | latest | ssm
    current_image: str | None
    current_version: str | None
    instances: int
    to_replace: int
    source_version: int = 0  # the template version the group launches now
    managed_by: str | None = None
    active_refresh: dict[str, Any] | None = None  # a refresh running when planned


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
    force_iac: bool = False
    bystanders: list[str] = field(default_factory=list)  # groups it would move unasked

    @property
    def journal_key(self) -> str:
        return f"rollout-{self.rollout_id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RolloutPlan:
        d = _known(cls, dict(d))
        d["templates"] = [
            TemplateChange(**_known(TemplateChange, t)) for t in d.get("templates", [])
        ]
        d["groups"] = [GroupChange(**_known(GroupChange, g)) for g in d.get("groups", [])]
        return cls(**d)

    def managed(self) -> list[str]:
        """Templates and groups an infrastructure-as-code tool owns (CloudFormation tags)."""
        out = [
            f"launch template {t.template_name} ({t.managed_by})"
            for t in self.templates
            if t.managed_by
        ]
        out += [f"Auto Scaling group {g.asg} ({g.managed_by})" for g in self.groups if g.managed_by]
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One row per group for the confirmation table and -o json."""
        by_tid = {(t.account, t.region, t.template_id): t for t in self.templates}
        out = []
        for g in self.groups:
            new = self.new_images.get(f"{g.account}/{g.region}")
            tc = by_tid.get((g.account, g.region, g.template_id))
            out.append(
                {
                    "account": g.account,
                    "region": g.region,
                    "asg": g.asg,
                    "template": g.template_id,
                    "version_spec": g.spec_version,
                    "source_version": g.source_version,
                    "mode": g.mode,
                    "instances": g.instances,
                    "to_replace": g.to_replace,
                    "current_image": g.current_image,
                    "current_version": g.current_version,
                    "new_image": new,
                    "new_version": self.new_version,
                    "managed_by": g.managed_by or (tc.managed_by if tc else None),
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


def channel_image(conn: Connector, t: Target, family: str, channel: str) -> str:
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


def check_channel_image(
    conn: Connector, t: Target, family: str, channel: str, image_id: str
) -> str | None:
    """Refuse (exit 3) what ``launch`` refuses, with its reasons, and an image that is not
    this account's image of the family (what ``promote`` puts in a channel); its version."""
    where = f"channel {channel} of {family} in {t.account}/{t.region} names {image_id}"
    ec2 = conn.client("ec2", t.region, t.role_arn)
    data = None if not image_id.startswith("ami-") else describe_image(ec2, image_id, t.region)
    if data is None:
        raise AmictlError(f"{where}, which is gone", hint="promote an available version first")
    found = Found(t, data)
    try:
        check_launchable(found, allow_deprecated=False)
    except AmictlError as exc:
        why = exc.message.replace("refusing to launch it", "refusing to roll it out")
        raise type(exc)(
            f"{where}: {why}", hint=f"promote a tested, available version to {channel} first"
        ) from None
    owner = data.get("OwnerId")
    if owner != t.account:
        raise SafetyError(
            f"{where}, an image of account {owner or 'unknown'}, not of {t.account}: "
            "refusing to roll it out",
            hint=f"promote one of this account's images of {family} to {channel}",
        )
    img_family, version = found.family_version
    if img_family != family:
        raise SafetyError(
            f"{where}, which is not an image of family {family} ({img_family or 'no family'}): "
            "refusing to roll it out",
            hint=f"promote a version of {family} to {channel}",
        )
    return version


def _cfn(tags: list[dict[str, Any]] | None) -> str | None:
    t = {x["Key"]: x.get("Value", "") for x in tags or []}
    if not any(k.startswith(CFN_TAG_PREFIX) for k in t):
        return None
    return f"CloudFormation stack {t.get('aws:cloudformation:stack-name', '?')}"


class _Templates:
    """The account/region's launch templates and the versions read so far."""

    def __init__(self, conn: Connector, t: Target) -> None:
        self.t = t
        self.ec2 = conn.client("ec2", t.region, t.role_arn)
        self.data: dict[tuple[str, int], dict[str, Any]] = {}
        self.by_id: dict[str, dict[str, Any]] = {}
        try:
            for page in self.ec2.get_paginator("describe_launch_templates").paginate():
                for lt in page.get("LaunchTemplates", []):
                    self.by_id[lt["LaunchTemplateId"]] = lt
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, "DescribeLaunchTemplates", t.region) from None

    def number(self, tid: str, spec: str) -> int:
        lt = self.by_id[tid]
        if spec == "$Latest":
            return int(lt.get("LatestVersionNumber") or 1)
        if spec.isdigit():
            return int(spec)
        return int(lt.get("DefaultVersionNumber") or 1)

    def version(self, tid: str, number: int) -> dict[str, Any]:
        if (tid, number) not in self.data:
            vers = _call(
                self.ec2.describe_launch_template_versions,
                "DescribeLaunchTemplateVersions",
                self.t.region,
                LaunchTemplateId=tid,
                Versions=[str(number)],
            ).get("LaunchTemplateVersions", [])
            self.data[(tid, number)] = (vers[0].get("LaunchTemplateData") or {}) if vers else {}
        return self.data[(tid, number)]

    def change(self, tid: str) -> TemplateChange:
        lt = self.by_id[tid]
        default = int(lt.get("DefaultVersionNumber") or 1)
        return TemplateChange(
            self.t.account,
            self.t.region,
            self.t.role_arn,
            tid,
            lt.get("LaunchTemplateName", ""),
            default,
            self.version(tid, default).get("ImageId"),
            old_latest=int(lt.get("LatestVersionNumber") or default),
            managed_by=_cfn(lt.get("Tags")),
        )


def _mode(
    tmpl: dict[str, Any], image: str | None, spec: str, family: str, channel: str
) -> str | None:
    """How a group launching ``image`` follows channel C of the family, or None (it does not)."""
    if str(image or "").startswith("resolve:ssm:"):
        followed = str(image)[len("resolve:ssm:") :]
        return FOLLOWS_SSM if followed == parameter_name(family, channel) else None
    tags = {x["Key"]: x.get("Value", "") for x in tmpl.get("Tags") or []}
    if tags.get(TEMPLATE_FAMILY_TAG) != family or not image:
        return None
    return PINNED if spec.isdigit() else LATEST if spec == "$Latest" else DEFAULT


def active_refresh(conn: Connector, t: Target, name: str) -> dict[str, Any] | None:
    asg = conn.client("autoscaling", t.region, t.role_arn)
    resp = _call(
        asg.describe_instance_refreshes,
        "DescribeInstanceRefreshes",
        t.region,
        AutoScalingGroupName=name,
        MaxRecords=5,
    )
    for r in resp.get("InstanceRefreshes", []):
        if r.get("Status") in ACTIVE:
            return {
                "id": r.get("InstanceRefreshId"),
                "status": r.get("Status"),
                "start": str(r.get("StartTime") or ""),
            }
    return None


def make_plan(
    conn: Connector,
    targets: list[Target],
    family: str,
    channel: str,
    asgs: list[str] | None = None,
    canary: int = 10,
    min_healthy: int = 90,
    canary_wait: int = 600,
    force_iac: bool = False,
) -> RolloutPlan:
    """Read the account(s) and say what the rollout would do; changes nothing."""
    parameter_name(family, channel)  # bad names: exit 2
    plan = RolloutPlan(
        uuid.uuid4().hex[:16], family, channel, {}, None, canary, min_healthy, canary_wait
    )
    plan.force_iac = force_iac
    wanted = set(asgs or [])
    seen: set[str] = set()
    for t in targets:
        new_image = channel_image(conn, t, family, channel)
        version = check_channel_image(conn, t, family, channel, new_image)
        plan.new_images[f"{t.account}/{t.region}"] = new_image
        plan.new_version = plan.new_version or version
        seen |= _plan_target(conn, t, plan, wanted)
    missing = sorted(wanted - seen)
    if missing:
        raise InputError(
            f"no Auto Scaling group {', '.join(missing)} launches a template version that "
            f"follows channel {channel} of family {family}",
            key="--asg",
            hint=f"tag its launch template {TEMPLATE_FAMILY_TAG}={family}, or make its ImageId "
            f"resolve:ssm:{parameter_name(family, channel)}",
        )
    return plan


def _plan_target(conn: Connector, t: Target, plan: RolloutPlan, wanted: set[str]) -> set[str]:
    """Add the target's groups and templates to the plan; the names of the groups added."""
    family, channel = plan.family, plan.channel
    new_image = plan.new_images[f"{t.account}/{t.region}"]
    lts = _Templates(conn, t)
    ec2 = lts.ec2
    asg = conn.client("autoscaling", t.region, t.role_arn)
    try:
        pages = asg.get_paginator("describe_auto_scaling_groups").paginate()
        groups = [g for p in pages for g in p.get("AutoScalingGroups", [])]
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "DescribeAutoScalingGroups", t.region) from None
    changes: dict[str, TemplateChange] = {}
    seen: set[str] = set()
    for g in groups:
        name = g["AutoScalingGroupName"]
        spec = g.get("LaunchTemplate") or {}
        tid = spec.get("LaunchTemplateId")
        if tid not in lts.by_id or (wanted and name not in wanted):
            continue
        version = str(spec.get("Version") or "$Default")
        number = lts.number(tid, version)
        current = lts.version(tid, number).get("ImageId")
        mode = _mode(lts.by_id[tid], current, version, family, channel)
        if mode is None:
            continue
        seen.add(name)
        tc = changes.get(tid) or changes.setdefault(tid, lts.change(tid))
        if mode != FOLLOWS_SSM and number not in tc.sources:
            tc.sources.append(number)
        tc.latest_followed = tc.latest_followed or mode == LATEST
        ids = [i["InstanceId"] for i in g.get("Instances", [])]
        images: dict[str, str] = {}
        if ids:
            for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
                for r in page.get("Reservations", []):
                    for i in r.get("Instances", []):
                        images[i["InstanceId"]] = i.get("ImageId", "")
        cur = image_by_id(conn, t, current) if current and current.startswith("ami-") else None
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
                source_version=number,
                managed_by=_cfn(g.get("Tags")),
                active_refresh=active_refresh(conn, t, name),
            )
        )
    for tc in changes.values():
        # the version built on the latest is made last, so that $Latest is it
        if tc.latest_followed and tc.old_latest in tc.sources:
            tc.sources.remove(tc.old_latest)
            tc.sources.append(tc.old_latest)
        tc.follows_ssm = not tc.sources
        plan.templates.append(tc)
    plan.bystanders += _bystanders(groups, seen, changes, lts, plan)
    return seen


def _moved(version: str, tc: TemplateChange) -> bool:
    """Whether new versions of ``tc`` change what ``version`` of it launches."""
    if not tc.sources:
        return False
    return version == "$Latest" or (version == "$Default" and tc.makes_default)


def _bystanders(
    groups: list[dict[str, Any]],
    seen: set[str],
    changes: dict[str, TemplateChange],
    lts: _Templates,
    plan: RolloutPlan,
) -> list[str]:
    """Groups whose launches the new versions would change without a refresh of theirs:
    outside the rollout on the template's $Default/$Latest, any group launching a family
    template through a MixedInstancesPolicy (not followed by the plan), and a group of
    the rollout that resolves the channel on a $Default/$Latest the new versions move
    (it would launch another group's version, a literal image)."""
    out = []
    for g in groups:
        name = g["AutoScalingGroupName"]
        mixed = (g.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
        specs = [g.get("LaunchTemplate") or {}, mixed.get("LaunchTemplateSpecification") or {}]
        specs += [o.get("LaunchTemplateSpecification") or {} for o in mixed.get("Overrides") or []]
        for i, spec in enumerate(specs):
            tid = spec.get("LaunchTemplateId")
            if not tid and spec.get("LaunchTemplateName"):
                tid = next(
                    (k for k, v in lts.by_id.items()
                     if v.get("LaunchTemplateName") == spec["LaunchTemplateName"]),
                    None,
                )  # fmt: skip
            tc = changes.get(tid or "")
            version = str(spec.get("Version") or "$Default")
            if tc is None or not _moved(version, tc):
                continue
            if i > 0:
                out.append(f"{name} (launches {version} of {tc.template_name} through its "
                           "MixedInstancesPolicy, which a rollout does not refresh)")  # fmt: skip
            elif name not in seen:
                out.append(f"{name} (launches {version} of {tc.template_name})")
    for gc in plan.groups:
        tc = changes.get(gc.template_id)
        if gc.mode == FOLLOWS_SSM and tc is not None and _moved(gc.spec_version, tc):
            out.append(
                f"{gc.asg} (resolves the channel on {gc.spec_version} of {tc.template_name}, "
                "which the new versions would move to a literal image)"
            )
    return out
