"""Fleet files (shared/spec/fleet.md): parse and validate, with file:line errors.

A fleet is plain data. Validation checks types, unknown keys, unique aliases and
that every alias a reference names exists (and is of the right kind and region).
Seeding (``seed.py``) only ever sees a validated fleet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..yamlpos import Positions, check_keys, load_file, loads

ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

# kind -> {key: (python types, default)}; "REQ" marks a required key.
REQ = object()
_STR = (str,)
_INT = (int,)
_BOOL = (bool,)
_LIST = (list,)
_DICT = (dict,)

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
    },
    "image_snapshot": {
        "size_gib": (_INT, 8),
        "device": (_STR, None),
        "encrypted": (_BOOL, False),
        "volume_type": (_STR, "gp3"),
        "tags": (_DICT, {}),
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
    "snapshot": {
        "alias": (_STR, REQ),
        "size_gib": (_INT, 8),
        "age_days": ((int, float), 0),
        "made_for_deleted_image": (_BOOL, False),
        "region": (_STR, None),
        "tags": (_DICT, {}),
        "description": (_STR, None),
        "encrypted": (_BOOL, False),
    },
}

SECTIONS = {
    "images": "image",
    "instances": "instance",
    "launch_templates": "launch_template",
    "launch_configurations": "launch_configuration",
    "auto_scaling_groups": "auto_scaling_group",
    "ssm_parameters": "ssm_parameter",
    "snapshots": "snapshot",
}
TOP_KEYS = {"format", "account", "regions", *SECTIONS}

IMAGE_STATES = {"available", "pending", "failed"}
INSTANCE_STATES = {"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
ARCHES = {"x86_64", "arm64", "i386"}
PLATFORMS = {"linux", "windows"}
SSM_TYPES = {"aws:ec2:image", "text"}


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
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "account": self.account,
            "regions": list(self.regions),
            **{s: getattr(self, s) for s in SECTIONS},
        }


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


def parse(data: Any, pos: Positions) -> Fleet:
    """Validate parsed YAML data into a Fleet (raises InputError with file:line)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise pos.error((), "a fleet file is a mapping")
    check_keys(data, TOP_KEYS, (), pos, "fleet")
    if data.get("format", 1) != 1:
        raise pos.error(("format",), "only format 1 is supported")
    fleet = Fleet()
    account = str(data.get("account", fleet.account))
    if not ACCOUNT_RE.match(account):
        raise pos.error(("account",), "an account id is 12 digits")
    fleet.account = account
    regions = data.get("regions", fleet.regions)
    if not isinstance(regions, list) or not regions:
        raise pos.error(("regions",), "expected a non-empty list of regions")
    for i, r in enumerate(regions):
        if not isinstance(r, str) or not REGION_RE.match(r):
            raise pos.error(("regions", i), f"not a region name: {r!r}")
    fleet.regions = list(regions)

    aliases: dict[str, tuple[str, dict[str, Any]]] = {}
    for section, kind in SECTIONS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            raise pos.error((section,), "expected a list")
        out = getattr(fleet, section)
        for i, raw in enumerate(items):
            item = _fill(raw, kind, (section, i), pos, kind.replace("_", " "))
            alias = item["alias"]
            if alias in aliases:
                raise pos.error((section, i, "alias"), f"duplicate alias {alias!r}")
            aliases[alias] = (kind, item)
            item["_path"] = (section, i)
            out.append(item)

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
        p = ("images", i)
        region_of(img, p, None)
        _one_of(img["state"], IMAGE_STATES, (*p, "state"), pos)
        _one_of(img["architecture"], ARCHES, (*p, "architecture"), pos)
        _one_of(img["platform"], PLATFORMS, (*p, "platform"), pos)
        if img["owner"] is not None and not ACCOUNT_RE.match(img["owner"]):
            raise pos.error((*p, "owner"), "an account id is 12 digits")
        if img["reuse_snapshot_of"] and img["snapshots"]:
            raise pos.error((*p, "snapshots"), "give snapshots or reuse_snapshot_of, not both")
        snaps = img["snapshots"] if img["snapshots"] is not None else [{}]
        if not snaps and not img["reuse_snapshot_of"]:
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
            if s["size_gib"] < 1:
                raise pos.error((*p, "snapshots", j, "size_gib"), "must be at least 1")
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
        for key in ("tags",):
            for k, v in img[key].items():
                if not isinstance(v, str | int | float | bool):
                    raise pos.error((*p, key, k), "a tag value is a string")
            img[key] = {str(k): str(v) for k, v in img[key].items()}
        if img["name"] is None:
            img["name"] = img["alias"]
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

    for i, inst in enumerate(fleet.instances):
        p = ("instances", i)
        img = ref((*p, "image"), inst["image"], "image")
        region_of(inst, p, img["region"])
        _one_of(inst["state"], INSTANCE_STATES, (*p, "state"), pos)
        if inst["count"] < 1:
            raise pos.error((*p, "count"), "must be at least 1")
    for i, lt in enumerate(fleet.launch_templates):
        p = ("launch_templates", i)
        lt["name"] = lt["name"] or lt["alias"]
        if not lt["versions"]:
            raise pos.error((*p, "versions"), "a launch template has at least one version")
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
        given = [k for k in ("launch_template", "launch_configuration", "mixed") if asg[k]]
        if len(given) != 1:
            raise pos.error(p, "give exactly one of launch_template, launch_configuration, mixed")
        if asg["launch_template"]:
            lt = ref((*p, "launch_template"), asg["launch_template"], "launch_template")
            region_of(asg, p, lt["region"])
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
                ovs.append(oo)
            mixed["overrides"] = ovs
            asg["mixed"] = mixed
    for i, prm in enumerate(fleet.ssm_parameters):
        p = ("ssm_parameters", i)
        _one_of(prm["data_type"], SSM_TYPES, (*p, "data_type"), pos)
        if bool(prm["image"]) == bool(prm["value"]):
            raise pos.error(p, "give exactly one of image (an alias) or value")
        if prm["image"]:
            img = ref((*p, "image"), prm["image"], "image")
            region_of(prm, p, img["region"])
        else:
            region_of(prm, p, None)
    for i, snap in enumerate(fleet.snapshots):
        region_of(snap, ("snapshots", i), None)
        if snap["size_gib"] < 1:
            raise pos.error(("snapshots", i, "size_gib"), "must be at least 1")
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
