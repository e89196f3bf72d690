"""What the other services' finders share: the AMI ids a parsed document names, and one
reference per (resource, image) whatever the number of places that name it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ...model import Reference

AMI_ID_RE = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
"""An image id as AWS writes it (8 or 17 hexadecimal digits), matched against whole
string values of a parsed document, never against its text."""

MAX_PLACES = 3  # places named in a reference's detail; the rest are counted


def is_ami_id(value: Any) -> bool:
    return isinstance(value, str) and AMI_ID_RE.match(value) is not None


def ami_ids_in(tree: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, image id) of every string value of a parsed JSON/YAML tree that is an image
    id; keys are walked too (a mapping keyed by image id names it)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            where = f"{path}.{key}" if path else str(key)
            if is_ami_id(key):
                yield where, str(key)
            yield from ami_ids_in(value, where)
    elif isinstance(tree, list | tuple):
        for i, value in enumerate(tree):
            yield from ami_ids_in(value, f"{path}[{i}]")
    elif is_ami_id(tree):
        yield path, str(tree)


def references(
    kind: str,
    resource_id: str,
    label: str,
    places: list[tuple[str, str]],
    account: str,
    region: str,
) -> list[Reference]:
    """One reference per image named in ``places`` ((where, image id) pairs): its detail
    is ``label`` and where the resource names it."""
    by_image: dict[str, list[str]] = {}
    for where, image_id in places:
        seen = by_image.setdefault(image_id, [])
        if where not in seen:
            seen.append(where)
    out = []
    for image_id, wheres in by_image.items():
        shown = ", ".join(wheres[:MAX_PLACES])
        more = f" and {len(wheres) - MAX_PLACES} more" if len(wheres) > MAX_PLACES else ""
        out.append(
            Reference(kind, resource_id, f"{label}: {shown}{more}", image_id, account, region)
        )
    return out
