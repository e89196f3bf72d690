"""Fleet files (shared/spec/fleet.md): parse and validate, with file:line errors.

A fleet is plain data. Validation checks types, unknown keys, unique aliases and
that every alias a reference names exists (and is of the right kind and region).
Seeding (``seed.py``) only ever sees a validated fleet, and validation covers
everything seeding would trip over (region names the sandbox serves, ages that fit a
date, sizes and counts within ``LIMITS`` and ``TOTALS``, names unique per region), so
that a bad fleet file is refused whole before anything is created.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..aws.session import known_regions, region_problem
from ..durations import MAX_DAYS
from ..errors import InputError
from ..yamlpos import Positions, check_keys, load_file, loads, raise_all
from . import fleet_launchers as _launchers

ACCOUNT_RE = re.compile(r"^\d{12}$")
SANDBOX_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
"""The partitions whose regions the sandbox can seed (moto has no default subnets elsewhere)."""

# Every number that makes seeding do more work is capped (inclusive bounds).
LIMITS: dict[str, tuple[int, int]] = {
    "count": (1, 1000),  # instances per `instances` entry
    "desired": (0, 1000),  # instances an auto scaling group launches
    "size_gib": (1, 65536),  # an EBS volume is at most 64 TiB
    "versions": (1, 1000),  # versions of one launch template
}
# ... and so is the size of the fleet as a whole (Fleet.counts() names; instances adds desired).
TOTALS: dict[str, int] = {
    "images": 100_000,
    "snapshots": 200_000,
    "instances": 50_000,
    "launch_templates": 10_000,
    "launch_template_versions": 50_000,
    "launch_configurations": 10_000,
    "auto_scaling_groups": 10_000,
    "ssm_parameters": 10_000,
    **dict.fromkeys(("cloudformation_stacks", "beanstalk_environments"), 10_000),
    **dict.fromkeys(("image_recipes", "container_recipes"), 10_000),
    **_launchers.TOTALS,  # issue 26: Spot, fleets, EMR, Batch
}
DAY_KEYS = ("age_days", "deprecated_days_ago", "deprecate_in_days", "last_launched_days_ago")
"""Days before (or after) the load: a finite number from 0 to MAX_DAYS (100 years)."""
MAX_TAGS = 50
SSM_NAME_RE = re.compile(r"^[a-zA-Z0-9_.\-/]{1,2048}$")

# kind -> {key: (python types, default)}; "REQ" marks a required key.
REQ = object()
_STR = (str,)
_INT = (int,)
_BOOL = (bool,)
_LIST = (list,)
_DICT = (dict,)
# AttachImageWatermark's WatermarkName (patches/governance.py checks it too)
WATERMARK_NAME_RE = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$")

SPECS: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "image": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "description": (_STR, None),
        "region": (_STR, None),
        "age_days": ((int, float), 0),
        "tags": (_DICT, {}),
        "architecture": (_STR, "x86_64"),
        "platform": (_STR, "linux"),
        "snapshots": (_LIST, None),
        "reuse_snapshot_of": (_STR, None),
        "source": (_STR, None),
        "public": (_BOOL, False),
        "shared_with": (_LIST, []),
        "deprecated_days_ago": ((int, float), None),
        "deprecate_in_days": ((int, float), None),
        "disabled": (_BOOL, False),
        "deregistration_protection": (_BOOL, False),
        "last_launched_days_ago": ((int, float), None),
        "state": (_STR, "available"),
        "owner": (_STR, None),
        "owner_alias": (_STR, None),
        "boot_mode": (_STR, None),
        "imds_support": (_STR, None),
        "findings": (_DICT, None),  # issue 28: Amazon Inspector's scan (patches/findings.py)
        "watermark": (_STR, None),  # issue 28: a watermark name attached to it by its owner
        "watermarks_of": (_STR, None),  # issue 28: carries that image's watermarks, no lineage
        "image_location": (_STR, None),  # issue 21: instance-store-backed (S3 bundle manifest)
    },
    "image_snapshot": {
        "size_gib": (_INT, 8),
        "device": (_STR, None),
        "encrypted": (_BOOL, False),
        "volume_type": (_STR, "gp3"),
        "tags": (_DICT, {}),
        "storage_tier": (_STR, "standard"),
    },
    "instance": {
        "alias": (_STR, REQ),
        "image": (_STR, REQ),
        "state": (_STR, "running"),
        "count": (_INT, 1),
        "region": (_STR, None),
        "tags": (_DICT, {}),
        "instance_type": (_STR, "t3.micro"),
    },
    "launch_template": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "versions": (_LIST, REQ),
        "default_version": (_INT, 1),
        "region": (_STR, None),
        "tags": (_DICT, {}),
    },
    "lt_version": {
        "image": (_STR, None),
        "image_id": (_STR, None),
        "instance_type": (_STR, "t3.micro"),
        "description": (_STR, None),
    },
    "launch_configuration": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "image": (_STR, REQ),
        "region": (_STR, None),
        "instance_type": (_STR, "t3.micro"),
    },
    "auto_scaling_group": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "launch_template": (_STR, None),
        "version": ((str, int), "$Default"),
        "launch_configuration": (_STR, None),
        "mixed": (_DICT, None),
        "desired": (_INT, 0),
        "region": (_STR, None),
    },
    "mixed": {
        "launch_template": (_STR, REQ),
        "version": ((str, int), "$Default"),
        "overrides": (_LIST, []),
    },
    "override": {
        "launch_template": (_STR, None),
        "version": ((str, int), "$Default"),
        "instance_type": (_STR, None),
    },
    "ssm_parameter": {
        "alias": (_STR, REQ),
        "name": (_STR, REQ),
        "image": (_STR, None),
        "value": (_STR, None),
        "data_type": (_STR, "aws:ec2:image"),
        "region": (_STR, None),
    },
    # issue 26: the other services that launch an image (seeded by seed_services.py)
    "cloudformation_stack": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "image": (_STR, None),  # parameter ImageId (AWS::EC2::Image::Id)
        "images": (_LIST, []),  # parameter ImageIds (List<AWS::EC2::Image::Id>)
        "template_image": (_STR, None),  # an image id written in the template itself
        "region": (_STR, None),
    },
    "beanstalk_environment": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "application": (_STR, "app"),
        "image": (_STR, REQ),  # option aws:autoscaling:launchconfiguration ImageId
        "region": (_STR, None),
    },
    "image_recipe": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "version": (_STR, "1.0.0"),
        "image": (_STR, REQ),  # the parent image (an alias)
        "region": (_STR, None),
    },
    "container_recipe": {
        "alias": (_STR, REQ),
        "name": (_STR, None),
        "version": (_STR, "1.0.0"),
        "parent": (_STR, "amazonlinux:latest"),  # a container image
        "image": (_STR, REQ),  # the build instance's image (an alias)
        "region": (_STR, None),
    },
    "snapshot": {
        "alias": (_STR, REQ),
        "size_gib": (_INT, 8),
        "age_days": ((int, float), 0),
        "made_for_deleted_image": (_BOOL, False),
        "region": (_STR, None),
        "tags": (_DICT, {}),
        "description": (_STR, None),
        "encrypted": (_BOOL, False),
        "storage_tier": (_STR, "standard"),
    },
}

SPECS.update(  # issue 26: Spot, fleets, EMR, Batch
    {
        kind: {k: (t, REQ if d == _launchers.REQ else d) for k, (t, d) in spec.items()}
        for kind, spec in _launchers.SPECS.items()
    }
)

SECTIONS = {
    "images": "image",
    "instances": "instance",
    "launch_templates": "launch_template",
    "launch_configurations": "launch_configuration",
    "auto_scaling_groups": "auto_scaling_group",
    "ssm_parameters": "ssm_parameter",
    "snapshots": "snapshot",
    "cloudformation_stacks": "cloudformation_stack",
    "beanstalk_environments": "beanstalk_environment",
    "image_recipes": "image_recipe",
    "container_recipes": "container_recipe",
    **_launchers.SECTIONS,  # issue 26: Spot, fleets, EMR, Batch
}
SERVICE_IMAGE_KEYS = ("image", "images", "template_image")
"""The keys of the issue-26 sections that name images (aliases), checked alike."""
# Account settings per region (issue 11: what the audit checks beside the images).
SETTING_KEYS = {"image_block_public_access", "recycle_bin_rules"}
SETTING_KEYS |= {"builder_instance_profile"}  # issue 23: what `amictl bake setup` makes
RBIN_RULE_KEYS = {"resource_type", "retention_days", "region"}
TOP_KEYS = {"format", "account", "regions", *SECTIONS, *SETTING_KEYS}

IMAGE_STATES = {"available", "pending", "failed"}
INSTANCE_STATES = {"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
ARCHES = {"x86_64", "arm64", "i386"}
PLATFORMS = {"linux", "windows"}
SSM_TYPES = {"aws:ec2:image", "text"}
STORAGE_TIERS = {"standard", "archive"}  # a snapshot's StorageTier (ModifySnapshotTier)


@dataclass
class Fleet:
    """A validated fleet: sections are lists of plain dicts with defaults filled in."""

    account: str = "123456789012"
    regions: list[str] = field(default_factory=lambda: ["us-east-1"])
    images: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    launch_templates: list[dict[str, Any]] = field(default_factory=list)
    launch_configurations: list[dict[str, Any]] = field(default_factory=list)
    auto_scaling_groups: list[dict[str, Any]] = field(default_factory=list)
    ssm_parameters: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    cloudformation_stacks: list[dict[str, Any]] = field(default_factory=list)
    beanstalk_environments: list[dict[str, Any]] = field(default_factory=list)
    image_recipes: list[dict[str, Any]] = field(default_factory=list)
    container_recipes: list[dict[str, Any]] = field(default_factory=list)
    spot_requests: list[dict[str, Any]] = field(default_factory=list)  # issue 26 ...
    spot_fleets: list[dict[str, Any]] = field(default_factory=list)
    ec2_fleets: list[dict[str, Any]] = field(default_factory=list)
    emr_clusters: list[dict[str, Any]] = field(default_factory=list)
    batch_compute_environments: list[dict[str, Any]] = field(default_factory=list)
    image_block_public_access: bool | None = None  # None: leave the sandbox's state alone
    recycle_bin_rules: list[dict[str, Any]] = field(default_factory=list)
    builder_instance_profile: str | None = None  # role + instance profile, as `bake setup`
    positions: Positions | None = field(default=None, compare=False, repr=False)

    def error(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> InputError:
        """An InputError naming the fleet file, line and key of ``path`` (if known)."""
        if self.positions is None:
            return Positions("<fleet>").error(path, message, hint)
        return self.positions.error(path, message, hint)

    def counts(self) -> dict[str, int]:
        n_inst = sum(int(i["count"]) for i in self.instances)
        n_snap = sum(len(i["snapshots"]) for i in self.images if not i["reuse_snapshot_of"])
        return {
            "images": len(self.images),
            "snapshots": n_snap + len(self.snapshots),
            "instances": n_inst,
            "launch_templates": len(self.launch_templates),
            "launch_template_versions": sum(len(t["versions"]) for t in self.launch_templates),
            "launch_configurations": len(self.launch_configurations),
            "auto_scaling_groups": len(self.auto_scaling_groups),
            "ssm_parameters": len(self.ssm_parameters),
            **{s: len(getattr(self, s)) for s in SERVICE_SECTIONS},
            **{s: len(getattr(self, s)) for s in _launchers.SECTIONS},
        }

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": 1,
            "account": self.account,
            "regions": list(self.regions),
            **{s: getattr(self, s) for s in SECTIONS},
        }
        if self.image_block_public_access is not None:
            out["image_block_public_access"] = self.image_block_public_access
        if self.recycle_bin_rules:
            out["recycle_bin_rules"] = list(self.recycle_bin_rules)
        if self.builder_instance_profile:
            out["builder_instance_profile"] = self.builder_instance_profile
        return out


def _fill(obj: Any, kind: str, path: tuple[Any, ...], pos: Positions, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise pos.error(path, f"expected a mapping ({what})")
    spec = SPECS[kind]
    check_keys(obj, spec, path, pos, what)
    out: dict[str, Any] = {}
    for key, (types, default) in spec.items():
        if key in obj and obj[key] is not None:
            val = obj[key]
            ok = isinstance(val, types) and not (isinstance(val, bool) and bool not in types)
            if not ok:
                names = " or ".join(t.__name__ for t in types)
                raise pos.error((*path, key), f"expected {names}, got {type(val).__name__}")
            out[key] = val
        elif default is REQ:
            raise pos.error(path, f"missing required key '{key}' in {what}")
        else:
            out[key] = default.copy() if isinstance(default, dict | list) else default
    return out


def _one_of(val: Any, allowed: set[str], path: tuple[Any, ...], pos: Positions) -> None:
    if val not in allowed:
        raise pos.error(path, f"must be one of {', '.join(sorted(allowed))}, got {val!r}")


def _days(item: dict[str, Any], path: tuple[Any, ...], pos: Positions) -> None:
    """Day counts must be finite, not negative, and at most MAX_DAYS (they become dates)."""
    for key in DAY_KEYS:
        val = item.get(key)
        if val is None:
            continue
        if (isinstance(val, float) and not math.isfinite(val)) or not 0 <= val <= MAX_DAYS:
            raise pos.error(
                (*path, key),
                f"must be a number of days from 0 to {MAX_DAYS} (100 years), got {_shown(val)}",
            )


def _limit(val: int, key: str, path: tuple[Any, ...], pos: Positions) -> None:
    low, high = LIMITS[key]
    if not low <= val <= high:
        raise pos.error(path, f"must be from {low} to {high}, got {_shown(val)}", hint=_LIMIT_HINT)


def _shown(val: Any) -> str:
    text = repr(val)
    return text if len(text) <= 24 else text[:21] + "..."


_LIMIT_HINT = "the sandbox caps the numbers that multiply its work (docs/sandbox.md, Limits)"


def _tags(tags: dict[Any, Any], path: tuple[Any, ...], pos: Positions) -> dict[str, str]:
    """Tags as EC2 takes them: at most 50 (aws: ones aside), keys of 1-128 characters,
    values up to 256."""
    own = [k for k in tags if not str(k).startswith("aws:")]
    if len(own) > MAX_TAGS:
        raise pos.error(path, f"at most {MAX_TAGS} tags, got {len(own)}")
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(v, str | int | float | bool):
            raise pos.error((*path, k), "a tag value is a string")
        key, value = str(k), str(v)
        if not 1 <= len(key) <= 128:
            raise pos.error((*path, k), "a tag key has 1 to 128 characters")
        if len(value) > 256:
            raise pos.error((*path, k), "a tag value has at most 256 characters")
        out[key] = value
    return out


def _unique_names(
    items: list[dict[str, Any]], section: str, key: str, what: str, pos: Positions
) -> None:
    """AWS names are unique per region; a repeated name would fail (or overwrite) at seed time."""
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        k = (item["region"], item[key])
        if k in seen:
            raise pos.error(
                (section, i, key),
                f"duplicate {what} name {item[key]!r} in {item['region']} "
                f"(also {section}[{seen[k]}])",
            )
        seen[k] = i


def _check_version(version: str, lt: dict[str, Any], path: tuple[Any, ...], pos: Positions) -> None:
    if version in ("$Default", "$Latest"):
        return
    n = len(lt["versions"])
    if not (version.isdigit() and 1 <= int(version) <= n):
        raise pos.error(
            path,
            f"launch template {lt['alias']!r} has versions 1 to {n}: "
            f"expected one of those, $Default or $Latest, got {version!r}",
        )


def _totals(fleet: Fleet, pos: Positions) -> None:
    counts = fleet.counts()
    counts["instances"] += sum(int(a["desired"]) for a in fleet.auto_scaling_groups)
    for what, limit in TOTALS.items():
        if counts[what] > limit:
            section = what if what in SECTIONS else "launch_templates"
            raise pos.error(
                (section,),
                f"{counts[what]:,} {what.replace('_', ' ')}: the limit is {limit:,}",
                hint=_LIMIT_HINT,
            )


def _settings(data: dict[str, Any], fleet: Fleet, pos: Positions) -> None:
    """``image_block_public_access: true|false`` (every region of the fleet) and
    ``recycle_bin_rules: [{resource_type: EC2_IMAGE|EBS_SNAPSHOT, retention_days, region}]``
    (Region-level retention rules)."""
    bpa = data.get("image_block_public_access")
    if bpa is not None and not isinstance(bpa, bool):
        raise pos.error(("image_block_public_access",), "expected true or false")
    fleet.image_block_public_access = bpa
    rules = data.get("recycle_bin_rules") or []
    if not isinstance(rules, list):
        raise pos.error(("recycle_bin_rules",), "expected a list")
    for i, raw in enumerate(rules):
        p = ("recycle_bin_rules", i)
        if not isinstance(raw, dict):
            raise pos.error(p, "expected a mapping (recycle bin rule)")
        check_keys(raw, RBIN_RULE_KEYS, p, pos, "recycle bin rule")
        rtype = raw.get("resource_type", "EC2_IMAGE")
        _one_of(rtype, {"EC2_IMAGE", "EBS_SNAPSHOT"}, (*p, "resource_type"), pos)
        days = raw.get("retention_days", 7)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise pos.error((*p, "retention_days"), "must be a whole number of days, 1 to 3650")
        region = raw.get("region") or fleet.regions[0]
        if region not in fleet.regions:
            raise pos.error((*p, "region"), f"region {region!r} is not in the fleet's regions")
        fleet.recycle_bin_rules.append(
            {"resource_type": rtype, "retention_days": days, "region": region}
        )
    profile = data.get("builder_instance_profile")
    if profile is not None and (
        not isinstance(profile, str) or not re.match(r"^[\w+=,.@-]{1,64}$", profile)
    ):
        raise pos.error(("builder_instance_profile",), "expected an IAM instance profile name")
    fleet.builder_instance_profile = profile


SERVICE_SECTIONS = (
    "cloudformation_stacks",
    "beanstalk_environments",
    "image_recipes",
    "container_recipes",
)


def _aliases(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if v]


def parse(data: Any, pos: Positions) -> Fleet:
    """Validate parsed YAML data into a Fleet (raises InputError with file:line)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise pos.error((), "a fleet file is a mapping")
    check_keys(data, TOP_KEYS, (), pos, "fleet")
    if data.get("format", 1) != 1:
        raise pos.error(("format",), "only format 1 is supported")
    fleet = Fleet(positions=pos)
    account = str(data.get("account", fleet.account))
    if not ACCOUNT_RE.match(account):
        raise pos.error(("account",), "an account id is 12 digits")
    fleet.account = account
    regions = data.get("regions", fleet.regions)
    if not isinstance(regions, list) or not regions:
        raise pos.error(("regions",), "expected a non-empty list of regions")
    served = known_regions(SANDBOX_PARTITIONS)
    for i, r in enumerate(regions):
        if isinstance(r, str) and r in known_regions():
            if r not in served:
                raise pos.error(
                    ("regions", i),
                    f"the sandbox cannot seed {r!r}: it serves the regions of the "
                    f"{', '.join(SANDBOX_PARTITIONS)} partitions",
                )
            continue
        problem = region_problem(r, served)
        if problem:
            raise pos.error(("regions", i), f"not a region name: {r!r}", hint=problem[1])
    fleet.regions = list(regions)
    _settings(data, fleet, pos)

    aliases: dict[str, tuple[str, dict[str, Any]]] = {}
    errors: list[InputError] = []
    for section, kind in SECTIONS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            raise pos.error((section,), "expected a list")
        out = getattr(fleet, section)
        if len(items) > TOTALS[section]:
            raise pos.error(
                (section,),
                f"{len(items):,} {section.replace('_', ' ')}: the limit is {TOTALS[section]:,}",
                hint=_LIMIT_HINT,
            )
        for i, raw in enumerate(items):
            try:
                item = _fill(raw, kind, (section, i), pos, kind.replace("_", " "))
                _days(item, (section, i), pos)
                if "tags" in item:
                    item["tags"] = _tags(item["tags"], (section, i, "tags"), pos)
                alias = item["alias"]
                if alias in aliases:
                    raise pos.error((section, i, "alias"), f"duplicate alias {alias!r}")
                aliases[alias] = (kind, item)
                item["_path"] = (section, i)
                out.append(item)
            except InputError as exc:
                errors.append(exc)  # every item is checked: all errors at once

    raise_all(errors)

    def ref(path: tuple[Any, ...], alias: str, kind: str) -> dict[str, Any]:
        found = aliases.get(alias)
        if found is None:
            raise pos.error(path, f"no {kind.replace('_', ' ')} has alias {alias!r}")
        if found[0] != kind:
            raise pos.error(path, f"alias {alias!r} is a {found[0]}, expected a {kind}")
        return found[1]

    def region_of(item: dict[str, Any], path: tuple[Any, ...], default: str | None) -> None:
        r = item.get("region") or default or fleet.regions[0]
        if r not in fleet.regions:
            raise pos.error((*path, "region"), f"region {r!r} is not in the fleet's regions")
        if default and r != default:
            raise pos.error(
                (*path, "region"),
                f"region {r!r} differs from the region of what it uses ({default})",
            )
        item["region"] = r

    for i, img in enumerate(fleet.images):
        try:
            p = ("images", i)
            region_of(img, p, None)
            _one_of(img["state"], IMAGE_STATES, (*p, "state"), pos)
            _one_of(img["architecture"], ARCHES, (*p, "architecture"), pos)
            _one_of(img["platform"], PLATFORMS, (*p, "platform"), pos)
            if img["owner"] is not None and not ACCOUNT_RE.match(img["owner"]):
                raise pos.error((*p, "owner"), "an account id is 12 digits")
            if img["reuse_snapshot_of"] and img["snapshots"]:
                raise pos.error((*p, "snapshots"), "give snapshots or reuse_snapshot_of, not both")
            if img["image_location"] is not None:  # instance-store: an S3 bundle, no snapshots
                if img["snapshots"] or img["reuse_snapshot_of"]:
                    raise pos.error(
                        (*p, "image_location"),
                        "an instance-store image has no snapshots (its root is an S3 bundle)",
                    )
                if not re.match(
                    r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.manifest\.xml$", img["image_location"]
                ):
                    raise pos.error((*p, "image_location"), "expected BUCKET/PATH.manifest.xml")
                img["snapshots"] = []
            snaps = img["snapshots"] if img["snapshots"] is not None else [{}]
            if not snaps and not img["reuse_snapshot_of"] and img["image_location"] is None:
                raise pos.error((*p, "snapshots"), "an EBS image needs at least one snapshot")
            img["snapshots"] = (
                [
                    _fill(s, "image_snapshot", (*p, "snapshots", j), pos, "image snapshot")
                    for j, s in enumerate(snaps)
                ]
                if not img["reuse_snapshot_of"]
                else []
            )
            for j, s in enumerate(img["snapshots"]):
                _limit(s["size_gib"], "size_gib", (*p, "snapshots", j, "size_gib"), pos)
                s["tags"] = _tags(s["tags"], (*p, "snapshots", j, "tags"), pos)
                _one_of(s["storage_tier"], STORAGE_TIERS, (*p, "snapshots", j, "storage_tier"), pos)
                if s["storage_tier"] == "archive" and not img["disabled"]:
                    raise pos.error(
                        (*p, "snapshots", j, "storage_tier"),
                        "only a disabled image's snapshots can be archived (as on AWS)",
                    )
                if s["device"] is None:
                    s["device"] = "/dev/xvda" if j == 0 else f"/dev/sd{chr(ord('f') + j - 1)}"
            for j, acct in enumerate(img["shared_with"]):
                if not isinstance(acct, str) or not (
                    ACCOUNT_RE.match(acct) or acct.startswith("arn:aws:organizations::")
                ):
                    raise pos.error(
                        (*p, "shared_with", j),
                        "expected a 12-digit account id or an organization / OU ARN",
                    )
            if img["name"] is None:
                img["name"] = img["alias"]
        except InputError as exc:
            errors.append(exc)
    raise_all(errors)
    for i, img in enumerate(fleet.images):
        p = ("images", i)
        if img["reuse_snapshot_of"]:
            other = ref((*p, "reuse_snapshot_of"), img["reuse_snapshot_of"], "image")
            if other["region"] != img["region"]:
                raise pos.error((*p, "reuse_snapshot_of"), "the other image is in another region")
            seen = {img["alias"]}
            cur = other
            while cur["reuse_snapshot_of"]:
                if cur["alias"] in seen:
                    raise pos.error((*p, "reuse_snapshot_of"), "reuse_snapshot_of makes a cycle")
                seen.add(cur["alias"])
                cur = ref((*p, "reuse_snapshot_of"), cur["reuse_snapshot_of"], "image")
        if img["source"]:
            ref((*p, "source"), img["source"], "image")
        if img["watermarks_of"]:
            ref((*p, "watermarks_of"), img["watermarks_of"], "image")
        if img["watermark"] is not None and not WATERMARK_NAME_RE.match(img["watermark"]):
            raise pos.error((*p, "watermark"), "3-128 letters, digits, spaces and ()[]./-'@_")

    for i, inst in enumerate(fleet.instances):
        p = ("instances", i)
        img = ref((*p, "image"), inst["image"], "image")
        region_of(inst, p, img["region"])
        _one_of(inst["state"], INSTANCE_STATES, (*p, "state"), pos)
        _limit(inst["count"], "count", (*p, "count"), pos)
    for i, lt in enumerate(fleet.launch_templates):
        p = ("launch_templates", i)
        lt["name"] = lt["name"] or lt["alias"]
        if not lt["versions"]:
            raise pos.error((*p, "versions"), "a launch template has at least one version")
        if len(lt["versions"]) > LIMITS["versions"][1]:
            raise pos.error(
                (*p, "versions"),
                f"at most {LIMITS['versions'][1]} versions, got {len(lt['versions'])}",
                hint=_LIMIT_HINT,
            )
        vregion = None
        versions = []
        for j, v in enumerate(lt["versions"]):
            vv = _fill(v, "lt_version", (*p, "versions", j), pos, "launch template version")
            if vv["image"]:
                vregion = (
                    vregion or ref((*p, "versions", j, "image"), vv["image"], "image")["region"]
                )
                ref((*p, "versions", j, "image"), vv["image"], "image")
            versions.append(vv)
        lt["versions"] = versions
        region_of(lt, p, None if lt.get("region") else vregion)
        for j, vv in enumerate(versions):
            if vv["image"] and ref((), vv["image"], "image")["region"] != lt["region"]:
                raise pos.error((*p, "versions", j, "image"), "image is in another region")
        if not 1 <= lt["default_version"] <= len(versions):
            raise pos.error((*p, "default_version"), f"must be between 1 and {len(versions)}")
    for i, lc in enumerate(fleet.launch_configurations):
        p = ("launch_configurations", i)
        lc["name"] = lc["name"] or lc["alias"]
        img = ref((*p, "image"), lc["image"], "image")
        region_of(lc, p, img["region"])
    for i, asg in enumerate(fleet.auto_scaling_groups):
        p = ("auto_scaling_groups", i)
        asg["name"] = asg["name"] or asg["alias"]
        asg["version"] = str(asg["version"])
        _limit(asg["desired"], "desired", (*p, "desired"), pos)
        given = [k for k in ("launch_template", "launch_configuration", "mixed") if asg[k]]
        if len(given) != 1:
            raise pos.error(p, "give exactly one of launch_template, launch_configuration, mixed")
        if asg["launch_template"]:
            lt = ref((*p, "launch_template"), asg["launch_template"], "launch_template")
            region_of(asg, p, lt["region"])
            _check_version(asg["version"], lt, (*p, "version"), pos)
        elif asg["launch_configuration"]:
            lc = ref(
                (*p, "launch_configuration"), asg["launch_configuration"], "launch_configuration"
            )
            region_of(asg, p, lc["region"])
        else:
            mixed = _fill(asg["mixed"], "mixed", (*p, "mixed"), pos, "mixed instances policy")
            mixed["version"] = str(mixed["version"])
            lt = ref((*p, "mixed", "launch_template"), mixed["launch_template"], "launch_template")
            region_of(asg, p, lt["region"])
            _check_version(mixed["version"], lt, (*p, "mixed", "version"), pos)
            ovs = []
            for j, o in enumerate(mixed["overrides"]):
                oo = _fill(o, "override", (*p, "mixed", "overrides", j), pos, "override")
                oo["version"] = str(oo["version"])
                if oo["launch_template"]:
                    olt = ref(
                        (*p, "mixed", "overrides", j, "launch_template"),
                        oo["launch_template"],
                        "launch_template",
                    )
                    if olt["region"] != asg["region"]:
                        raise pos.error(
                            (*p, "mixed", "overrides", j), "template is in another region"
                        )
                    _check_version(
                        oo["version"], olt, (*p, "mixed", "overrides", j, "version"), pos
                    )
                ovs.append(oo)
            mixed["overrides"] = ovs
            asg["mixed"] = mixed
    for i, prm in enumerate(fleet.ssm_parameters):
        p = ("ssm_parameters", i)
        _one_of(prm["data_type"], SSM_TYPES, (*p, "data_type"), pos)
        name = prm["name"]
        if not SSM_NAME_RE.match(name):
            raise pos.error(
                (*p, "name"), "a parameter name has 1 to 2048 of the characters a-zA-Z0-9_.-/"
            )
        if name.lower().lstrip("/").startswith(("aws", "ssm")):
            raise pos.error((*p, "name"), "a parameter name cannot begin with aws or ssm")
        if bool(prm["image"]) == bool(prm["value"]):
            raise pos.error(p, "give exactly one of image (an alias) or value")
        if prm["image"]:
            img = ref((*p, "image"), prm["image"], "image")
            region_of(prm, p, img["region"])
        else:
            region_of(prm, p, None)
    for i, snap in enumerate(fleet.snapshots):
        region_of(snap, ("snapshots", i), None)
        _limit(snap["size_gib"], "size_gib", ("snapshots", i, "size_gib"), pos)
        _one_of(snap["storage_tier"], STORAGE_TIERS, ("snapshots", i, "storage_tier"), pos)
    _unique_names(fleet.launch_templates, "launch_templates", "name", "launch template", pos)
    _unique_names(
        fleet.launch_configurations, "launch_configurations", "name", "launch configuration", pos
    )
    _unique_names(fleet.auto_scaling_groups, "auto_scaling_groups", "name", "group", pos)
    _unique_names(fleet.ssm_parameters, "ssm_parameters", "name", "parameter", pos)
    for section in SERVICE_SECTIONS:  # issue 26: stacks, environments, recipes
        for i, item in enumerate(getattr(fleet, section)):
            p = (section, i)
            item["name"] = item["name"] or item["alias"]
            named = [
                (k, ref((*p, k), str(a), "image"))
                for k in SERVICE_IMAGE_KEYS
                if k in item
                for a in _aliases(item[k])
            ]
            region_of(item, p, None if item["region"] or not named else named[0][1]["region"])
            for key, img in named:
                if img["region"] != item["region"]:
                    raise pos.error((*p, key), "image is in another region")
        _unique_names(getattr(fleet, section), section, "name", SECTIONS[section], pos)
    _launchers.check(fleet, ref, region_of, pos)  # issue 26: Spot, fleets, EMR, Batch
    for section in _launchers.NAMED:
        _unique_names(getattr(fleet, section), section, "name", section.replace("_", " "), pos)
    _totals(fleet, pos)
    for section in SECTIONS:
        for item in getattr(fleet, section):
            item.pop("_path", None)
    return fleet


def parse_text(text: str, file: str = "<fleet>") -> Fleet:
    data, pos = loads(text, file)
    return parse(data, pos)


def parse_file(path: str) -> Fleet:
    data, pos = load_file(path)
    return parse(data, pos)


def from_dict(data: dict[str, Any], file: str = "<generated fleet>") -> Fleet:
    """Validate a fleet built in Python (the built-in fleets)."""
    return parse(data, Positions(file))


__all__ = ["Fleet", "InputError", "from_dict", "parse", "parse_file", "parse_text"]
