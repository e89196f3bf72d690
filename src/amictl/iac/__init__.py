"""A team's infrastructure code as a launcher (issue 26): Terraform (``.tf``, state),
CloudFormation / SAM templates and Packer templates, read from files, directories or git
checkouts the user names (``--iac PATH`` on ``inventory``, ``plan`` and ``refs``; the
policy's ``iac:`` key), parsed with python-hcl2 and cfn-lint's decoder.

Each literal image id, SSM parameter (channel) name and floating lookup in them becomes
a reference of kind ``iac`` (docs/iac.md). A file that cannot be read or parsed is bad
input (:class:`IacError`, exit 2): nothing is planned. ``apply`` re-reads the paths the
plan's (signed) policy carries before each batch; there an unreadable file makes the
view incomplete, so nothing is retired.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..model import Inventory, Reference, SliceStatus
from .files import read_paths
from .findings import IacError
from .resolve import IAC_KIND, references

__all__ = ["IAC_KIND", "IacError", "IacRead", "add_iac_references", "iac_unreadable", "read_iac"]


@dataclass
class IacRead:
    references: list[Reference] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    paths: tuple[str, ...] = ()


def read_iac(
    paths: tuple[str, ...] | list[str], inv: Inventory, now: dt.datetime | None = None
) -> IacRead:
    """The references the code at ``paths`` makes to the inventory's images (raises
    :class:`IacError` when a file cannot be read or parsed)."""
    if not paths:
        return IacRead()
    found = read_paths(list(paths))
    refs, warnings = references(found, inv, now or dt.datetime.now(dt.UTC))
    return IacRead(refs, warnings, found.files, tuple(paths))


def add_iac_references(inv: Inventory, paths: tuple[str, ...] | list[str]) -> IacRead:
    """Read the code and add its references to ``inv`` (each one once)."""
    got = read_iac(paths, inv)
    if got.references:
        have = {(r.image_id, r.kind, r.id, r.detail) for r in inv.references}
        new = [r for r in got.references if (r.image_id, r.kind, r.id, r.detail) not in have]
        inv.references.extend(dict.fromkeys(new))
        inv.references.sort(key=lambda r: (r.image_id, r.kind, r.id))
        inv.facts_changed()
    return got


def iac_unreadable(inv: Inventory, account: str, region: str, err: IacError) -> None:
    """Apply's live view when the code cannot be read: the (account, region) is incomplete
    (kind ``iac``), so the one decision retires nothing there."""
    inv.merge(
        Inventory(
            slices=[SliceStatus(account, region, IAC_KIND, False, 0, "IacUnreadable", err.message)]
        )
    )
