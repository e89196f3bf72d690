"""AMI governance APIs AWS added in 2024-2026 that moto 5.2.5 lacks (issue 20), part 2:
what uses an image.

* DescribeImageReferences: the caller's own resources referencing 1 to 10 images:
  instances (option ``state-name``, default every state), launch templates (the
  ``version-depth`` most recent versions, default 10), SSM parameters of data type
  ``aws:ec2:image`` whose value is the image. The sandbox has no Image Builder: recipes
  are never reported.
* Image usage reports (Create/Describe/DescribeEntries/Delete): which OTHER accounts (at
  most 200 named, or every one) run instances or keep launch templates (the
  ``version-depth`` latest versions, default 20) of an image the caller owns, in the
  image's region. A report is counted when it is created and stays ``pending`` for
  ``PENDING_SECONDS`` (then ``available``); it expires 30 days after its creation.

Pages: EC2 API reference DescribeImageReferences, CreateImageUsageReport, ImageUsageReport,
ImageUsageReportEntry; user guide "Identify your resources referencing specified AMIs"
and "View your AMI usage". Where they are silent the sandbox's choice is written in
docs/sandbox.md. Asserted through boto3 over HTTP in tests/test_sandbox_governance.py.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import secrets
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidAMIIdError
from moto.ec2.responses.amis import AmisResponse

from .governance import _backends, lookup
from .helpers import _paginate, err, now, patch

RESOURCE_TYPES = (
    "ec2:Instance",
    "ec2:LaunchTemplate",
    "ssm:Parameter",
    "imagebuilder:ImageRecipe",
    "imagebuilder:ContainerRecipe",
)
REPORT_RESOURCE_TYPES = tuple(t for t in RESOURCE_TYPES if t != "ssm:Parameter")
INSTANCE_STATES = ("pending", "running", "shutting-down", "terminated", "stopping", "stopped")
MAX_REFERENCE_IMAGES = 10
REFERENCE_DEPTH = 10  # DescribeImageReferences: launch template versions checked by default
REPORT_DEPTH = 20  # CreateImageUsageReport: launch template versions checked by default
MAX_DEPTH = 10000
MAX_REPORT_ACCOUNTS = 200
REPORT_LIFETIME = dt.timedelta(days=30)
# How long a new report stays pending (AMICTL_SANDBOX_USAGE_REPORT_SECONDS overrides).
PENDING_SECONDS = float(os.environ.get("AMICTL_SANDBOX_USAGE_REPORT_SECONDS", "1"))
AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
ACCOUNT_RE = re.compile(r"^\d{12}$")

# (owner account, region) -> report id -> report
REPORTS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
_TOKENS: dict[tuple[str, str, str], str] = {}
_lock = threading.Lock()


def _bad(msg: str) -> Exception:
    return err("InvalidParameterValue", msg)


def _depth(options: list[dict[str, Any]], name: str, default: int) -> int:
    for o in options or []:
        if o.get("OptionName") == name:
            values = o.get("OptionValues") or []
            try:
                n = int(values[0])
            except (IndexError, ValueError):
                raise _bad(f"Value {values} for option {name} is invalid") from None
            if not 1 <= n <= MAX_DEPTH:
                raise _bad(f"Value ({n}) for option {name} must be from 1 to {MAX_DEPTH}")
            return n
    return default


def _lt_images(template: Any, depth: int) -> set[str]:
    """Image ids in the ``depth`` most recent versions of a launch template."""
    versions = sorted(template.versions, key=lambda v: v.number, reverse=True)[:depth]
    return {str(v.data.get("ImageId")) for v in versions if v.data.get("ImageId")}


def _instances(backend: Any) -> list[Any]:
    return [i for r in backend.reservations.values() for i in r.instances]


def _ssm_parameters(account: str, region: str) -> list[Any]:
    from moto.ssm.models import ssm_backends

    store = ssm_backends[account][region]._parameters
    # dict.items: no lazy loading of moto's /aws/service tree (ParameterDict.__getitem__)
    return [versions[-1] for _name, versions in dict.items(store) if versions]


@patch(
    "DescribeImageReferences: 1-10 image ids; the caller's instances (state-name), launch "
    "templates (version-depth, default 10) and aws:ec2:image SSM parameters referencing them"
)
def image_references() -> None:
    def describe(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        ids = list(self._get_param("ImageIds", []) or [])
        if not ids:
            raise err("MissingParameter", "The request must contain the parameter ImageId")
        if len(ids) > MAX_REFERENCE_IMAGES:
            raise _bad(
                f"The maximum number of image IDs is {MAX_REFERENCE_IMAGES}; {len(ids)} given"
            )
        for i in ids:
            if not AMI_RE.match(i):
                raise err("InvalidAMIID.Malformed", f'Invalid id: "{i}" (expecting "ami-...")')
            if lookup(b, i) is None:
                raise InvalidAMIIdError(i)
        include_all = str(self._get_param("IncludeAllResourceTypes", "")).lower() == "true"
        asked = self._get_param("ResourceTypes", []) or []
        if not include_all and not asked:
            raise err(
                "MissingParameter",
                "Either IncludeAllResourceTypes or ResourceTypes must be specified",
            )
        wanted: dict[str, list[dict[str, Any]]] = (
            {t: [] for t in RESOURCE_TYPES} if include_all else {}
        )
        for rt in asked:
            t = rt.get("ResourceType")
            if t not in RESOURCE_TYPES:
                raise _bad(f"Value ({t}) for parameter ResourceType is invalid")
            opts = rt.get("ResourceTypeOptions") or []
            if opts and t not in ("ec2:Instance", "ec2:LaunchTemplate"):
                raise _bad(
                    f"ResourceTypeOptions are valid only for ec2:Instance and "
                    f"ec2:LaunchTemplate, not {t}"
                )
            wanted[t] = opts
        acct, region = b.account_id, b.region_name
        want = set(ids)
        refs: list[dict[str, Any]] = []
        if "ec2:Instance" in wanted:
            states = set(INSTANCE_STATES)
            for o in wanted["ec2:Instance"]:
                if o.get("OptionName") == "state-name":
                    states = set(o.get("OptionValues") or [])
                    if not states <= set(INSTANCE_STATES):
                        raise _bad(f"Value {sorted(states)} for option state-name is invalid")
                elif o.get("OptionName"):
                    raise _bad(f"Option {o.get('OptionName')} is not valid for ec2:Instance")
            for inst in _instances(b):
                if inst.image_id in want and inst.state in states:
                    refs.append(
                        {
                            "ImageId": inst.image_id,
                            "ResourceType": "ec2:Instance",
                            "Arn": f"arn:aws:ec2:{region}:{acct}:instance/{inst.id}",
                        }
                    )
        if "ec2:LaunchTemplate" in wanted:
            depth = _depth(wanted["ec2:LaunchTemplate"], "version-depth", REFERENCE_DEPTH)
            for lt in list(b.launch_templates.values()):
                for image_id in sorted(_lt_images(lt, depth) & want):
                    refs.append(
                        {
                            "ImageId": image_id,
                            "ResourceType": "ec2:LaunchTemplate",
                            "Arn": f"arn:aws:ec2:{region}:{acct}:launch-template/{lt.id}",
                        }
                    )
        if "ssm:Parameter" in wanted:
            for p in _ssm_parameters(acct, region):
                if p.data_type == "aws:ec2:image" and p.value in want:
                    refs.append(
                        {
                            "ImageId": p.value,
                            "ResourceType": "ssm:Parameter",
                            "Arn": f"arn:aws:ssm:{region}:{acct}:parameter/{p.name.lstrip('/')}",
                        }
                    )
        page, token = _paginate(
            refs,
            self._get_param("MaxResults"),
            self._get_param("NextToken"),
            key=lambda r: f"{r['ImageId']} {r['Arn']}",
        )
        body: dict[str, Any] = {"ImageReferences": page}
        if token:
            body["NextToken"] = token
        return ActionResult(body)

    AmisResponse.describe_image_references = describe  # type: ignore[attr-defined]


# ------------------------------------------------------------------ usage reports


def report_state(report: dict[str, Any], at: dt.datetime) -> str:
    if (at - report["CreationTime"]).total_seconds() < PENDING_SECONDS:
        return "pending"
    return "available"


def live_reports(account: str, region: str, at: dt.datetime) -> dict[str, dict[str, Any]]:
    """The account's reports in the region that have not expired (30 days)."""
    return {
        rid: r for rid, r in REPORTS.get((account, region), {}).items() if r["ExpirationTime"] > at
    }


def count_usage(
    image_id: str, owner: str, region: str, accounts: list[str], depth: int, kinds: set[str]
) -> list[dict[str, Any]]:
    """Per other account: its instances (not terminated) and launch templates using the image."""
    out = []
    for b in _backends(region):
        if b.account_id == owner or (accounts and b.account_id not in accounts):
            continue
        if "ec2:Instance" in kinds:
            n = sum(
                1
                for i in _instances(b)
                if i.image_id == image_id and i.state not in ("terminated", "shutting-down")
            )
            if n:
                out.append((b.account_id, "ec2:Instance", n))
        if "ec2:LaunchTemplate" in kinds:
            n = sum(
                1 for lt in list(b.launch_templates.values()) if image_id in _lt_images(lt, depth)
            )
            if n:
                out.append((b.account_id, "ec2:LaunchTemplate", n))
    return [{"AccountId": a, "ResourceType": t, "UsageCount": n} for a, t, n in sorted(out)]


def _report_view(r: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    view = {k: v for k, v in r.items() if not k.startswith("_")}
    view["State"] = report_state(r, at)
    return view


def _tags(specs: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for spec in specs or []:
        if spec.get("ResourceType") != "image-usage-report":
            raise _bad(
                f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this "
                "operation: use image-usage-report"
            )
        out += [{"Key": t["Key"], "Value": t.get("Value", "")} for t in spec.get("Tags") or []]
    return out


def _report_filter(name: str, values: list[str], r: dict[str, Any], at: dt.datetime) -> bool:
    tags = {t["Key"]: t["Value"] for t in r.get("Tags") or []}
    if name == "state":
        got: Any = report_state(r, at)
    elif name == "creation-time":
        got = r["CreationTime"].strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{r['CreationTime'].microsecond // 1000:03d}Z"
        )
    elif name == "tag-key":
        return any(fnmatch.fnmatchcase(k, v) for k in tags for v in values)
    elif name.startswith("tag:"):
        got = tags.get(name[4:])
        if got is None:
            return False
    else:
        raise _bad(f"The filter '{name}' is invalid")
    return any(fnmatch.fnmatchcase(str(got), v) for v in values)


@patch(
    "Image usage reports: Create (≤200 accounts, resource types, version-depth, ClientToken), "
    "Describe (pending -> available; expire after 30 days), DescribeEntries (other accounts' "
    "instances and launch templates), Delete"
)
def image_usage_reports() -> None:
    def create(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        acct, region = b.account_id, b.region_name
        image_id = self._get_param("ImageId")
        if not image_id:
            raise err("MissingParameter", "The request must contain the parameter ImageId")
        ami = b.amis.get(image_id)
        if ami is None or ami.owner_id != acct:
            if lookup(b, image_id) is None:
                raise InvalidAMIIdError(image_id)
            raise err("AuthFailure", f"Only the owner of {image_id} can report on its usage")
        accounts = list(self._get_param("AccountIds", []) or [])
        if len(accounts) > MAX_REPORT_ACCOUNTS:
            raise _bad(f"At most {MAX_REPORT_ACCOUNTS} account IDs can be given; {len(accounts)}")
        for a in accounts:
            if not ACCOUNT_RE.match(a):
                raise _bad(f"Value ({a}) for parameter AccountId is invalid")
        types = self._get_param("ResourceTypes", []) or []
        if not types:
            raise err("MissingParameter", "The request must contain the parameter ResourceTypes")
        depth = REPORT_DEPTH
        kinds = set()
        for rt in types:
            t = rt.get("ResourceType")
            if t not in REPORT_RESOURCE_TYPES:
                raise _bad(f"Value ({t}) for parameter ResourceType is invalid")
            kinds.add(t)
            if rt.get("ResourceTypeOptions"):
                if t != "ec2:LaunchTemplate":
                    raise _bad("ResourceTypeOptions are valid only for ec2:LaunchTemplate")
                depth = _depth(rt["ResourceTypeOptions"], "version-depth", REPORT_DEPTH)
        tags = _tags(self._get_param("TagSpecifications", []) or [])
        token = self._get_param("ClientToken")
        with _lock:
            if token and (acct, region, token) in _TOKENS:
                return ActionResult({"ReportId": _TOKENS[(acct, region, token)]})
            at = now()
            rid = f"amiur-{secrets.token_hex(9)[:17]}"
            REPORTS.setdefault((acct, region), {})[rid] = {
                "ImageId": image_id,
                "ReportId": rid,
                "ResourceTypes": types,
                "AccountIds": accounts or None,
                "CreationTime": at,
                "ExpirationTime": at + REPORT_LIFETIME,
                "Tags": tags or None,
                "_entries": count_usage(image_id, acct, region, accounts, depth, kinds),
            }
            if token:
                _TOKENS[(acct, region, token)] = rid
        return ActionResult({"ReportId": rid})

    def _selected(self: Any, at: dt.datetime) -> list[dict[str, Any]]:
        b = self.ec2_backend
        reports = live_reports(b.account_id, b.region_name, at)
        rids = self._get_param("ReportIds", []) or []
        for rid in rids:
            if rid not in reports:
                raise err(
                    "InvalidImageUsageReportId.NotFound",
                    f"The image usage report ID '{rid}' does not exist",
                )
        images = set(self._get_param("ImageIds", []) or [])
        return [
            r
            for rid, r in sorted(reports.items(), key=lambda kv: kv[1]["CreationTime"])
            if (not rids or rid in rids) and (not images or r["ImageId"] in images)
        ]

    def describe(self: Any) -> ActionResult:
        self.error_on_dryrun()
        at = now()
        found = _selected(self, at)
        for name, values in self._filters_from_querystring().items():
            found = [r for r in found if _report_filter(name, values, r, at)]
        page, token = _paginate(
            found,
            self._get_param("MaxResults"),
            self._get_param("NextToken"),
            key=lambda r: r["ReportId"],
            lo=1,
        )
        body: dict[str, Any] = {"ImageUsageReports": [_report_view(r, at) for r in page]}
        if token:
            body["NextToken"] = token
        return ActionResult(body)

    def entries(self: Any) -> ActionResult:
        self.error_on_dryrun()
        at = now()
        rows = []
        for r in _selected(self, at):
            if report_state(r, at) != "available":
                continue  # a pending report has no entries yet
            for e in r["_entries"]:
                rows.append(
                    {
                        **e,
                        "ReportId": r["ReportId"],
                        "ImageId": r["ImageId"],
                        "ReportCreationTime": r["CreationTime"],
                    }
                )
        for name, values in self._filters_from_querystring().items():
            if name == "account-id":
                rows = [x for x in rows if x["AccountId"] in values]
            elif name == "resource-type":
                rows = [x for x in rows if x["ResourceType"] in values]
            elif name == "creation-time":
                rows = [
                    x
                    for x in rows
                    if _report_filter(
                        "creation-time", values, {"CreationTime": x["ReportCreationTime"]}, at
                    )
                ]
            else:
                raise _bad(f"The filter '{name}' is invalid")
        page, token = _paginate(
            rows,
            self._get_param("MaxResults"),
            self._get_param("NextToken"),
            key=lambda x: f"{x['ReportId']} {x['AccountId']} {x['ResourceType']}",
            lo=1,
        )
        body: dict[str, Any] = {"ImageUsageReportEntries": page}
        if token:
            body["NextToken"] = token
        return ActionResult(body)

    def delete(self: Any) -> ActionResult:
        self.error_on_dryrun()
        b = self.ec2_backend
        rid = self._get_param("ReportId")
        with _lock:
            reports = REPORTS.get((b.account_id, b.region_name), {})
            if rid not in live_reports(b.account_id, b.region_name, now()):
                raise err(
                    "InvalidImageUsageReportId.NotFound",
                    f"The image usage report ID '{rid}' does not exist",
                )
            reports.pop(rid, None)
        return ActionResult({"Return": True})

    AmisResponse.create_image_usage_report = create  # type: ignore[attr-defined]
    AmisResponse.describe_image_usage_reports = describe  # type: ignore[attr-defined]
    AmisResponse.describe_image_usage_report_entries = entries  # type: ignore[attr-defined]
    AmisResponse.delete_image_usage_report = delete  # type: ignore[attr-defined]
