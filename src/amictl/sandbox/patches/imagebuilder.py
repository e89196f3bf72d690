"""EC2 Image Builder for the sandbox (moto 5.2.5 has none): image recipes, container
recipes and distribution configurations, served as AWS's rest-json ``imagebuilder`` API
(``botocore/data/imagebuilder/2019-12-02/service-2.json``).

Served: Create/Get/List/Delete of ImageRecipe, ContainerRecipe and DistributionConfiguration,
and UpdateDistributionConfiguration. As on AWS: resources live per (account, region); a
recipe's ARN is ``arn:aws:imagebuilder:REGION:ACCOUNT:image-recipe/NAME/VERSION`` (a
distribution configuration's ``.../distribution-configuration/NAME``); a name and version
already taken is ``ResourceAlreadyExistsException`` (400); an unknown ARN is
``ResourceNotFoundException`` (404); the List calls return summaries (a recipe's
``parentImage`` included, a distribution configuration's ``regions`` but not its
``distributions``: GetDistributionConfiguration has them) and page with ``maxResults``
(1..100, default 25) and ``nextToken``; ``owner`` other than ``Self`` lists nothing (no
shared or Amazon-managed recipes in the sandbox). Pipelines, builds and lifecycle
policies are not served (images made by Image Builder are seeded as images with its tags).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs

# (account, region) -> kind -> arn -> resource
STATE: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = {}
LOCK = threading.Lock()

KINDS = {  # kind -> (ARN resource type, ARN request key, summary list key, single key)
    "image-recipe": ("image-recipe", "imageRecipeArn", "imageRecipeSummaryList", "imageRecipe"),
    "container-recipe": (
        "container-recipe",
        "containerRecipeArn",
        "containerRecipeSummaryList",
        "containerRecipe",
    ),
    "distribution": (
        "distribution-configuration",
        "distributionConfigurationArn",
        "distributionConfigurationSummaryList",
        "distributionConfiguration",
    ),
}
ROUTES = {
    "ImageRecipe": "image-recipe",
    "ContainerRecipe": "container-recipe",
    "DistributionConfiguration": "distribution",
}
SUMMARY = {
    "image-recipe": ("arn", "name", "platform", "owner", "parentImage", "dateCreated", "tags"),
    "container-recipe": (
        "arn",
        "containerType",
        "name",
        "platform",
        "owner",
        "parentImage",
        "dateCreated",
        "instanceImage",
        "tags",
    ),
    "distribution": ("arn", "name", "description", "dateCreated", "dateUpdated", "tags", "regions"),
}
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


class ImageBuilderError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def resources(account: str, region: str, kind: str) -> dict[str, dict[str, Any]]:
    """The (mutable) resources of one kind; callers hold ``LOCK``."""
    return STATE.setdefault((account, region), {}).setdefault(kind, {})


def _require(data: dict[str, Any], *keys: str) -> None:
    for k in keys:
        if data.get(k) in (None, "", []):
            raise ImageBuilderError(400, "InvalidRequestException", f"{k} is required")


def create(kind: str, data: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    """Store a new resource (the seeder calls this too); returns it. Callers hold ``LOCK``."""
    rtype = KINDS[kind][0]
    if kind == "distribution":
        _require(data, "name", "distributions")
        arn = f"arn:aws:imagebuilder:{region}:{account}:{rtype}/{data['name'].lower()}"
    else:
        _require(data, "name", "semanticVersion", "parentImage")
        if not VERSION_RE.match(str(data["semanticVersion"])):
            raise ImageBuilderError(
                400,
                "InvalidVersionNumberException",
                "semanticVersion must be <major>.<minor>.<patch>",
            )
        arn = (
            f"arn:aws:imagebuilder:{region}:{account}:{rtype}/"
            f"{data['name'].lower()}/{data['semanticVersion']}"
        )
    store = resources(account, region, kind)
    if arn in store:
        raise ImageBuilderError(
            400, "ResourceAlreadyExistsException", f"The resource {arn} already exists."
        )
    skip = {"clientToken", "dryRun", "semanticVersion", "dockerfileTemplateData"}
    res = {k: v for k, v in data.items() if k not in skip}
    res.update(arn=arn, owner=account, dateCreated=_now(), tags=data.get("tags") or {})
    if kind != "distribution":
        res.update(version=data["semanticVersion"], platform=data.get("platform") or "Linux")
    if kind == "container-recipe":
        res["instanceImage"] = (data.get("instanceConfiguration") or {}).get("image")
    if kind == "distribution":
        res["regions"] = [d.get("region") for d in data["distributions"]]
    store[arn] = res
    return res


def _summary(kind: str, res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k] for k in SUMMARY[kind] if res.get(k) is not None}


def _page(kind: str, store: dict[str, dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    size = int(data.get("maxResults") or 25)
    if not 1 <= size <= 100:
        raise ImageBuilderError(400, "InvalidRequestException", "maxResults must be 1 to 100")
    items = sorted(store.values(), key=lambda r: r["arn"])
    if data.get("owner") not in (None, "Self"):
        items = []
    for f in data.get("filters") or []:
        want = set(f.get("values") or [])
        items = [r for r in items if str(r.get(f.get("name"), "")) in want]
    token = data.get("nextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise ImageBuilderError(
            400, "InvalidPaginationTokenException", f"invalid nextToken {token!r}"
        ) from None
    out: dict[str, Any] = {
        "requestId": str(uuid.uuid4()),
        KINDS[kind][2]: [_summary(kind, r) for r in items[start : start + size]],
    }
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out


def handle(
    method: str, path: str, query: str, body: bytes, account: str, region: str
) -> tuple[int, dict[str, Any]]:
    """One Image Builder request: (HTTP status, JSON body)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ImageBuilderError(400, "InvalidRequestException", "the body is not JSON") from None
    args = {k: v[0] for k, v in parse_qs(query).items()}
    m = re.match(
        r"^/(Create|Get|List|Delete|Update)(ImageRecipe|ContainerRecipe|DistributionConfiguration)s?$",
        path,
    )
    if not m:
        raise ImageBuilderError(
            404, "InvalidRequestException", f"no Image Builder operation {method} {path}"
        )
    verb, noun = m.groups()
    kind = ROUTES[noun]
    _rtype, arn_key, _list_key, one_key = KINDS[kind]
    rid = str(uuid.uuid4())
    with LOCK:
        store = resources(account, region, kind)
        if verb == "List":
            return 200, _page(kind, store, data)
        if verb == "Create":
            res = create(kind, data, account, region)
            return 200, {
                "requestId": rid,
                "clientToken": data.get("clientToken"),
                arn_key: res["arn"],
            }
        arn = args.get(arn_key) or data.get(arn_key)
        if not arn:
            raise ImageBuilderError(400, "InvalidRequestException", f"{arn_key} is required")
        found = store.get(arn)
        if found is None:
            raise ImageBuilderError(
                404, "ResourceNotFoundException", f"The resource {arn} does not exist."
            )
        if verb == "Get":
            return 200, {"requestId": rid, one_key: found}
        if verb == "Delete":
            del store[arn]
            return 200, {"requestId": rid, arn_key: arn}
        if verb == "Update" and kind == "distribution":
            _require(data, "distributions")
            found.update(distributions=data["distributions"], dateUpdated=_now())
            found["regions"] = [d.get("region") for d in data["distributions"]]
            if data.get("description") is not None:
                found["description"] = data["description"]
            return 200, {"requestId": rid, "clientToken": data.get("clientToken"), arn_key: arn}
    raise ImageBuilderError(
        404, "InvalidRequestException", f"no Image Builder operation {method} {path}"
    )
