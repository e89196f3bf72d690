"""``amictl stale``: what upkeep is due, from an inventory (plus a few live look-ups).

Three findings, one row each:

* ``old``: the family's newest version (per account and region) is older than N days;
* ``base-moved``: the base the newest version was built from has a newer image now:
  its recorded source (``amictl:source``, written by ``bake``: a catalog base or
  FAMILY@CHANNEL) resolves to another image today, or, without that tag, its parent
  image belongs to a family that has a newer version in the same account and region;
* ``parent-retired``: an image a release channel points at was built from an image that
  is deprecated, disabled or gone (deregistered).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from ..aws.session import Connector, Target
from ..distribute.common import describe_image
from ..errors import AmictlError
from ..inventory.collectors import channel_of_parameter
from ..model import Image, Inventory, iso, parse_time, version_key
from ..tagnames import BAKE_STATUS_TAG, TESTED
from ..tagnames import UNUSABLE_BAKE_STATUSES as UNUSABLE
from .bake import (
    RECIPE_HASH_TAG,
    SOURCE_REF_TAG,
    image_tags,
    resolve_source_ref,
)
from .create import family_images
from .recipe import Recipe

PERMISSIONS = frozenset({"ec2:DescribeImages", "ssm:GetParameter"})
KINDS = ("old", "base-moved", "parent-retired")


def _newest(images: list[Image]) -> Image:
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return max(
        images, key=lambda i: (i.created_at or epoch, version_key(i.version or ""), i.image_id)
    )


def _row(img: Image, kind: str, detail: str, now: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {
        "family": img.family,
        "kind": kind,
        "account": img.account,
        "region": img.region,
        "image_id": img.image_id,
        "version": img.version,
        "age_days": (now - img.created_at).days if img.created_at else None,
        "detail": detail,
        **extra,
    }


class _Live:
    """Live look-ups, cached: what a recorded source resolves to today, parents' states."""

    def __init__(self, conn: Connector | None, roles: dict[str, str | None]) -> None:
        self.conn = conn
        self.roles = roles
        self.cache: dict[tuple[str, str, str], Any] = {}

    def target(self, img: Image) -> Target:
        return Target(img.account, img.region, self.roles.get(img.account))

    def source_now(self, img: Image, ref: str) -> str | None:
        key = (img.account, img.region, ref)
        if key not in self.cache:
            self.cache[key] = self._resolve(img, ref)
        return self.cache[key]  # type: ignore[no-any-return]

    def _resolve(self, img: Image, ref: str) -> str | None:
        if self.conn is None:
            return None
        try:
            return resolve_source_ref(self.conn, self.target(img), ref).image_id
        except AmictlError:
            return None

    def image(self, img: Image, image_id: str) -> dict[str, Any] | None:
        key = (img.account, img.region, image_id)
        if key not in self.cache:
            data = None
            if self.conn is not None:
                t = self.target(img)
                ec2 = self.conn.client("ec2", t.region, t.role_arn)
                data = describe_image(ec2, image_id, t.region)
            self.cache[key] = data or {}
        return self.cache[key] or None


def find_stale(
    inv: Inventory,
    now: dt.datetime,
    max_age_days: float,
    conn: Connector | None = None,
    families: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Every finding (see the module doc), by family, kind and region."""
    roles = {t.account: t.role_arn for t in (conn.targets() if conn else [])}
    live = _Live(conn, roles)
    groups: dict[tuple[str, str, str], list[Image]] = defaultdict(list)
    for img in inv.images:
        if img.tags.get(BAKE_STATUS_TAG) in UNUSABLE:
            continue  # not a version anyone should use
        if img.owned and img.family and (not families or img.family in families):
            groups[(img.family, img.account, img.region)].append(img)
    rows: list[dict[str, Any]] = []
    for _key, imgs in sorted(groups.items()):
        newest = _newest(imgs)
        if newest.created_at and (now - newest.created_at).total_seconds() / 86400 > max_age_days:
            rows.append(
                _row(
                    newest,
                    "old",
                    f"newest version {newest.version} is {(now - newest.created_at).days} days "
                    f"old (more than {max_age_days:g})",
                    now,
                )
            )
        moved = _base_moved(inv, newest, live)
        if moved:
            rows.append(_row(newest, "base-moved", moved[0], now, newer_base=moved[1]))
    rows.extend(_parent_retired(inv, now, live, families))
    return rows


def _base_moved(inv: Inventory, img: Image, live: _Live) -> tuple[str, str] | None:
    parent = img.source_image_id
    ref = img.tags.get(SOURCE_REF_TAG)
    if ref and parent:
        now_id = live.source_now(img, ref)
        if now_id and now_id != parent:
            return (
                f"its base {ref} is {now_id} now; version {img.version} was built from {parent}",
                now_id,
            )
        return None
    if not parent:
        return None
    p = inv.by_id.get(parent)
    if p is None or not p.family or p.family == img.family:
        # a parent of the image's own family (`create from-instance` of an instance that
        # runs an older version): the family's newer versions are the image itself
        return None
    siblings = [
        i
        for i in inv.images
        if i.family == p.family and i.account == p.account and i.region == p.region
        and i.state == "available" and i.image_id != img.image_id
    ]  # fmt: skip
    top = _newest(siblings) if siblings else p
    if top.image_id != parent and version_key(top.version or "") > version_key(p.version or ""):
        return (
            f"its parent {parent} ({p.family} {p.version}) has a newer version: "
            f"{top.version} ({top.image_id})",
            top.image_id,
        )
    return None


def _parent_retired(
    inv: Inventory, now: dt.datetime, live: _Live, families: list[str] | None
) -> list[dict[str, Any]]:
    rows = []
    seen: set[str] = set()
    for ref in inv.references:
        if ref.kind != "channel" or ref.image_id in seen:
            continue
        img = inv.by_id.get(ref.image_id)
        if img is None or not img.source_image_id:
            continue
        if families and img.family not in families:
            continue
        seen.add(img.image_id)
        chan = channel_of_parameter(ref.id)
        channels = sorted(
            f"{c[0]}@{c[1]}"
            for r in inv.refs(img.image_id)
            if r.kind == "channel" and (c := channel_of_parameter(r.id))
        ) or ([f"{chan[0]}@{chan[1]}"] if chan else [ref.id])
        parent_id = img.source_image_id
        parent = inv.by_id.get(parent_id)
        why = None
        if parent is not None:
            if parent.state == "disabled":
                why = "disabled"
            elif parent.deprecated_at(now):
                why = f"deprecated since {iso(parent.deprecation_time)}"
        else:
            data = live.image(img, parent_id)
            if data is None:
                why = "gone (deregistered, or not visible to this account)"
            elif data.get("State") == "disabled":
                why = "disabled"
            else:
                dep = parse_time(data.get("DeprecationTime"))
                if dep is not None and dep <= now:
                    why = f"deprecated since {iso(dep)}"
        if why:
            rows.append(
                _row(
                    img,
                    "parent-retired",
                    f"in channel {', '.join(channels)}; its parent {parent_id} is {why}",
                    now,
                    channels=channels,
                )
            )
    return rows


# ---------------------------------------------------------------- bake --if-stale


def stale_reason(
    conn: Connector,
    target: Target,
    recipe: Recipe,
    source_image_id: str,
    max_age_days: float | None,
    now: dt.datetime | None = None,
) -> str | None:
    """Why the family needs a bake (None: it does not): no successful bake yet, the
    source image changed since the last one, or the newest version is too old."""
    now = now or dt.datetime.now(dt.UTC)
    ec2 = conn.client("ec2", target.region, target.role_arn)
    images = family_images(ec2, target, recipe.family)
    tested = [i for i in images if image_tags(i).get(BAKE_STATUS_TAG) == TESTED]
    if not tested:
        return f"no successful bake of {recipe.family} in {target.region} yet"
    last = max(tested, key=lambda i: (i.get("CreationDate") or "", i["ImageId"]))
    before = image_tags(last).get("amictl:source-image")
    if before != source_image_id:
        return (
            f"the source {recipe.source_ref} moved: {before} (baked into {last['ImageId']}) "
            f"-> {source_image_id}"
        )
    if recipe.sha256 and image_tags(last).get(RECIPE_HASH_TAG) != recipe.sha256:
        return f"the recipe changed since {last['ImageId']} was baked"
    if max_age_days is not None:
        usable = [i for i in images if image_tags(i).get(BAKE_STATUS_TAG) not in UNUSABLE]
        newest = max((i.get("CreationDate") or "" for i in usable), default="")
        created = dt.datetime.fromisoformat(newest.replace("Z", "+00:00")) if newest else None
        if created is not None:
            age = (now - created).total_seconds() / 86400
            if age > max_age_days:
                return f"the newest version is {age:.1f} days old (max {max_age_days:g})"
    return None
