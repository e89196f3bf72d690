"""Launch permissions where a decision needs them: read live, or reused from the state store.

AWS has no bulk call for launch permissions: DescribeImageAttribute(launchPermission) is
one call per image, and EC2 throttles it per account and region (a bucket of 100 refilled
at 20 per second), so reading all of a large fleet's takes minutes. Public images are
known in bulk from DescribeImages (``Public``); account, organization and OU shares are
read here only for the images the caller asks for (``policy.facts`` asks for the images
a plan would retire), and reused from the state store when read less than ``max_age``
ago. Reused facts are marked (``Image.lp == "cached"`` with ``lp_read_at``) and the plan
shows their age; apply re-reads every image's launch permissions live before touching it
(``apply.recheck``), so a cached fact can never make apply less careful.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import interrupts
from ..aws.session import Connector, aws_error
from ..errors import Interrupted
from ..model import Image, Inventory
from .collectors import read_launch_permissions

DEFAULT_MAX_AGE = dt.timedelta(hours=24)


@dataclass
class SharingRead:
    """What one read did: images read live, taken from the cache, and failures."""

    live: int = 0
    cached: int = 0
    errors: list[str] = field(default_factory=list)
    oldest: dt.timedelta | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "cached": self.cached,
            "failed": len(self.errors),
            "oldest_cached_seconds": int(self.oldest.total_seconds()) if self.oldest else None,
        }


def read_sharing(
    connector: Connector,
    inv: Inventory,
    images: Iterable[Image],
    *,
    roles: dict[str, str | None] | None = None,
    store: Any = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    refresh: bool = False,
    now: dt.datetime | None = None,
    workers: int = 16,
) -> SharingRead:
    """Fill ``shared_with`` (and ``public``) of the given unread images, in place.

    ``roles`` maps an account to the role ARN that reaches it (None: the caller's own).
    An image whose read fails stays ``unread``: the planner plans no destructive stage
    for it. With ``store``, fresh cached reads are reused (unless ``refresh``) and every
    live read is saved.
    """
    now = now or dt.datetime.now(dt.UTC)
    todo = [i for i in images if i.lp == "unread" and i.state != "disabled"]
    out = SharingRead()
    if not todo:
        return out
    if store is not None and not refresh:
        cached = store.cached_launch_permissions(
            [(i.account, i.region, i.image_id) for i in todo], now - max_age
        )
        rest = []
        for img in todo:
            hit = cached.get(img.image_id)
            if hit is None:
                rest.append(img)
                continue
            read_at, public, targets = hit
            img.public = img.public or public
            img.shared_with = targets
            img.lp, img.lp_read_at = "cached", read_at
            out.cached += 1
            age = now - read_at
            out.oldest = age if out.oldest is None or age > out.oldest else out.oldest
        todo = rest
    roles = roles or {}

    def read(img: Image) -> tuple[Image, tuple[bool, list[str]] | None, str | None]:
        try:
            ec2 = connector.client("ec2", img.region, roles.get(img.account))
            return img, read_launch_permissions(ec2, img.image_id), None
        except Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - the image stays unread: no destructive stage
            err = aws_error(exc, "DescribeImageAttribute", img.region)
            return img, None, f"{img.image_id}: {err.message}"

    saved: list[tuple[str, str, str, dt.datetime, bool, list[str]]] = []
    if todo:
        with interrupts.Pool(max(1, workers)) as pool:
            for img, got, error in pool.map(read, todo):
                if got is None:
                    out.errors.append(error or img.image_id)
                    continue
                public, targets = got
                img.public = img.public or public
                img.shared_with = targets
                img.lp, img.lp_read_at = "live", now
                out.live += 1
                saved.append((img.account, img.region, img.image_id, now, public, targets))
    if store is not None and saved:
        store.save_launch_permissions(saved)
    inv.facts_changed()
    return out
