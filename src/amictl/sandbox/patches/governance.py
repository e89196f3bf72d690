"""AMI governance APIs AWS added in 2024-2026 that moto 5.2.5 lacks (issue 20), part 1:

* Allowed AMIs: Get/Enable/DisableAllowedImagesSettings and
  ReplaceImageCriteriaInAllowedImagesSettings per (account, region); ``ImageAllowed`` in
  DescribeImages (``audit-mode`` and ``enabled``); in ``enabled`` mode images that are not
  allowed are hidden from DescribeImages and RunInstances refuses them. Images the
  caller's account owns are never restricted.
* DescribeInstanceImageMetadata: the image of each instance, even once the image is gone.
* Watermarks: Attach/DetachImageWatermark, ``ImageWatermarks`` in DescribeImages, the
  DescribeImages filter ``image-watermark-key``; inherited by CreateImage and CopyImage.
* GetImageAncestry: from an image back to its root through CopyImage (SourceImageId /
  SourceImageRegion) and CreateImage (the image the instance was launched from).

Pages: EC2 API reference AllowedImagesSettings / ImageCriterion / AttachImageWatermark /
GetImageAncestry / DescribeInstanceImageMetadata, and the user guide "Control the
discovery and use of AMIs in Amazon EC2 with Allowed AMIs" (ec2-allowed-amis). Where they
are silent the sandbox's choice is written in docs/sandbox.md. Asserted through boto3
over HTTP in tests/test_sandbox_governance.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import re
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidAMIIdError
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.amis import AmisResponse

from ...governance.names import image_name_matches
from ..fleet import WATERMARK_NAME_RE
from ..readcache import CACHED
from .helpers import err, now, parse_time, patch

DISABLED, AUDIT, ENABLED = "disabled", "audit-mode", "enabled"
PROVIDER_ALIASES = ("amazon", "aws-marketplace", "aws-backup-vault")
MAX_CRITERIA = 10
MAX_PROVIDERS = 200
MAX_NAMES = 50
MAX_CODES = 50
MAX_WATERMARK_FILTERS = 50
MAX_WATERMARKS_PER_IMAGE = 5
IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_*? ]{1,128}$")
CODE_RE = re.compile(r"^[A-Za-z0-9]{1,25}$")
STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}

# (account, region) -> {"state": ..., "criteria": [...]}
SETTINGS: dict[tuple[str, str], dict[str, Any]] = {}
# image id -> the watermarks it carries (AMI ids are unique across accounts and regions)
WATERMARKS: dict[str, list[dict[str, Any]]] = {}
# image id -> (source image id, its region) for images made by CreateImage
CREATED_FROM: dict[str, tuple[str, str]] = {}
# image id -> what DescribeInstanceImageMetadata shows once the image is gone
LAUNCHED: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def settings(account: str, region: str) -> dict[str, Any]:
    return SETTINGS.get((account, region)) or {"state": DISABLED, "criteria": []}


def _backends(region: str) -> list[Any]:
    from moto.ec2.models import ec2_backends

    out = []
    for account in list(ec2_backends.keys()):
        b = ec2_backends[account].get(region) if hasattr(ec2_backends[account], "get") else None
        if b is not None:
            out.append(b)
    return out


def lookup(backend: Any, image_id: str, region: str | None = None) -> Any:
    """The image with this id in the region, whichever account's backend holds it."""
    region = region or backend.region_name
    if region == backend.region_name:
        ami = backend.amis.get(image_id)
        if ami is not None:
            return ami
    for other in _backends(region):
        ami = other.amis.get(image_id)
        if ami is not None:
            return ami
    return None


def _days_since(value: Any, at: dt.datetime) -> float:
    return (at - parse_time(value)).total_seconds() / 86400.0


def _watermark_matches(w: dict[str, Any], f: dict[str, Any], at: dt.datetime) -> bool:
    if f.get("WatermarkKey") and not fnmatch.fnmatchcase(w["WatermarkKey"], f["WatermarkKey"]):
        return False
    if f.get("SourceImageRegion") and not fnmatch.fnmatchcase(
        w["SourceImageRegion"], f["SourceImageRegion"]
    ):
        return False
    days = f.get("MaximumDaysSinceSourceImageCreated")
    if days is not None and _days_since(w["SourceImageCreationTime"], at) > int(days):
        return False
    days = f.get("MaximumDaysSinceWatermarkCreated")
    return days is None or _days_since(w["WatermarkCreationTime"], at) <= int(days)


def criterion_matches(ami: Any, c: dict[str, Any], at: dt.datetime) -> bool:
    """Every field given must match (a list field: any of its values)."""
    providers = c.get("ImageProviders") or []
    if providers:
        alias = getattr(ami, "owner_alias", None)
        if not any(p == alias or p == ami.owner_id for p in providers if p != "none"):
            return False
    names = c.get("ImageNames") or []
    if names and not any(image_name_matches(ami.name or "", n) for n in names):
        return False
    codes = c.get("MarketplaceProductCodes") or []
    if codes and not set(codes) & set(ami.product_codes or ()):
        return False
    created = (c.get("CreationDateCondition") or {}).get("MaximumDaysSinceCreated")
    if created is not None and _days_since(ami.creation_date, at) > int(created):
        return False
    deprecated = (c.get("DeprecationTimeCondition") or {}).get("MaximumDaysSinceDeprecated")
    if deprecated is not None and ami.deprecation_time:
        since = _days_since(ami.deprecation_time, at)
        if since >= 0 and (int(deprecated) == 0 or since > int(deprecated)):
            return False
    filters = c.get("ImageWatermarks") or []
    if filters and not any(
        _watermark_matches(w, f, at) for w in WATERMARKS.get(ami.id, []) for f in filters
    ):
        return False
    # Amazon Inspector's findings (patches/findings.py, issue 28): an image that was not
    # scanned does not meet a ScanResultCondition (ImageCriterion page).
    if c.get("ScanResultCondition"):
        from .findings import scan_result_ok

        return scan_result_ok(ami.id, c["ScanResultCondition"], at)
    return True


def image_allowed(ami: Any, account: str, region: str) -> bool:
    """Whether the criteria of (account, region) allow the image; owned images always are."""
    if ami.owner_id == account:
        return True
    crit = settings(account, region)["criteria"]
    at = now()
    return any(criterion_matches(ami, c, at) for c in crit)


def hidden(ami: Any, account: str, region: str) -> bool:
    return settings(account, region)["state"] == ENABLED and not image_allowed(ami, account, region)


def _check_criteria(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def bad(msg: str) -> Exception:
        return err("InvalidParameterValue", msg)

    if len(criteria) > MAX_CRITERIA:
        raise bad(f"The number of image criteria ({len(criteria)}) exceeds {MAX_CRITERIA}.")
    out = []
    for i, c in enumerate(criteria, 1):
        c = {k: v for k, v in (c or {}).items() if v not in (None, [], {})}
        if not c:
            raise bad(f"ImageCriterion {i} is empty: specify at least one criterion.")
        providers = c.get("ImageProviders") or []
        if len(providers) > MAX_PROVIDERS:
            raise bad(f"ImageProviders of criterion {i} has more than {MAX_PROVIDERS} values.")
        for p in providers:
            if p not in (*PROVIDER_ALIASES, "none") and not re.fullmatch(r"\d{12}", p):
                raise bad(f"Value ({p}) for parameter ImageProviders is invalid.")
        if "none" in providers and len(providers) > 1:
            raise bad("When ImageProviders includes none, no other value can be specified.")
        names = c.get("ImageNames") or []
        if len(names) > MAX_NAMES:
            raise bad(f"ImageNames of criterion {i} has more than {MAX_NAMES} values.")
        for n in names:
            if not IMAGE_NAME_RE.match(n) or ("?" in n and len(n) < 3):
                raise bad(f"Value ({n}) for parameter ImageNames is invalid.")
        codes = c.get("MarketplaceProductCodes") or []
        if len(codes) > MAX_CODES or any(not CODE_RE.match(x) for x in codes):
            raise bad(f"MarketplaceProductCodes of criterion {i} is invalid.")
        marks = c.get("ImageWatermarks") or []
        if len(marks) > MAX_WATERMARK_FILTERS:
            raise bad(f"ImageWatermarks of criterion {i} has more than {MAX_WATERMARK_FILTERS}.")
        for cond, key in (
            ("CreationDateCondition", "MaximumDaysSinceCreated"),
            ("DeprecationTimeCondition", "MaximumDaysSinceDeprecated"),
        ):
            if cond in c:
                value = c[cond].get(key)
                if value is None or int(value) < 0:
                    raise bad(f"{cond}.{key} of criterion {i} must be 0 or more.")
                c[cond] = {key: int(value)}
        for m in marks:
            for key in ("MaximumDaysSinceSourceImageCreated", "MaximumDaysSinceWatermarkCreated"):
                if key in m:
                    if int(m[key]) < 0:
                        raise bad(f"ImageWatermarks.{key} of criterion {i} must be 0 or more.")
                    m[key] = int(m[key])
        out.append(c)
    return out


@patch(
    "Allowed AMIs: Get/Enable/DisableAllowedImagesSettings, ReplaceImageCriteria (limits "
    "checked); ImageAllowed in DescribeImages; enabled hides and refuses to launch images "
    "not allowed, audit-mode only reports; owned images never restricted"
)
def allowed_images_settings() -> None:
    def get(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        s = settings(b.account_id, b.region_name)
        body: dict[str, Any] = {"State": s["state"], "ManagedBy": "account"}
        if s["criteria"]:
            body["ImageCriteria"] = copy.deepcopy(s["criteria"])
        return ActionResult(body)

    def enable(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        state = self._get_param("AllowedImagesSettingsState")
        if state not in (ENABLED, AUDIT):
            raise err(
                "InvalidParameterValue",
                f"Value ({state}) for parameter AllowedImagesSettingsState is invalid. "
                "Valid values: enabled, audit-mode.",
            )
        with _lock:
            cur = settings(b.account_id, b.region_name)
            SETTINGS[(b.account_id, b.region_name)] = {**cur, "state": state}
        return ActionResult({"AllowedImagesSettingsState": state})

    def disable(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        with _lock:
            cur = settings(b.account_id, b.region_name)
            SETTINGS[(b.account_id, b.region_name)] = {**cur, "state": DISABLED}
        return ActionResult({"AllowedImagesSettingsState": DISABLED})

    def replace(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        criteria = _check_criteria(self._get_param("ImageCriteria", []) or [])
        with _lock:
            cur = settings(b.account_id, b.region_name)
            SETTINGS[(b.account_id, b.region_name)] = {**cur, "criteria": criteria}
        return ActionResult({"ReturnValue": True})

    orig_describe = AmiBackend.describe_images

    def describe_images(
        self: Any,
        ami_ids: Any = None,
        filters: Any = None,
        exec_users: Any = None,
        owners: Any = None,
    ) -> list[Any]:
        filters = dict(filters or {})
        keys = filters.pop("image-watermark-key", None)
        found = orig_describe(
            self, ami_ids=ami_ids, filters=filters or None, exec_users=exec_users, owners=owners
        )
        if keys:
            found = [
                a
                for a in found
                if any(
                    fnmatch.fnmatchcase(w["WatermarkKey"], k)
                    for w in WATERMARKS.get(a.id, [])
                    for k in keys
                )
            ]
        if settings(self.account_id, self.region_name)["state"] == ENABLED:
            found = [a for a in found if not hidden(a, self.account_id, self.region_name)]
        return list(found)

    orig_response = AmisResponse.describe_images

    def describe_images_response(self: Any) -> Any:
        result: Any = orig_response(self)
        b = self.ec2_backend
        state = settings(b.account_id, b.region_name)["state"]
        for view in result.result.get("Images", []):
            marks = WATERMARKS.get(view["ImageId"])
            if marks:
                view["ImageWatermarks"] = copy.deepcopy(marks)
            if state != DISABLED:
                ami = lookup(b, view["ImageId"])
                if ami is not None:
                    view["ImageAllowed"] = image_allowed(ami, b.account_id, b.region_name)
        return result

    orig_run = InstanceBackend.run_instances

    def run_instances(
        self: Any,
        image_id: str,
        count: int,
        user_data: Any,
        security_group_names: Any,
        **kwargs: Any,
    ) -> Any:
        ami = lookup(self, image_id) if image_id else None
        if ami is not None and hidden(ami, self.account_id, self.region_name):
            # The page says such an image is neither discoverable nor usable; it does not
            # name the error: the sandbox answers as for an image it cannot see.
            raise err(
                "InvalidAMIID.NotFound",
                f"The image id '[{image_id}]' does not exist or is not allowed by the "
                "Allowed AMIs settings of this account",
            )
        lent = False
        if ami is not None and image_id not in self.amis:
            # An image another account shared with this one (or made public) launches here
            # as on AWS: lend it to this account's backend for the call.
            from .cross_account import foreign_image

            if foreign_image(self, image_id) is not None:
                self.amis[image_id] = ami
                lent = True
        try:
            res = orig_run(self, image_id, count, user_data, security_group_names, **kwargs)
        finally:
            if lent:
                self.amis.pop(image_id, None)
        if ami is not None:
            LAUNCHED[ami.id] = _image_metadata(ami)
        return res

    AmisResponse.get_allowed_images_settings = get  # type: ignore[attr-defined]
    AmisResponse.enable_allowed_images_settings = enable  # type: ignore[attr-defined]
    AmisResponse.disable_allowed_images_settings = disable  # type: ignore[attr-defined]
    AmisResponse.replace_image_criteria_in_allowed_images_settings = replace  # type: ignore[attr-defined]
    AmiBackend.describe_images = describe_images  # type: ignore[method-assign]
    AmisResponse.describe_images = describe_images_response  # type: ignore[method-assign]

    # Kept by the sandbox's read cache only while nothing here can move with the clock: the
    # criteria (a creation date condition) are read only when the settings are not disabled
    CACHED[("ec2", "DescribeImages")] = lambda account, region: (
        settings(account, region)["state"] == DISABLED
    )
    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]


def _time_text(v: Any) -> str | None:
    if v in (None, ""):
        return None
    return parse_time(v).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _image_metadata(ami: Any) -> dict[str, Any]:
    return {
        "ImageId": ami.id,
        "Name": ami.name,
        "OwnerId": ami.owner_id,
        "State": ami.state,
        "ImageOwnerAlias": getattr(ami, "owner_alias", None),
        "CreationDate": _time_text(ami.creation_date),
        "DeprecationTime": _time_text(ami.deprecation_time),
        "IsPublic": bool(ami.is_public),
    }


def _instance_filter(name: str, values: list[str], row: dict[str, Any]) -> bool:
    tags = {t["Key"]: t["Value"] for t in row.get("Tags") or []}
    if name == "instance-id":
        got: Any = row["InstanceId"]
    elif name == "instance-state-name":
        got = row["State"]["Name"]
    elif name == "instance-type":
        got = row["InstanceType"]
    elif name == "availability-zone":
        got = row["AvailabilityZone"]
    elif name == "launch-time":
        got = row["LaunchTime"]
    elif name == "image-allowed":
        got = str(row["ImageMetadata"].get("ImageAllowed", True)).lower()
    elif name == "owner-id":
        got = row["ImageMetadata"].get("OwnerId")
    elif name == "owner-alias":
        got = row["ImageMetadata"].get("ImageOwnerAlias")
    elif name == "tag-key":
        return any(fnmatch.fnmatchcase(k, v) for k in tags for v in values)
    elif name.startswith("tag:"):
        got = tags.get(name[4:])
        if got is None:
            return False
    else:
        raise err("InvalidParameterValue", f"The filter '{name}' is invalid")
    return any(fnmatch.fnmatchcase(str(got or ""), v) for v in values)


@patch(
    "DescribeInstanceImageMetadata: each instance's image (name, owner, state, ImageAllowed, "
    "watermarks), also once the image is deregistered; filters, InstanceIds, pagination"
)
def instance_image_metadata() -> None:
    from .helpers import _paginate

    def describe(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ids = self._get_param("InstanceIds", []) or []
        filters = self._filters_from_querystring()
        state = settings(b.account_id, b.region_name)["state"]
        instances = {i.id: i for r in b.reservations.values() for i in r.instances}
        missing = [i for i in ids if i not in instances]
        if missing:
            raise err(
                "InvalidInstanceID.NotFound",
                f"The instance IDs '{', '.join(missing)}' do not exist",
            )
        rows = []
        for inst in instances.values():
            if ids and inst.id not in ids:
                continue
            ami = lookup(b, inst.image_id) if inst.image_id else None
            if ami is not None:
                meta = _image_metadata(ami)
                allowed = image_allowed(ami, b.account_id, b.region_name)
            else:
                meta = dict(LAUNCHED.get(inst.image_id) or {"ImageId": inst.image_id})
                meta["State"] = "deregistered"
                allowed = meta.get("OwnerId") == b.account_id
            if state != DISABLED:
                meta["ImageAllowed"] = allowed
            marks = WATERMARKS.get(inst.image_id)
            if marks:
                meta["ImageWatermarks"] = copy.deepcopy(marks)
            tags = [{"Key": k, "Value": v} for k, v in (b.tags.get(inst.id) or {}).items()]
            rows.append(
                {
                    "InstanceId": inst.id,
                    "InstanceType": inst.instance_type,
                    "LaunchTime": _time_text(inst.launch_time),
                    "AvailabilityZone": inst.placement,
                    "State": {"Code": STATE_CODES.get(inst.state, 0), "Name": inst.state},
                    "OwnerId": b.account_id,
                    "Tags": tags or None,
                    "ImageMetadata": {k: v for k, v in meta.items() if v is not None},
                }
            )
        for name, values in filters.items():
            rows = [r for r in rows if _instance_filter(name, values, r)]
        page, token = _paginate(
            rows,
            self._get_param("MaxResults"),
            self._get_param("NextToken"),
            key=lambda r: r["InstanceId"],
        )
        body: dict[str, Any] = {"InstanceImageMetadata": page}
        if token:
            body["NextToken"] = token
        return ActionResult(body)

    AmisResponse.describe_instance_image_metadata = describe  # type: ignore[attr-defined]


def watermark(ami: Any, account: str, region: str, name: str) -> str:
    """Attach watermark ``name`` of ``account`` to ``ami`` (AttachImageWatermark's record;
    the fleet's ``watermark:`` too); its key. A name already there changes nothing."""
    key = f"{account}:{name}"
    with _lock:
        marks = WATERMARKS.setdefault(ami.id, [])
        if not any(m["WatermarkKey"] == key for m in marks):
            if len(marks) >= MAX_WATERMARKS_PER_IMAGE:
                raise err(
                    "ResourceLimitExceeded",
                    f"{ami.id} already carries {MAX_WATERMARKS_PER_IMAGE} watermarks, the most "
                    "an image can have",
                )
            marks.append(
                {
                    "WatermarkKey": key,
                    "SourceImageRegion": region,
                    "SourceImageId": ami.id,
                    "SourceImageCreationTime": parse_time(ami.creation_date),
                    "WatermarkCreationTime": now(),
                }
            )
    return key


def inherit_watermarks(new_id: str, source_id: str | None) -> None:
    """``new_id`` carries ``source_id``'s watermarks, as CreateImage and CopyImage give
    them (the fleet's ``watermarks_of:`` too)."""
    if source_id and WATERMARKS.get(source_id):
        with _lock:
            WATERMARKS[new_id] = copy.deepcopy(WATERMARKS[source_id])


def _owned(backend: Any, image_id: str, verb: str) -> Any:
    if not image_id:
        raise err("MissingParameter", "The request must contain the parameter ImageId")
    ami = backend.amis.get(image_id)
    if ami is None:
        other = lookup(backend, image_id)
        if other is None:
            raise InvalidAMIIdError(image_id)
        raise err("AuthFailure", f"Only the owner of {image_id} can {verb} its watermarks")
    if ami.owner_id != backend.account_id:
        raise err("AuthFailure", f"Only the owner of {image_id} can {verb} its watermarks")
    return ami


@patch(
    "Attach/DetachImageWatermark (owner only, not on public images, at most 5 an image); "
    "ImageWatermarks and filter image-watermark-key in DescribeImages; inherited by "
    "CreateImage and CopyImage"
)
def image_watermarks() -> None:
    def attach(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ami = _owned(b, self._get_param("ImageId"), "attach")
        name = self._get_param("WatermarkName") or ""
        if not WATERMARK_NAME_RE.match(name):
            raise err(
                "InvalidParameterValue",
                f"Value ({name}) for parameter WatermarkName is invalid: 3-128 letters, "
                "digits, spaces and ()[]./-'@_",
            )
        if ami.is_public:
            raise err(
                "OperationNotPermitted",
                f"Watermarks cannot be added to public AMIs ({ami.id} is public)",
            )
        key = watermark(ami, b.account_id, b.region_name, name)
        return ActionResult({"WatermarkKey": key})

    def detach(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ami = _owned(b, self._get_param("ImageId"), "detach")
        key = self._get_param("WatermarkKey") or ""
        with _lock:
            WATERMARKS[ami.id] = [m for m in WATERMARKS.get(ami.id, []) if m["WatermarkKey"] != key]
        return ActionResult({"Return": True})

    orig_create = AmisResponse.create_image

    def create_image(self: Any) -> Any:
        result: Any = orig_create(self)
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        new_id = result.result["ImageId"]
        if instance.image_id:
            CREATED_FROM[new_id] = (instance.image_id, self.ec2_backend.region_name)
        inherit_watermarks(new_id, instance.image_id)
        return result

    orig_copy = AmisResponse.copy_image

    def copy_image(self: Any) -> Any:
        result: Any = orig_copy(self)
        inherit_watermarks(result.result["ImageId"], self._get_param("SourceImageId"))
        return result

    AmisResponse.attach_image_watermark = attach  # type: ignore[attr-defined]
    AmisResponse.detach_image_watermark = detach  # type: ignore[attr-defined]
    AmisResponse.create_image = create_image  # type: ignore[method-assign]
    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]


def parent_of(ami: Any) -> tuple[str, str] | None:
    if getattr(ami, "source_image_id", None):
        return ami.source_image_id, ami.source_image_region or ami.ec2_backend.region_name
    return CREATED_FROM.get(ami.id)


@patch(
    "GetImageAncestry: the chain from an image to its root through CopyImage (across "
    "regions) and CreateImage (the instance's image)"
)
def image_ancestry() -> None:
    def get_ancestry(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        image_id = self._get_param("ImageId")
        if not image_id:
            raise err("MissingParameter", "The request must contain the parameter ImageId")
        if not re.fullmatch(r"ami-[0-9a-f]{8,17}", image_id):
            raise err("InvalidAMIID.Malformed", f"Invalid id: \"{image_id}\" (expecting 'ami-...')")
        ami = lookup(b, image_id)
        if ami is None or (
            ami.owner_id != b.account_id
            and not ami.is_public
            and not any(p.get("UserId") == b.account_id for p in ami.launch_permissions or [])
        ):
            raise InvalidAMIIdError(image_id)
        entries: list[dict[str, Any]] = []
        seen: set[str] = set()
        cur: Any = ami
        while cur is not None and cur.id not in seen and len(entries) < 100:
            seen.add(cur.id)
            parent = parent_of(cur)
            entry: dict[str, Any] = {
                "ImageId": cur.id,
                "CreationDate": parse_time(cur.creation_date),
                "ImageOwnerAlias": getattr(cur, "owner_alias", None),
            }
            if parent:
                entry["SourceImageId"], entry["SourceImageRegion"] = parent
            entries.append({k: v for k, v in entry.items() if v is not None})
            cur = lookup(b, parent[0], parent[1]) if parent else None
        return ActionResult({"ImageAncestryEntries": entries})

    AmisResponse.get_image_ancestry = get_ancestry  # type: ignore[attr-defined]
