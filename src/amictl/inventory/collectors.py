"""EC2's, Auto Scaling's and SSM's own reference kinds (images, snapshots, instances,
launch templates, launch configurations, ASGs, SSM parameters), registered in
:mod:`amictl.inventory.registry` with the IAM permissions each needs."""

from __future__ import annotations

from collections.abc import Callable
from sys import intern
from typing import Any

from botocore.exceptions import ClientError

from .. import interrupts
from ..aws.pagememo import WHOLE, keep_only
from ..findings import scan_results
from ..model import Image, Reference, Snapshot, parse_time
from .instance_store import storage_fields
from .registry import PAGE_SIZES, SliceData, collector, pages
from .releases import history_references
from .retention import LOCK_PERMISSIONS, STORE_PERMISSIONS, read_snapshot_locks, read_store_tasks

__all__ = ["PAGE_SIZES", "SliceData", "collector", "pages"]  # re-exported for older callers

ALIVE_STATES = {"pending", "running", "stopping", "stopped"}
LT_WORKERS = 3  # concurrent DescribeLaunchTemplateVersions calls per region


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {intern(t["Key"]): t.get("Value", "") for t in items or []}


def _i(value: Any) -> Any:
    """One shared copy of a short repeated string (owner, state, device, tier ...)."""
    return intern(value) if isinstance(value, str) else value


def image_from_api(d: dict[str, Any], account: str, region: str) -> Image:
    get = d.get
    bdm = []
    for m in get("BlockDeviceMappings") or ():
        ebs = m.get("Ebs") or {}
        bdm.append(
            {
                "device": _i(m.get("DeviceName")),
                "snapshot_id": ebs.get("SnapshotId"),
                "size_gib": ebs.get("VolumeSize") or 0,
                "encrypted": bool(ebs.get("Encrypted")),
            }
        )
    tags = _tags(get("Tags"))
    return Image(
        image_id=d["ImageId"],
        account=account,
        region=region,
        name=get("Name") or "",
        owner_id=_i(get("OwnerId", "")),
        state=_i(get("State", "available")),
        created_at=parse_time(get("CreationDate")),
        tags=tags,
        architecture=_i(get("Architecture", "")),
        platform="windows" if get("Platform") == "windows" else "linux",
        public=bool(get("Public")),
        deprecation_time=parse_time(get("DeprecationTime")),
        last_launched_time=parse_time(get("LastLaunchedTime")),
        deregistration_protection=_i(get("DeregistrationProtection") or "disabled"),
        source_image_id=get("SourceImageId") or tags.get("amictl:source-image"),
        source_image_region=get("SourceImageRegion"),
        block_devices=bdm,
        description=get("Description") or "",
        imds_support=get("ImdsSupport"),
        scan_results=scan_results(get("ScanResults")),
        watermark_sources=[
            str(w["SourceImageId"]) for w in get("ImageWatermarks") or () if w.get("SourceImageId")
        ],
        **storage_fields(d),  # root device type, S3 manifest location (issue 21)
    )


def launch_permission_targets(perms: list[dict[str, str]]) -> tuple[bool, list[str]]:
    public = False
    out = []
    for p in perms:
        if p.get("Group") == "all":
            public = True
        for key in ("UserId", "OrganizationArn", "OrganizationalUnitArn"):
            if p.get(key):
                out.append(p[key])
    return public, sorted(out)


Sharing = tuple[bool, list[str]]  # an image's launch permissions: public, accounts/targets


def read_launch_permissions(ec2: Any, image_id: str) -> Sharing:
    interrupts.check()
    resp = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    return launch_permission_targets(resp.get("LaunchPermissions", []))


def set_sharing(img: Image, sharing: Sharing) -> None:
    """Launch permissions read live, into ``public``, ``shared_with`` and ``lp``."""
    img.public = img.public or sharing[0]
    img.shared_with = sharing[1]
    img.lp = "live"


def read_sharing_into(ec2: Any, images: list[Image], workers: int = 8) -> None:
    """Each image's launch permissions, read live (``workers`` at a time) into ``public``,
    ``shared_with`` and ``lp``. AWS has no bulk call: one DescribeImageAttribute per image."""
    if not images:
        return
    with interrupts.Pool(min(workers, len(images))) as pool:
        for img, sharing in zip(
            images,
            pool.map(lambda i: read_launch_permissions(ec2, i.image_id), images),
            strict=True,
        ):
            set_sharing(img, sharing)


@collector(
    "images",
    "ec2",
    ["ec2:DescribeImages", "ec2:DescribeImageAttribute", *STORE_PERMISSIONS],
    "owned images incl. deprecated and disabled, with launch permissions and S3 store tasks",
)
def collect_images(
    ec2: Any, account: str, region: str, workers: int = 8, launch_permissions: bool = True
) -> SliceData:
    """Owned images; public ones are known from DescribeImages itself (``Public``).

    ``launch_permissions=False`` leaves the per-image DescribeImageAttribute calls to the
    caller (``inventory.sharing``), which reads them only for images a decision needs;
    those images are marked ``lp="unread"`` until then.
    """
    out = SliceData()
    listing = pages(
        ec2, "describe_images", Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True
    )
    for page in listing:
        for d in page.get("Images", []):
            out.images.append(image_from_api(d, account, region))
    read_store_tasks(ec2, out.images)
    todo = [i for i in out.images if i.state != "disabled"]
    if launch_permissions:
        read_sharing_into(ec2, todo, workers)
    else:
        for img in todo:
            img.lp = "unread"
    out.items = len(out.images)
    return out


@collector(
    "snapshots",
    "ec2",
    ["ec2:DescribeSnapshots", *LOCK_PERMISSIONS],
    "owned EBS snapshots, with their snapshot locks",
)
def collect_snapshots(ec2: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    for page in pages(ec2, "describe_snapshots", OwnerIds=["self"]):
        for s in page.get("Snapshots", []):
            out.snapshots.append(
                Snapshot(
                    snapshot_id=s["SnapshotId"],
                    account=account,
                    region=region,
                    size_gib=int(s.get("VolumeSize") or 0),
                    start_time=parse_time(s.get("StartTime")),
                    description=s.get("Description") or "",
                    owner_id=_i(s.get("OwnerId", "")),
                    storage_tier=_i(s.get("StorageTier") or "standard"),
                    encrypted=bool(s.get("Encrypted")),
                    state=_i(s.get("State", "completed")),
                    tags=_tags(s.get("Tags")),
                )
            )
    read_snapshot_locks(ec2, out.snapshots)
    out.items = len(out.snapshots)
    return out


# What collect_instances reads of an instance (5 of its ~30 members, ~0.2 of 2.4 KB): a
# plan's kept DescribeInstances pages hold only these (aws.pagememo.keep_only), and a
# memo-enabled client answers every such page projected, kept or not.
# tests/test_pagememo.py checks the collector finds the same on projected pages.
INSTANCE_PAGE = {
    "Reservations": [
        {"Instances": [{"InstanceId": WHOLE, "ImageId": WHOLE, "State": WHOLE, "Tags": WHOLE}]}
    ]
}
keep_only("DescribeInstancesResult", INSTANCE_PAGE)


@collector("instances", "ec2", ["ec2:DescribeInstances"], "instances in every state but terminated")
def collect_instances(ec2: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    for page in pages(ec2, "describe_instances"):
        for res in page.get("Reservations", []):
            for inst in res.get("Instances", []):
                out.items += 1
                state = inst.get("State", {}).get("Name", "")
                if state in ALIVE_STATES and inst.get("ImageId"):
                    name = _tags(inst.get("Tags")).get("Name")
                    label = f" ({name})" if name else ""
                    out.references.append(
                        Reference(
                            "instance",
                            inst["InstanceId"],
                            f"{state} instance {inst['InstanceId']}{label}",
                            inst["ImageId"],
                            account,
                            region,
                        )
                    )
    return out


@collector(
    "launch-templates",
    "ec2",
    ["ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions", "ssm:GetParameter"],
    "every version of every launch template (resolve:ssm: aliases resolved, pinned versions too)",
)
def collect_launch_templates(
    ec2: Any,
    account: str,
    region: str,
    lt_cache: Any = None,
    listed: Callable[[], None] | None = None,
) -> SliceData:
    """``lt_cache`` (an ``lt_cache.LtVersionCache``): versions read by earlier scans are
    reused; only templates whose latest version moved past them are read, from the first
    unread version on (versions are immutable; a cached one only ever keeps an image).
    ``listed`` is called once the templates are listed, before their versions are read (the
    scan's head start for this slice: ``scan.HEAD_START_S``)."""
    out = SliceData()
    templates: dict[str, dict[str, Any]] = {}
    for page in pages(ec2, "describe_launch_templates"):
        for t in page.get("LaunchTemplates", []):
            templates[t["LaunchTemplateId"]] = {
                "name": t.get("LaunchTemplateName", ""),
                "default": int(t.get("DefaultVersionNumber", 1)),
                "latest": int(t.get("LatestVersionNumber", 1)),
                "versions": {},
            }

    if listed is not None:
        listed()
    known: dict[str, tuple[int, dict[int, str | None]]] = (
        lt_cache.known(account, region) if lt_cache is not None else {}
    )

    def versions(tid: str) -> list[dict[str, Any]]:
        through, cached = known.get(tid, (0, {}))
        latest = templates[tid]["latest"]
        found: list[dict[str, Any]] = [
            {"VersionNumber": n, "LaunchTemplateData": {"ImageId": image} if image else {}}
            for n, image in sorted(cached.items())
        ]
        if lt_cache is not None and through >= latest:
            lt_cache.count("hits")
            return found  # the latest version did not move: nothing new to read
        extra = {"MinVersion": str(through + 1)} if through else {}
        fresh: list[dict[str, Any]] = []
        for page in pages(ec2, "describe_launch_template_versions", LaunchTemplateId=tid, **extra):
            fresh.extend(page.get("LaunchTemplateVersions", []))
        if lt_cache is not None:
            lt_cache.count("partial" if through else "misses")
            lt_cache.record(
                account,
                region,
                tid,
                max([latest, through, *(int(v["VersionNumber"]) for v in fresh)]),
                {
                    int(v["VersionNumber"]): (v.get("LaunchTemplateData") or {}).get("ImageId")
                    for v in fresh
                },
            )
        seen = {int(v["VersionNumber"]) for v in fresh}
        return [v for v in found if v["VersionNumber"] not in seen] + fresh

    # One call per template (AWS lists every version only per template), a few at a time:
    # enough to spend EC2's request bucket for the API (100, then 20 per second) as fast
    # as it refills; past it, RequestLimitExceeded answers are retried by the adaptive mode.
    with interrupts.Pool(LT_WORKERS) as pool:
        read = list(pool.map(versions, list(templates)))
    for (tid, t), found in zip(templates.items(), read, strict=True):
        for v in found:
            n = int(v["VersionNumber"])
            image_id = (v.get("LaunchTemplateData") or {}).get("ImageId")
            t["versions"][n] = image_id
            out.items += 1
            if image_id and image_id.startswith("ami-"):
                marks = []
                if n == t["default"]:
                    marks.append("default")
                if n == t["latest"]:
                    marks.append("latest")
                extra = f" ({', '.join(marks)})" if marks else ""
                out.references.append(
                    Reference(
                        "launch-template-version",
                        f"{tid}:{n}",
                        f"launch template {tid} ({t['name']}) version {n}{extra}",
                        image_id,
                        account,
                        region,
                    )
                )
            elif image_id and image_id.startswith("resolve:ssm:"):
                # Resolved after the scan (scan.resolve_ssm_aliases): the parameter's
                # current value, or the version/label the alias pins.
                out.raw.setdefault("ssm_aliases", []).append((tid, n, image_id))
    out.raw["templates"] = templates
    return out


@collector(
    "launch-configurations",
    "autoscaling",
    ["autoscaling:DescribeLaunchConfigurations"],
    "every launch configuration, attached to an ASG or not",
)
def collect_launch_configurations(asg: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    lcs: dict[str, str] = {}
    for page in pages(asg, "describe_launch_configurations"):
        for lc in page.get("LaunchConfigurations", []):
            out.items += 1
            lcs[lc["LaunchConfigurationName"]] = lc.get("ImageId", "")
            if lc.get("ImageId"):
                out.references.append(
                    Reference(
                        "launch-configuration",
                        lc["LaunchConfigurationName"],
                        f"launch configuration {lc['LaunchConfigurationName']}",
                        lc["ImageId"],
                        account,
                        region,
                    )
                )
    out.raw["launch_configurations"] = lcs
    return out


@collector(
    "auto-scaling-groups",
    "autoscaling",
    ["autoscaling:DescribeAutoScalingGroups"],
    "ASGs through launch templates ($Default/$Latest/N), launch configurations and mixed-instances policies",
    depends_on=("launch-templates", "launch-configurations"),
)
def collect_auto_scaling_groups(asg: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    specs: list[tuple[str, str, dict[str, Any]]] = []
    for page in pages(asg, "describe_auto_scaling_groups"):
        for g in page.get("AutoScalingGroups", []):
            out.items += 1
            name = g["AutoScalingGroupName"]
            if g.get("LaunchConfigurationName"):
                specs.append((name, "launch configuration", {"lc": g["LaunchConfigurationName"]}))
            if g.get("LaunchTemplate"):
                specs.append((name, "launch template", dict(g["LaunchTemplate"])))
            mip = g.get("MixedInstancesPolicy") or {}
            lt = mip.get("LaunchTemplate") or {}
            if lt.get("LaunchTemplateSpecification"):
                specs.append(
                    (name, "mixed-instances policy", dict(lt["LaunchTemplateSpecification"]))
                )
            for ov in lt.get("Overrides") or []:
                if ov.get("LaunchTemplateSpecification"):
                    specs.append(
                        (name, "mixed-instances override", dict(ov["LaunchTemplateSpecification"]))
                    )
    out.raw["asg_specs"] = specs
    return out


def resolve_asg_references(
    specs: list[tuple[str, str, dict[str, Any]]],
    templates: dict[str, dict[str, Any]],
    lcs: dict[str, str],
    account: str,
    region: str,
) -> list[Reference]:
    """Turn ASG launch specs into image references, resolving $Default / $Latest."""
    by_name = {t["name"]: tid for tid, t in templates.items()}
    refs = []
    for asg_name, via, spec in specs:
        if "lc" in spec:
            image = lcs.get(spec["lc"])
            if image:
                refs.append(
                    Reference(
                        "auto-scaling-group",
                        asg_name,
                        f"ASG {asg_name} via launch configuration {spec['lc']}",
                        image,
                        account,
                        region,
                    )
                )
            continue
        tid = spec.get("LaunchTemplateId") or by_name.get(spec.get("LaunchTemplateName", ""), "")
        t = templates.get(tid)
        if t is None:
            continue
        ver = str(spec.get("Version") or "$Default")
        n = t["default"] if ver == "$Default" else t["latest"] if ver == "$Latest" else int(ver)
        image = t["versions"].get(n)
        if image:
            refs.append(
                Reference(
                    "auto-scaling-group",
                    asg_name,
                    f"ASG {asg_name} via {via} {tid} ({t['name']}) {ver} = version {n}",
                    image,
                    account,
                    region,
                )
            )
    return refs


CHANNEL_PREFIX = "/amictl/channels/"
"""Release channels of amictl.channels: ``/amictl/channels/<family>/<channel>`` per region."""


def channel_of_parameter(name: str) -> tuple[str, str] | None:
    """``/amictl/channels/web/prod`` -> ("web", "prod"); None for any other parameter."""
    if not name.startswith(CHANNEL_PREFIX):
        return None
    parts = name[len(CHANNEL_PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


@collector(
    "ssm-parameters",
    "ssm",
    ["ssm:DescribeParameters", "ssm:GetParameters", "ssm:GetParameterHistory"],
    "SSM parameters whose value is an image id (aws:ec2:image or plain text), and the "
    "history of release channels",
)
def collect_ssm_parameters(ssm: Any, account: str, region: str) -> SliceData:
    out = SliceData()
    names: list[tuple[str, str]] = []
    for page in pages(ssm, "describe_parameters"):
        for p in page.get("Parameters", []):
            out.items += 1
            if p.get("Type") in ("String", "StringList"):
                names.append((p["Name"], p.get("DataType") or "text"))
    for i in range(0, len(names), 10):
        batch = names[i : i + 10]
        resp = ssm.get_parameters(Names=[n for n, _ in batch])
        types = dict(batch)
        for p in resp.get("Parameters", []):
            for value in str(p.get("Value", "")).split(","):
                value = value.strip()
                if value.startswith("ami-"):
                    kind = "ssm-parameter"
                    detail = f"SSM parameter {p['Name']} ({types.get(p['Name'], 'text')})"
                    channel = channel_of_parameter(p["Name"])
                    if channel:
                        kind = "channel"
                        detail = f"channel {channel[1]} of family {channel[0]} ({p['Name']})"
                    out.references.append(
                        Reference(kind, p["Name"], detail, value, account, region)
                    )
        # InvalidParameters: deleted between the two calls, so they reference nothing.
    for name, _ in names:
        channel = channel_of_parameter(name)
        if channel:
            out.references.extend(_channel_history(ssm, name, channel, account, region))
    return out


def _channel_history(
    ssm: Any, name: str, channel: tuple[str, str], account: str, region: str
) -> list[Reference]:
    """The channel's rollback targets (``inventory.releases``), one reference each, with
    how many steps back it is in the id (``<parameter>#<steps>``)."""
    history = []
    try:
        for page in pages(ssm, "get_parameter_history", Name=name):
            for h in page.get("Parameters", []):
                history.append(
                    {
                        "version": int(h.get("Version") or 0),
                        "value": str(h.get("Value", "")),
                        "description": h.get("Description"),
                    }
                )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return []  # deleted since it was listed
        raise
    history.sort(key=lambda h: h["version"])
    return history_references(name, channel[0], channel[1], history, account, region)


def resolve_ssm_aliases(
    ssm: Any,
    aliases: list[tuple[str, int, str]],
    templates: dict[str, dict[str, Any]],
    account: str,
    region: str,
) -> list[Reference]:
    """References for launch-template versions whose ImageId is ``resolve:ssm:NAME[:SEL]``.

    The SSM collector sees only each parameter's current value; a version that pins an
    older parameter version (``:3``) or a label launches another image. Each alias is read
    with GetParameter (which takes the selector); an error propagates, so the slice is
    marked incomplete rather than the image counted unused.
    """
    out: list[Reference] = []
    cache: dict[str, str] = {}
    for tid, n, alias in aliases:
        name = alias[len("resolve:ssm:") :]
        if name not in cache:
            interrupts.check()
            cache[name] = str(ssm.get_parameter(Name=name)["Parameter"].get("Value", ""))
        image_id = cache[name]
        t = templates.get(tid)
        if t is not None:
            t["versions"][n] = image_id  # ASGs on this version resolve to the image too
        if image_id.startswith("ami-"):
            label = t["name"] if t else tid
            out.append(
                Reference(
                    "launch-template-version",
                    f"{tid}:{n}",
                    f"launch template {tid} ({label}) version {n} via {alias}",
                    image_id,
                    account,
                    region,
                )
            )
    return out
