"""Check owned images against the conventions; plan and apply the tags that fix names.

``check`` is pure (inventory images + conventions -> violations). ``plan_fixes`` is pure
too: a family/version tag is proposed only where the name matches the template in exactly
one way and the tag is absent (a tag present with another value is left alone).
``apply_fixes`` re-reads each image live just before tagging it and journals every action
(``intended`` before the CreateTags call, its result after) under the fix plan's checksum.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import SQLAlchemyError

from ..aws.session import Connector, Target, aws_error
from ..errors import JournalError
from ..inventory.lookup import describe_image
from ..model import Image
from ..state.store import Store
from ..tagnames import RESERVED_TAG_PREFIX
from .model import Conventions

FIX_TAGS = ("family", "version")
PERMISSIONS = frozenset({"ec2:DescribeImages", "ec2:DescribeImageAttribute", "ec2:CreateTags"})


@dataclass(frozen=True)
class Violation:
    image_id: str
    name: str
    account: str
    region: str
    rule: str  # name | required-tag | family | version | name-tags
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _derived(img: Image, conv: Conventions) -> tuple[dict[str, str] | None, bool]:
    """(the one parse of the name or None, whether the name matched at all)."""
    parses = conv.parses(img.name or "")
    return (parses[0] if len(parses) == 1 else None), bool(parses)


def check_image(img: Image, conv: Conventions) -> list[Violation]:
    out: list[Violation] = []

    def v(rule: str, detail: str) -> None:
        out.append(Violation(img.image_id, img.name, img.account, img.region, rule, detail))

    parsed, matched = _derived(img, conv)
    if not matched:
        v("name", f"{img.name!r} does not match the template {conv.name_template!r}")
    for key, pattern in conv.required_tags.items():
        if key not in img.tags:
            v("required-tag", f"tag {key!r} is missing")
        elif pattern is not None and not pattern.fullmatch(img.tags[key]):
            v("required-tag", f"tag {key}={img.tags[key]!r} does not match {pattern.pattern!r}")
    version = img.tags.get("version")
    if version is not None and not conv.version_re.fullmatch(version):
        v("version", f"tag version={version!r} does not match {conv.version_pattern!r}")
    family = img.tags.get("family") or (parsed or {}).get("family")
    if family and not conv.family_allowed(family):
        v("family", f"family {family!r} is not among {', '.join(conv.allowed_families or [])}")
    if parsed:
        for key in FIX_TAGS:
            if key in parsed and key in img.tags and img.tags[key] != parsed[key]:
                v("name-tags", f"tag {key}={img.tags[key]!r} but the name says {parsed[key]!r}")
    return out


def check(images: list[Image], conv: Conventions) -> list[Violation]:
    """Every violation of every owned image, in a stable order."""
    out: list[Violation] = []
    for img in sorted(images, key=lambda i: (i.account, i.region, i.name, i.image_id)):
        if img.owned:
            out.extend(check_image(img, conv))
    return out


@dataclass
class FixPlan:
    conventions: dict[str, Any]
    actions: list[dict[str, Any]] = field(default_factory=list)
    untouched: list[dict[str, str]] = field(default_factory=list)
    created_at: str = ""
    checksum: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "format": 1,
            "kind": "lint-fix",
            "created_at": self.created_at,
            "conventions": self.conventions,
            "actions": self.actions,
            "untouched": self.untouched,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "checksum": self.checksum}


def checksum_of(body: dict[str, Any]) -> str:
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def plan_fixes(images: list[Image], conv: Conventions, now: dt.datetime | None = None) -> FixPlan:
    """A ``tag`` action per owned image whose name gives its missing family/version tags."""
    plan = FixPlan(
        conventions={"path": conv.path, "sha256": conv.sha256},
        created_at=(now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    for img in sorted(images, key=lambda i: (i.account, i.region, i.name, i.image_id)):
        if not img.owned or img.state in ("deregistered",):
            continue
        missing = [k for k in FIX_TAGS if k not in img.tags]
        if not missing:
            continue

        def skip(reason: str, img: Image = img) -> None:
            plan.untouched.append(
                {"image_id": img.image_id, "region": img.region, "reason": reason}
            )

        parses = conv.parses(img.name or "")
        if not parses:
            skip(f"the name does not match the template {conv.name_template!r}")
            continue
        if len(parses) > 1:
            alts = "; ".join(", ".join(f"{k}={p[k]!r}" for k in FIX_TAGS if k in p) for p in parses)
            skip(f"ambiguous name: it splits in more than one way ({alts})")
            continue
        parsed = parses[0]
        tags = {k: parsed[k] for k in missing if k in parsed}
        if not tags:
            skip(f"the template {conv.name_template!r} has no {{{'}/{'.join(missing)}}}")
            continue
        conflict = [
            k for k in FIX_TAGS if k in img.tags and k in parsed and img.tags[k] != parsed[k]
        ]
        if conflict:
            skip(f"tag {conflict[0]}={img.tags[conflict[0]]!r} disagrees with the name")
            continue
        family = img.tags.get("family") or parsed.get("family")
        if family and not conv.family_allowed(family):
            skip(f"family {family!r} is not allowed")
            continue
        plan.actions.append(
            {
                "id": f"f{len(plan.actions) + 1}",
                "type": "tag",
                "account": img.account,
                "region": img.region,
                "image_id": img.image_id,
                "name": img.name,
                "tags": tags,
            }
        )
    plan.checksum = checksum_of(plan.body())
    return plan


@dataclass
class FixResult:
    checksum: str
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    not_found: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[dict[str, Any], str, str], None]


def _tags(img: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in img.get("Tags", []) or []}


def _tag_one(ec2: Any, a: dict[str, Any]) -> tuple[str, str]:
    """Re-read the image live; return (status, message) for a skip, or ("go", "")."""
    reserved = [k for k in a["tags"] if k.lower().startswith(RESERVED_TAG_PREFIX)]
    if reserved:  # amictl's own tags (bake status, lineage) are never written by a fix
        return "skipped", f"tag {reserved[0]!r} is in amictl's reserved namespace"
    img = describe_image(ec2, a["image_id"])
    if img is None:
        return "not-found", "image not found (deregistered since the scan)"
    if img.get("OwnerId") != a["account"]:
        return "skipped", f"not owned by {a['account']}"
    live = _tags(img)
    present = [k for k in a["tags"] if k in live]
    if present:
        return "skipped", f"tag {present[0]}={live[present[0]]!r} appeared since the scan"
    if (img.get("Name") or "") != a["name"]:
        return "skipped", "the image's name is not the one planned"
    return "go", ""


def apply_fixes(
    connector: Connector,
    store: Store,
    plan: FixPlan,
    targets: list[Target],
    progress: Progress | None = None,
) -> FixResult:
    """CreateTags for each action, re-checked live and journaled before and after."""
    result = FixResult(plan.checksum)
    by_key = {(t.account, t.region): t for t in targets}
    callers: dict[str, str | None] = {}

    def journal(a: dict[str, Any], status: str, code: str | None = None, msg: str = "") -> None:
        try:
            store.journal_write(
                plan_checksum=plan.checksum,
                action_id=a["id"],
                type="tag",
                account=a["account"],
                region=a["region"],
                resource=a["image_id"],
                status=status,
                error_code=code,
                message=msg[:2000] or None,
                caller=callers.get(a["account"]),
            )
        except (SQLAlchemyError, OSError) as exc:
            raise JournalError(
                f"the journal could not be written ({str(exc).splitlines()[0][:200]}): "
                f"stopped after {len(result.done)} tag actions",
                hint="free space or fix --state, then run `amictl lint --fix` again",
            ) from None

    def record(a: dict[str, Any], status: str, msg: str, code: str | None = None) -> None:
        journal(a, status, code, msg)
        if status == "done":
            result.done.append(a["id"])
        elif status == "skipped":
            result.skipped[a["id"]] = msg
        elif status == "not-found":
            result.not_found[a["id"]] = msg
        else:
            result.failed[a["id"]] = msg
        if progress:
            progress(a, status, msg)

    keys = sorted({f"{a['account']}/{a['region']}" for a in plan.actions})
    with store.lock(keys, owner=f"lint --fix {plan.checksum[:12]}"):
        for a in plan.actions:
            t = by_key.get((a["account"], a["region"]))
            if t is None:
                record(a, "skipped", "account/region not among the targets", "Target")
                continue
            if a["account"] not in callers:
                try:
                    callers[a["account"]] = connector.identity(t.role_arn)["arn"]
                except Exception:  # noqa: BLE001 - the caller is informational
                    callers[a["account"]] = None
            ec2 = connector.client("ec2", t.region, t.role_arn)
            try:
                status, msg = _tag_one(ec2, a)
            except (ClientError, BotoCoreError) as exc:
                err = aws_error(exc, "DescribeImages", t.region)
                record(a, "failed", err.message, err.code)
                continue
            if status != "go":
                record(a, status, msg, "NotFound" if status == "not-found" else "Recheck")
                continue
            journal(a, "intended")
            try:
                ec2.create_tags(
                    Resources=[a["image_id"]],
                    Tags=[{"Key": k, "Value": v} for k, v in a["tags"].items()],
                )
            except (ClientError, BotoCoreError) as exc:
                err = aws_error(exc, "CreateTags", t.region)
                record(a, "failed", err.message, err.code)
                continue
            record(a, "done", "tagged " + ", ".join(f"{k}={v}" for k, v in a["tags"].items()))
    return result
