"""Floating image lookups evaluated against the inventory's images.

``data "aws_ami"`` (Terraform) and Packer's ``source_ami_filter`` / ``data "amazon-ami"``
pick, at every run, the NEWEST image matching their filters: such a lookup keeps that image.
amictl evaluates this subset (docs/iac.md):

- ``owners``: ``self`` and 12-digit account ids (an alias such as ``amazon`` matches no
  image amictl could retire); absent = any owner;
- filters ``name``, ``description``, ``image-id``, ``architecture``, ``state``,
  ``owner-id``, ``root-device-type``, ``platform``, ``is-public``, ``image-type``,
  ``tag:KEY`` and ``tag-key``, each value with EC2's ``*`` and ``?`` wildcards (values ORed);
- ``name_regex`` (searched in the name, as Terraform does).

What it cannot evaluate (another filter, ``executable_users``, a value holding a
``${...}`` or ``{{...}}`` expression, a regex that does not compile) never makes it keep
fewer: the lookup then keeps EVERY image the rest of it matches, and a warning says why.
A lookup without ``most_recent = true`` also keeps every image it matches (Terraform fails
unless exactly one does). The newest is taken per (account, region) — the code's own
provider region is not read — and both the newest match and the newest match that is
available and not deprecated are kept (Terraform skips deprecated and disabled images by
default, so once amictl deprecates the newest, the lookup falls back to the next).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from ..model import Image
from .findings import Floating, Where

ACCOUNT_RE = re.compile(r"^\d{12}$")
GETTERS: dict[str, Callable[[Image], str | None]] = {
    "name": lambda i: i.name,
    "description": lambda i: i.description,
    "image-id": lambda i: i.image_id,
    "architecture": lambda i: i.architecture,
    "state": lambda i: i.state,
    "owner-id": lambda i: i.owner_id,
    "root-device-type": lambda i: i.root_device_type,
    "platform": lambda i: "windows" if i.platform == "windows" else None,
    "is-public": lambda i: "true" if i.public else "false",
    "image-type": lambda i: "machine",
}
# Keys of a lookup that do not restrict which images it matches.
NEUTRAL = {
    "most_recent",
    "owners",
    "filter",
    "filters",
    "name_regex",
    "include_deprecated",
    "provider",
    "region",
    "count",
    "for_each",
    "depends_on",
    "lifecycle",
    "tags",
    "sort_ascending",  # aws_ami_ids: the order of its list, not which images
    "__is_block__",
}


def _expr(value: Any) -> bool:
    return isinstance(value, str) and ("${" in value or "{{" in value)


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    return None


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def lookup(body: dict[str, Any], where: Where, source: str) -> Floating:
    """A :class:`Floating` from a parsed ``data "aws_ami"`` body (``filter`` blocks of
    ``name``/``values``) or a Packer filter (``filters`` map of name to value)."""
    unsupported: list[str] = []
    filters: list[tuple[str, tuple[str, ...]]] = []
    raw_blocks = body.get("filter") or []
    if isinstance(raw_blocks, dict):
        raw_blocks = [raw_blocks]
    for blk in raw_blocks if isinstance(raw_blocks, list) else []:
        name, values = blk.get("name") if isinstance(blk, dict) else None, None
        if isinstance(blk, dict):
            values = _strings(blk.get("values"))
        if not isinstance(name, str) or values is None:
            unsupported.append(f"filter {blk!r}")
            continue
        filters.append((name, values))
    packer = body.get("filters")
    if isinstance(packer, dict):
        for k, v in packer.items():
            values = _strings(v)
            if values is None:
                unsupported.append(f"filter {k}")
                continue
            filters.append((str(k).strip('"'), values))
    elif packer is not None:
        unsupported.append(f"filters {packer!r}")
    for k in body:
        if k not in NEUTRAL:
            unsupported.append(k)
    owners = _strings(body.get("owners")) if body.get("owners") is not None else None
    if body.get("owners") is not None and owners is None:
        unsupported.append("owners")
    regex = body.get("name_regex")
    if regex is not None and not isinstance(regex, str):
        unsupported.append("name_regex")
        regex = None
    most = body.get("most_recent")
    return Floating(
        where,
        source,
        most_recent=_bool(most) and not _expr(most),
        owners=owners,
        filters=tuple(filters),
        name_regex=regex,
        unsupported=tuple(unsupported),
    )


def _glob(pattern: str) -> re.Pattern[str]:
    """EC2's filter wildcards: ``*`` any run, ``?`` one character; nothing else special."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.S,
    )


def _filter(name: str, values: tuple[str, ...]) -> Callable[[Image], bool] | None:
    """The filter as a predicate; None when amictl cannot evaluate it."""
    if any(_expr(v) for v in values):
        return None
    globs = [_glob(v) for v in values]

    def any_match(value: str | None) -> bool:
        return value is not None and any(g.fullmatch(value) for g in globs)

    if name.startswith("tag:"):
        key = name[4:]
        return lambda i: any_match(i.tags.get(key))
    if name == "tag-key":
        return lambda i: any(any_match(k) for k in i.tags)
    getter = GETTERS.get(name)
    if getter is None:
        return None
    return lambda i: any_match(getter(i))


def _owner(owners: tuple[str, ...] | None) -> tuple[Callable[[Image], bool], list[str]]:
    if owners is None or any(_expr(o) for o in owners):
        return (lambda i: True), ([] if owners is None else ["owners (an expression)"])
    ids = {o for o in owners if ACCOUNT_RE.match(o)}
    self_ = "self" in owners
    return (lambda i: (self_ and i.owned) or i.owner_id in ids), []


def evaluate(
    f: Floating, images: Iterable[Image], now: dt.datetime
) -> tuple[list[Image], list[str], str]:
    """The images the lookup keeps, what could not be evaluated, and how they were chosen."""
    unsupported = list(f.unsupported)
    owner_ok, bad_owner = _owner(f.owners)
    unsupported += bad_owner
    preds: list[Callable[[Image], bool]] = [owner_ok]
    for name, values in f.filters:
        p = _filter(name, values)
        if p is None:
            unsupported.append(f"filter {name}={','.join(values)}")
        else:
            preds.append(p)
    if f.name_regex is not None:
        try:
            if _expr(f.name_regex):
                raise re.error("an expression")
            rx = re.compile(f.name_regex)
            preds.append(lambda i: rx.search(i.name or "") is not None)
        except re.error:
            unsupported.append(f"name_regex {f.name_regex!r}")
    matched = [i for i in images if i.owned and all(p(i) for p in preds)]
    if unsupported or not f.most_recent:
        why = (
            f"every matching image ({', '.join(unsupported)} not evaluated)"
            if unsupported
            else "every matching image (no most_recent)"
        )
        return matched, unsupported, why
    groups: dict[tuple[str, str], list[Image]] = defaultdict(list)
    for img in matched:
        groups[(img.account, img.region)].append(img)
    kept: list[Image] = []
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for imgs in groups.values():
        for pool in (
            imgs,
            [i for i in imgs if i.state == "available" and not i.deprecated_at(now)],
        ):
            if pool:
                newest = max(i.created_at or epoch for i in pool)
                kept.extend(i for i in pool if (i.created_at or epoch) == newest)
    return list({i.image_id: i for i in kept}.values()), [], "the newest matching image"
