"""The owner column of ``ls``, ``show`` and ``plan`` (issue 29): the owner tag (key
``AMICTL_OWNER_TAG``, default ``owner``), else the family's owner in the conventions file
(``amictl-conventions.yaml`` in the working directory, when present), else ``AMICTL_OWNER``
(the account's default contact). ``notify`` takes the same from its configuration file."""

from __future__ import annotations

import os
from typing import Any

from .. import conventions
from ..model import Image
from ..notify.config import NotifyConfig, owner_of


def _setup() -> tuple[NotifyConfig, dict[str, str]]:
    cfg = NotifyConfig(
        owner_tag=os.environ.get("AMICTL_OWNER_TAG") or "owner",
        default_contact=os.environ.get("AMICTL_OWNER") or None,
    )
    owners: dict[str, str] = {}
    if os.path.exists(conventions.DEFAULT_FILE):
        owners = conventions.load(None).owners
    return cfg, owners


def owner_column(images: list[Image], rows: list[dict[str, Any]]) -> None:
    """Set ``owner`` on each row (rows and images in the same order, or keyed by image id)."""
    cfg, owners = _setup()
    by_id = {i.image_id: i for i in images}
    for row in rows:
        img = by_id.get(str(row.get("image_id")))
        row["owner"] = owner_of(img, cfg, owners)[0] if img is not None else None
