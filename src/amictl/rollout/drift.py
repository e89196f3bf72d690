"""Drift: instances, Auto Scaling groups and launch-template versions whose image is an
older version of its family than the family's channel (issue 21).

From an inventory (live or stored): a channel is a ``channel`` reference
(``/amictl/channels/<family>/<channel>``) of an account/region; everything else in the
same account/region that launches an image of the same family whose version is lower
(``model.version_key``) is behind it. ``versions_behind`` counts the family's versions in
(reference's version, channel's version], ``days_behind`` the days between the two images'
creation. Launch-template versions count when they are the template's default (other
versions are history, launched only if something names them: those are ASG references).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from ..inventory.collectors import channel_of_parameter
from ..model import FamilyRule, Inventory, version_key

KINDS = ("instance", "auto-scaling-group", "launch-template-version")


DEFAULT_VERSION = re.compile(r" version \d+ \(default(, latest)?\)$")  # collectors' detail


def _counts(ref_kind: str, detail: str) -> bool:
    if ref_kind == "launch-template-version":
        return DEFAULT_VERSION.search(detail) is not None
    return ref_kind in KINDS


def not_read(inv: Inventory) -> list[str]:
    """What the inventory could not read (``account/region: kind not read (code)``): drift
    there is unknown, never "0 behind" (``drift --strict`` exits 4, as ``audit`` does)."""
    return [
        f"{s.account}/{s.region}: {s.kind} not read ({s.error_code or s.error or 'error'})"
        for s in inv.incomplete_slices()
    ]


def drift(
    inv: Inventory,
    family: str | None = None,
    channel: str | None = None,
    rule: FamilyRule | None = None,
) -> list[dict[str, Any]]:
    """One group per (family, channel, account, region) with what runs behind it."""
    inv.resolve_families(rule or FamilyRule())
    by_id = inv.by_id
    # the family's distinct versions per account/region, ordered
    versions: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for im in inv.images:
        if im.family and im.version:
            versions[(im.family, im.account, im.region)].append(im.version)
    for k, vs in versions.items():
        versions[k] = sorted(set(vs), key=lambda v: (version_key(v), v))
    groups: list[dict[str, Any]] = []
    chans = [r for r in inv.references if r.kind == "channel"]
    for ch in sorted(chans, key=lambda r: (r.id, r.account, r.region)):
        fam_chan = channel_of_parameter(ch.id)
        if fam_chan is None:
            continue
        fam, chan = fam_chan
        if (family and fam != family) or (channel and chan != channel):
            continue
        target = by_id.get(ch.image_id)
        if target is None or not target.version:
            continue
        ordered = versions.get((fam, ch.account, ch.region), [])
        behind: list[dict[str, Any]] = []
        for r in inv.references:
            if r.account != ch.account or r.region != ch.region:
                continue
            if not _counts(r.kind, r.detail):
                continue
            img = by_id.get(r.image_id)
            if img is None or img.family != fam or not img.version:
                continue
            if version_key(img.version) >= version_key(target.version):
                continue
            n = sum(
                1
                for v in ordered
                if version_key(img.version) < version_key(v) <= version_key(target.version)
            )
            days = None
            if img.created_at and target.created_at:
                days = max(0, (target.created_at - img.created_at).days)
            behind.append(
                {
                    "kind": r.kind,
                    "id": r.id,
                    "detail": r.detail,
                    "image_id": img.image_id,
                    "version": img.version,
                    "versions_behind": n,
                    "days_behind": days,
                }
            )
        behind.sort(key=lambda b: (-b["versions_behind"], b["kind"], b["id"]))
        groups.append(
            {
                "family": fam,
                "channel": chan,
                "account": ch.account,
                "region": ch.region,
                "channel_image": target.image_id,
                "channel_version": target.version,
                "behind": behind,
                "max_versions_behind": max((b["versions_behind"] for b in behind), default=0),
            }
        )
    groups.sort(key=lambda g: (g["family"], g["account"], g["region"], g["channel"]))
    return groups


def rows(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows for tables and CSV: one per thing behind, with its group's keys."""
    out = []
    for g in groups:
        for b in g["behind"]:
            out.append(
                {
                    "family": g["family"],
                    "channel": g["channel"],
                    "account": g["account"],
                    "region": g["region"],
                    "channel_version": g["channel_version"],
                    **{k: v for k, v in b.items() if k != "detail"},
                }
            )
    return out


def chart_data(groups: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """family -> {"0": up to date count is not known here, "1": n, "2": n, ...}: how many
    things run 1, 2, ... versions behind (the report's drift chart)."""
    out: dict[str, dict[str, int]] = {}
    for g in groups:
        hist = out.setdefault(g["family"], {})
        for b in g["behind"]:
            key = str(b["versions_behind"])
            hist[key] = hist.get(key, 0) + 1
    return out
