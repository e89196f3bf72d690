"""``amictl notify PLAN``: one digest per owner of what the plan will do to their images and
when each stage falls due, with the command that opts an image out; delivered, journaled,
and each image told about tagged ``amictl:notified`` (the one decision reads that tag: a
deregister stage is due only once its notice was delivered and ``notify.before`` passed)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.session import Connector
from ..inventory.collectors import image_from_api
from ..keep.decide import STAGES
from ..model import Image, iso, parse_time
from ..policy.plan_model import Plan
from ..policy.serial import policy_from_dict
from ..state.store import Store
from ..tagnames import MARK_TAG
from .channels import DeliveryError, deliver
from .config import NotifyConfig, owner_of
from .journal import journal_notice

NOTIFIED_TAG = "amictl:notified"
RETIRING = ("mark", "deprecate", "disable", "deregister")
HOLD_DAYS = 90


@dataclass
class Item:
    image: Image
    owner: str | None
    owner_from: str
    stages: list[tuple[str, str]]  # (stage, when it falls due: ISO time)

    def line(self) -> str:
        img = self.image
        label = " ".join(x for x in (img.family, img.version) if x) or img.name
        due = "; ".join(f"{s} {w}" for s, w in self.stages)
        return f"- {img.image_id} {label} ({img.account}/{img.region}): {due}"

    def opt_out(self, now: dt.datetime) -> str:
        until = (now + dt.timedelta(days=HOLD_DAYS)).date().isoformat()
        return (
            f"  amictl tag {self.image.image_id} retain-until={until} "
            f'hold-reason="WHY" --region {self.image.region}'
        )


@dataclass
class Digest:
    owner: str | None
    items: list[Item]
    channel: str = ""
    target: str = ""
    result: str = "planned"  # planned | delivered | failed | no-contact
    error: str = ""
    subject: str = ""
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "channel": self.channel,
            "target": self.target,
            "images": [i.image.image_id for i in self.items],
            "result": self.result,
            "error": self.error,
            "text": self.text,
        }


@dataclass
class NoticeRun:
    checksum: str
    digests: list[Digest] = field(default_factory=list)

    @property
    def failed(self) -> list[Digest]:
        return [d for d in self.digests if d.result in ("failed", "no-contact")]


def _stages(
    plan: Plan, img: Image, now: dt.datetime, before: dt.timedelta | None
) -> list[tuple[str, str]]:
    policy = policy_from_dict(plan.policy, plan.checksum)
    rule_name = next((d.rule for d in plan.decisions if d.image_id == img.image_id), None)
    rule = next((r for r in policy.rules if r.name == rule_name), None)
    since = parse_time(img.tags.get(MARK_TAG)) or now
    out = []
    for stage in STAGES:
        delay = getattr(rule.retire, stage) if rule else None
        if delay is None:
            continue
        when = max(since + delay, now)
        if stage == "deregister" and before is not None:
            when = max(when, now + before)
        out.append((stage, iso(when) or ""))
    return out


def _read_images(conn: Connector, plan: Plan, roles: dict[str, str | None]) -> list[Image]:
    """The plan's retiring images as they are now (tags: owner, mark, notified)."""
    wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in plan.actions:
        if a.type in RETIRING and a.image_id:
            wanted[(a.account, a.region)].add(a.image_id)
    out: list[Image] = []
    for (account, region), ids in sorted(wanted.items()):
        ec2 = conn.client("ec2", region, roles.get(account))
        resp = ec2.describe_images(
            ImageIds=sorted(ids), IncludeDisabled=True, IncludeDeprecated=True
        )
        out.extend(image_from_api(d, account, region) for d in resp.get("Images", []))
    return out


def _text(plan: Plan, owner: str | None, items: list[Item], now: dt.datetime) -> tuple[str, str]:
    name = plan.policy.get("name", "policy")
    subject = f"amictl: {len(items)} of your images will be retired (policy {name})"
    lines = [
        f"Plan {plan.checksum[:12]} of policy {name} retires these images of {owner}:",
        *(i.line() for i in items),
        "",
        f"To keep one, hold it (the hold ends on its date, {HOLD_DAYS} days here; "
        "`amictl explain` shows it):",
        *(i.opt_out(now) for i in items),
    ]
    return subject, "\n".join(lines)


def notify(
    conn: Connector,
    store: Store,
    plan: Plan,
    config: NotifyConfig,
    family_owners: dict[str, str],
    now: dt.datetime,
    *,
    dry_run: bool = False,
) -> NoticeRun:
    """One digest per owner of the plan's retiring images not notified yet."""
    policy = policy_from_dict(plan.policy, plan.checksum)
    before = policy.notify_before
    roles = {t.account: t.role_arn for t in conn.targets()}
    groups: dict[str | None, list[Item]] = defaultdict(list)
    for img in _read_images(conn, plan, roles):
        if NOTIFIED_TAG in img.tags:
            continue  # told already; the decision counts from that notice
        img.family = next((d.family for d in plan.decisions if d.image_id == img.image_id), None)
        img.version = next((d.version for d in plan.decisions if d.image_id == img.image_id), None)
        owner, src = owner_of(img, config, family_owners)
        groups[owner].append(Item(img, owner, src, _stages(plan, img, now, before)))
    run = NoticeRun(plan.checksum)
    role = next(iter(roles.values()), None)
    for owner, items in sorted(groups.items(), key=lambda kv: kv[0] or ""):
        d = Digest(owner, items)
        d.subject, d.text = _text(plan, owner, items, now)
        contact = config.contact(owner) if owner else None
        run.digests.append(d)
        if contact is None:
            d.result, d.error = "no-contact", f"no contact for owner {owner!r} in {config.path}"
        else:
            d.channel, d.target = contact.channel, contact.target
            if dry_run:
                continue
            payload = {
                "owner": owner,
                "plan": plan.checksum,
                "images": [i.image.image_id for i in items],
            }
            try:
                deliver(conn, config, contact, d.subject, d.text, payload, role)
                d.result = "delivered"
            except DeliveryError as exc:
                d.result, d.error = "failed", str(exc)
        if dry_run:
            continue
        if d.result == "delivered":
            _tag_notified(conn, items, roles, now)
        journal_notice(store, plan.checksum, d, now)
    return run


def _tag_notified(
    conn: Connector, items: list[Item], roles: dict[str, str | None], now: dt.datetime
) -> None:
    by_region: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i in items:
        by_region[(i.image.account, i.image.region)].append(i.image.image_id)
    for (account, region), ids in by_region.items():
        ec2 = conn.client("ec2", region, roles.get(account))
        # not tagged: the stage keeps waiting (the journal says it was delivered)
        with contextlib.suppress(ClientError, BotoCoreError):
            ec2.create_tags(Resources=ids, Tags=[{"Key": NOTIFIED_TAG, "Value": iso(now) or ""}])
