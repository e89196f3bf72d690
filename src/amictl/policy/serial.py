"""A policy as plain data, for the plan body (covered by its checksum).

``apply`` never reads the policy file: the plan carries the policy's name, holds,
rules and options (policy.md, safety rule 7). ``policy_from_dict`` is strict: a plan
whose policy part is shaped wrong is bad input (exit 2) naming the key.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ..durations import parse_duration
from ..errors import InputError
from ..model import FamilyRule
from .model import Hold, Keep, Orphaned, Policy, Retire, Rule, Select
from .retain import retain_from_dict, retain_to_dict

SNAPSHOT_MODES = ("delete", "archive", "keep")
ORPHAN_ACTIONS = ("delete", "archive", "report")


def _dur(td: dt.timedelta | None) -> str | None:
    if td is None:
        return None
    hours = int(td.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def policy_to_dict(p: Policy) -> dict[str, Any]:
    """The policy's decision-relevant content, JSON-ready and deterministic."""
    return {
        "name": p.name,
        "path": p.path,
        "sha256": p.sha256,
        "families": {
            "tag": p.families.tag,
            "version_tag": p.families.version_tag,
            "name_pattern": p.families.name_pattern,
        },
        "holds": [
            {"deregistration_protection": True}
            if h.deregistration_protection
            else {"tag": h.tag, **({"until": "value"} if h.until_value else {})}
            for h in p.holds
        ],
        "rules": [
            {
                "name": r.name,
                "select": {
                    "families": list(r.select.families) if r.select.families is not None else None,
                    "name": r.select.name,
                    "tags": dict(r.select.tags),
                    "regions": list(r.select.regions) if r.select.regions is not None else None,
                    "older_than": _dur(r.select.older_than),
                    "unfamilied": r.select.unfamilied,
                    "images": list(r.select.images) if r.select.images is not None else None,
                    "managed": list(r.select.managed),
                },
                "keep": {
                    "latest": r.keep.latest,
                    "newer_than": _dur(r.keep.newer_than),
                    "in_use": r.keep.in_use,
                    "launched_within": _dur(r.keep.launched_within),
                    "shared": r.keep.shared,
                    "channels": r.keep.channels,
                    "channel_history": r.keep.channel_history,
                    "ancestors": r.keep.ancestors,
                    "tags": dict(r.keep.tags),
                },
                "retire": {
                    "deprecate": _dur(r.retire.deprecate),
                    "disable": _dur(r.retire.disable),
                    "deregister": _dur(r.retire.deregister),
                    "snapshots": r.retire.snapshots,
                },
            }
            for r in p.rules
        ],
        "snapshots": {
            "orphaned": None
            if p.orphaned is None
            else {
                "only_from_images": p.orphaned.only_from_images,
                "older_than": _dur(p.orphaned.older_than),
                "action": p.orphaned.action,
            }
        },
        "options": {
            "require_recycle_bin": p.require_recycle_bin,
            "prices": dict(p.prices),
        },
        # only when given: plans without IaC keep their earlier shape and checksum
        **({"iac": list(p.iac)} if p.iac else {}),
        # only when given: plans of policies without retain rules are unchanged
        **({"retain": retain_to_dict(p.retain)} if p.retain else {}),
        **({"notify": {"before": _dur(p.notify_before)}} if p.notify_before is not None else {}),
    }


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file

    def err(self, key: str, msg: str) -> InputError:
        return InputError(
            msg,
            file=self.file,
            key=f"policy.{key}",
            hint="the plan was edited or made by another tool: make a new plan with `amictl plan`",
        )

    def obj(self, v: Any, key: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.err(key, "expected an object")
        return v

    def str_(self, v: Any, key: str, optional: bool = False) -> Any:
        if v is None and optional:
            return None
        if not isinstance(v, str) or len(v) > 4096:
            raise self.err(key, f"expected a string, got {type(v).__name__}")
        return v

    def bool_(self, v: Any, key: str) -> bool:
        if not isinstance(v, bool):
            raise self.err(key, f"expected true or false, got {v!r}")
        return v

    def dur(self, v: Any, key: str) -> dt.timedelta | None:
        if v is None:
            return None
        try:
            return parse_duration(self.str_(v, key))
        except ValueError as exc:
            raise self.err(key, str(exc)) from None

    def strs(self, v: Any, key: str) -> tuple[str, ...] | None:
        if v is None:
            return None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.err(key, "expected a list of strings")
        return tuple(v)

    def tags(self, v: Any, key: str) -> tuple[tuple[str, str], ...]:
        if v is None:
            return ()
        d = self.obj(v, key)
        if not all(isinstance(k, str) and isinstance(x, str) for k, x in d.items()):
            raise self.err(key, "expected a mapping of strings")
        return tuple(sorted(d.items()))


def policy_from_dict(d: Any, file: str = "<plan>") -> Policy:
    """The policy a plan carries; raises InputError (exit 2) naming the key if misshapen."""
    r = _Reader(file)
    d = r.obj(d, "")
    name = r.str_(d.get("name"), "name")
    fam = r.obj(d.get("families"), "families")
    pattern = r.str_(fam.get("name_pattern"), "families.name_pattern")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise r.err("families.name_pattern", f"not a valid regular expression: {exc}") from None
    families = FamilyRule(
        tag=r.str_(fam.get("tag"), "families.tag"),
        version_tag=r.str_(fam.get("version_tag"), "families.version_tag"),
        name_pattern=pattern,
    )
    holds = []
    raw_holds = d.get("holds")
    if not isinstance(raw_holds, list):
        raise r.err("holds", "expected a list")
    for i, h in enumerate(raw_holds):
        h = r.obj(h, f"holds[{i}]")
        if h.get("deregistration_protection") is True:
            holds.append(Hold(deregistration_protection=True))
        else:
            until = h.get("until")
            if until not in (None, "value"):
                raise r.err(f"holds[{i}].until", "expected `value`")
            holds.append(Hold(tag=r.str_(h.get("tag"), f"holds[{i}].tag"), until_value=bool(until)))
    rules = []
    raw_rules = d.get("rules")
    if not isinstance(raw_rules, list):
        raise r.err("rules", "expected a list")
    for i, x in enumerate(raw_rules):
        k = f"rules[{i}]"
        x = r.obj(x, k)
        s = r.obj(x.get("select"), f"{k}.select")
        kp = r.obj(x.get("keep"), f"{k}.keep")
        rt = r.obj(x.get("retire"), f"{k}.retire")
        latest = kp.get("latest")
        if latest is not None and (
            isinstance(latest, bool) or not isinstance(latest, int) or latest < 0
        ):
            raise r.err(f"{k}.keep.latest", f"expected a whole number, got {latest!r}")
        history = kp.get("channel_history", 1)
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise r.err(f"{k}.keep.channel_history", f"expected a whole number, got {history!r}")
        mode = rt.get("snapshots")
        if mode not in SNAPSHOT_MODES:
            raise r.err(f"{k}.retire.snapshots", f"expected one of {', '.join(SNAPSHOT_MODES)}")
        rules.append(
            Rule(
                name=r.str_(x.get("name"), f"{k}.name"),
                select=Select(
                    families=r.strs(s.get("families"), f"{k}.select.families"),
                    name=r.str_(s.get("name"), f"{k}.select.name", optional=True),
                    tags=r.tags(s.get("tags"), f"{k}.select.tags"),
                    regions=r.strs(s.get("regions"), f"{k}.select.regions"),
                    older_than=r.dur(s.get("older_than"), f"{k}.select.older_than"),
                    unfamilied=r.bool_(s.get("unfamilied", False), f"{k}.select.unfamilied"),
                    images=r.strs(s.get("images"), f"{k}.select.images"),
                    managed=r.strs(s.get("managed"), f"{k}.select.managed") or (),
                ),
                keep=Keep(
                    latest=latest,
                    newer_than=r.dur(kp.get("newer_than"), f"{k}.keep.newer_than"),
                    in_use=r.bool_(kp.get("in_use", True), f"{k}.keep.in_use"),
                    launched_within=r.dur(kp.get("launched_within"), f"{k}.keep.launched_within"),
                    shared=r.bool_(kp.get("shared", True), f"{k}.keep.shared"),
                    channels=r.bool_(kp.get("channels", True), f"{k}.keep.channels"),
                    channel_history=history,
                    ancestors=r.bool_(kp.get("ancestors", True), f"{k}.keep.ancestors"),
                    tags=r.tags(kp.get("tags"), f"{k}.keep.tags"),
                ),
                retire=Retire(
                    deprecate=r.dur(rt.get("deprecate"), f"{k}.retire.deprecate"),
                    disable=r.dur(rt.get("disable"), f"{k}.retire.disable"),
                    deregister=r.dur(rt.get("deregister"), f"{k}.retire.deregister"),
                    snapshots=mode,
                ),
            )
        )
    snaps = r.obj(d.get("snapshots") or {}, "snapshots")
    orphaned = None
    o = snaps.get("orphaned")
    if o is not None:
        o = r.obj(o, "snapshots.orphaned")
        if o.get("action") not in ORPHAN_ACTIONS:
            raise r.err("snapshots.orphaned.action", f"expected one of {', '.join(ORPHAN_ACTIONS)}")
        older = r.dur(o.get("older_than"), "snapshots.orphaned.older_than")
        orphaned = Orphaned(
            only_from_images=r.bool_(
                o.get("only_from_images", True), "snapshots.orphaned.only_from_images"
            ),
            older_than=older if older is not None else dt.timedelta(days=7),
            action=o["action"],
        )
    opts = r.obj(d.get("options") or {}, "options")
    prices = r.obj(opts.get("prices") or {}, "options.prices")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in prices.values()):
        raise r.err("options.prices", "expected numbers")
    return Policy(
        name=name,
        families=families,
        holds=tuple(holds),
        rules=tuple(rules),
        orphaned=orphaned,
        require_recycle_bin=r.bool_(
            opts.get("require_recycle_bin", False), "options.require_recycle_bin"
        ),
        prices=tuple(sorted((str(k), float(v)) for k, v in prices.items())),
        path=r.str_(d.get("path", "<policy>"), "path"),
        sha256=r.str_(d.get("sha256", ""), "sha256"),
        iac=r.strs(d.get("iac", []), "iac") or (),
        retain=retain_from_dict(r, d.get("retain")),
        notify_before=r.dur(r.obj(d.get("notify") or {}, "notify").get("before"), "notify.before"),
    )
