"""Parse and validate a policy: every error names file:line, the key, and what was expected."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import PurePath
from typing import Any

from ..durations import parse_duration
from ..model import FamilyRule
from ..yamlpos import Positions, loads, read_text
from .model import Hold, Keep, Orphaned, Policy, Retire, Rule, Select
from .schema import FAMILIES, KEEP, OPTIONS, TOP, Key

REGION_RE = re.compile(r"^[a-z*?]{2}[a-z0-9*?-]*$")
POLICY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Reader:
    def __init__(self, pos: Positions) -> None:
        self.pos = pos

    def obj(self, data: Any, key: Key, path: tuple[Any, ...]) -> dict[str, Any]:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise self.pos.error(path, f"expected a mapping ({key.help.rstrip('.')})")
        allowed = {c.name.rstrip("[]") for c in key.children}
        for k in data:
            if k not in allowed:
                raise self.pos.error(
                    (*path, k),
                    f"unknown key in {key.name.rstrip('[]')}",
                    hint="allowed: " + ", ".join(sorted(allowed)),
                )
        out: dict[str, Any] = {}
        for c in key.children:
            name = c.name.rstrip("[]")
            if name not in data or data[name] is None:
                if c.required:
                    raise self.pos.error(path, f"missing required key '{name}'")
                out[name] = c.default if c.type not in ("object", "object-list") else None
                continue
            out[name] = self.value(data[name], c, (*path, name))
        return out

    def value(self, v: Any, key: Key, path: tuple[Any, ...]) -> Any:
        t = key.type
        if t == "object":
            return self.obj(v, key, path)
        if t == "object-list":
            if not isinstance(v, list):
                raise self.pos.error(path, "expected a list")
            return [self.obj(item, key.children[0], (*path, i)) for i, item in enumerate(v)]
        if t == "str":
            if not isinstance(v, str):
                raise self.pos.error(path, f"expected a string, got {type(v).__name__}")
            return v
        if t == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                raise self.pos.error(path, f"expected a whole number, got {v!r}")
            if key.minimum is not None and v < key.minimum:
                raise self.pos.error(path, f"must be at least {key.minimum}")
            return v
        if t == "bool":
            if not isinstance(v, bool):
                raise self.pos.error(path, f"expected true or false, got {v!r}")
            return v
        if t == "duration":
            try:
                return parse_duration(str(v))
            except ValueError as exc:
                raise self.pos.error(path, str(exc)) from None
        if t == "enum":
            if v not in key.enum:
                raise self.pos.error(path, f"expected one of {', '.join(key.enum)}, got {v!r}")
            return v
        if t == "glob-list":
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or not v:
                raise self.pos.error(path, "expected a non-empty list of strings")
            return tuple(v)
        if t == "str-map":
            if not isinstance(v, dict):
                raise self.pos.error(path, "expected a mapping of tag keys to values")
            out = []
            for k2, v2 in v.items():
                if isinstance(v2, dict | list) or v2 is None:
                    raise self.pos.error((*path, k2), "expected a plain value")
                out.append((str(k2), str(v2).lower() if isinstance(v2, bool) else str(v2)))
            return tuple(sorted(out))
        raise AssertionError(t)


def parse_policy_data(data: Any, pos: Positions, text: str = "") -> Policy:
    r = _Reader(pos)
    if data is None:
        raise pos.error((), "the policy is empty", hint="start with `format: 1` and `rules:`")
    top = r.obj(data, TOP, ())
    if top["format"] != 1:
        raise pos.error(("format",), "only format 1 is supported")
    name = top["name"]
    if name is None:
        name = PurePath(pos.file).stem if pos.file and not pos.file.startswith("<") else "policy"
        if not POLICY_NAME_RE.match(name):
            raise pos.error(
                (),
                f"the file's stem {name!r} cannot serve as the policy's name",
                hint="give the policy a `name:` (letters, digits, . _ -; at most 64)",
            )
    elif not POLICY_NAME_RE.match(name):
        raise pos.error(
            ("name",),
            f"{name!r} is not a policy name: letters, digits, '.', '_' and '-', at most 64",
        )

    fam = r.obj(data.get("families"), FAMILIES, ("families",))
    try:
        rx = re.compile(fam["name_pattern"])
    except re.error as exc:
        raise pos.error(
            ("families", "name_pattern"), f"not a valid regular expression: {exc}"
        ) from None
    if not {"family", "version"} <= set(rx.groupindex):
        raise pos.error(
            ("families", "name_pattern"),
            "must define the named groups 'family' and 'version'",
            hint=r"e.g. '^(?P<family>[a-z-]+)-v?(?P<version>\d+(\.\d+)*)$'",
        )
    families = FamilyRule(
        tag=fam["tag"], version_tag=fam["version_tag"], name_pattern=fam["name_pattern"]
    )

    holds = []
    for i, h in enumerate(top["holds"] or []):
        path = ("holds", i)
        given = [k for k in ("tag", "deregistration_protection") if h[k] is not None]
        if len(given) != 1:
            raise pos.error(path, "a hold has exactly one of tag or deregistration_protection")
        if h["until"] and not h["tag"]:
            raise pos.error((*path, "until"), "until: value needs a tag")
        if h["deregistration_protection"] is False:
            raise pos.error((*path, "deregistration_protection"), "only `true` makes sense here")
        holds.append(
            Hold(
                tag=h["tag"],
                until_value=h["until"] == "value",
                deregistration_protection=bool(h["deregistration_protection"]),
                line=pos.line(path),
            )
        )

    rules = []
    names: set[str] = set()
    for i, raw in enumerate(top["rules"] or []):
        path = ("rules", i)
        if raw["name"] in names:
            raise pos.error((*path, "name"), f"duplicate rule name {raw['name']!r}")
        names.add(raw["name"])
        if raw["select"] is None:
            raise pos.error(
                path,
                "missing required key 'select'",
                hint="select: {families: ['*']} selects every family",
            )
        sel = raw["select"]
        keep = raw["keep"] or r.obj(None, KEEP, (*path, "keep"))
        ret = raw["retire"]
        if ret is None:
            raise pos.error(
                path, "missing required key 'retire'", hint="e.g. retire: {deregister: 0d}"
            )
        if ret["deprecate"] is None and ret["disable"] is None and ret["deregister"] is None:
            raise pos.error(
                (*path, "retire"), "give at least one stage: deprecate, disable or deregister"
            )
        order = [(k, ret[k]) for k in ("deprecate", "disable", "deregister") if ret[k] is not None]
        for (k1, d1), (k2, d2) in zip(order, order[1:], strict=False):
            if d2 < d1:
                raise pos.error(
                    (*path, "retire", k2),
                    f"{k2} ({d2.days}d) comes before {k1} ({d1.days}d): stages must not go backwards",
                )
        for j, reg in enumerate(sel["regions"] or ()):
            if not REGION_RE.match(reg):
                raise pos.error(
                    (*path, "select", "regions", j), f"not a region name or glob: {reg!r}"
                )
        rules.append(
            Rule(
                name=raw["name"],
                select=Select(
                    families=sel["families"],
                    name=sel["name"],
                    tags=sel["tags"] or (),
                    regions=sel["regions"],
                    older_than=sel["older_than"],
                    unfamilied=bool(sel["unfamilied"]),
                ),
                keep=Keep(
                    latest=keep["latest"],
                    newer_than=keep["newer_than"],
                    in_use=keep["in_use"],
                    launched_within=keep["launched_within"],
                    shared=keep["shared"],
                    channels=keep["channels"],
                    ancestors=keep["ancestors"],
                    tags=keep["tags"] or (),
                ),
                retire=Retire(
                    deprecate=ret["deprecate"],
                    disable=ret["disable"],
                    deregister=ret["deregister"],
                    snapshots=ret["snapshots"],
                ),
                line=pos.line(path),
            )
        )

    orphaned = None
    snaps = top["snapshots"]
    if snaps and snaps.get("orphaned") is not None:
        o = snaps["orphaned"]
        orphaned = Orphaned(
            only_from_images=o["only_from_images"],
            older_than=o["older_than"]
            if isinstance(o["older_than"], dt.timedelta)
            else parse_duration(o["older_than"]),
            action=o["action"],
        )
    opts = top["options"] or r.obj(None, OPTIONS, ("options",))
    prices = []
    for k, v in opts["prices"] or ():
        try:
            prices.append((k, float(v)))
        except ValueError:
            raise pos.error(
                ("options", "prices", k), f"expected a price in USD per GiB-month, got {v!r}"
            ) from None
        if k not in ("standard", "archive"):
            raise pos.error(("options", "prices", k), "expected standard or archive")
    return Policy(
        name=name,
        families=families,
        holds=tuple(holds),
        rules=tuple(rules),
        orphaned=orphaned,
        require_recycle_bin=bool(opts["require_recycle_bin"]),
        prices=tuple(prices),
        path=pos.file,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def parse_policy_text(text: str, file: str = "<policy>") -> Policy:
    data, pos = loads(text, file)
    return parse_policy_data(data, pos, text)


def load_policy(path: str) -> Policy:
    return parse_policy_text(read_text(path, "policy"), path)
