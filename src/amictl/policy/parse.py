"""Parse and validate a policy: every error names file:line, the key, and what was expected."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path, PurePath
from typing import Any

from ..durations import parse_duration
from ..errors import InputError
from ..model import FamilyRule
from ..yamlpos import Positions, loads, raise_all, read_text
from .model import Hold, Keep, Orphaned, Policy, Retire, Rule, Select
from .retain import parse_retain
from .schema import FAMILIES, KEEP, OPTIONS, TOP, Key

REGION_RE = re.compile(r"^[a-z*?]{2}[a-z0-9*?-]*$")
POLICY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Bad:
    """A value that did not validate: its error is recorded, checks that need it are skipped."""

    def __repr__(self) -> str:
        return "<invalid>"


BAD: Any = _Bad()


def _ok(*values: Any) -> bool:
    return not any(v is BAD for v in values)


class _Reader:
    """Reads a policy and records every problem, so a file's errors are reported at once."""

    def __init__(self, pos: Positions) -> None:
        self.pos = pos
        self.errors: list[InputError] = []

    def fail(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> Any:
        self.errors.append(self.pos.error(path, message, hint))
        return BAD

    def obj(self, data: Any, key: Key, path: tuple[Any, ...]) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return self.fail(path, f"expected a mapping ({key.help.rstrip('.')})")
        allowed = {c.name.rstrip("[]") for c in key.children}
        for k in data:
            if k not in allowed:
                self.fail(
                    (*path, k),
                    f"unknown key in {key.name.rstrip('[]')}",
                    hint="allowed: " + ", ".join(sorted(allowed)),
                )
        out: dict[str, Any] = {}
        for c in key.children:
            name = c.name.rstrip("[]")
            if name not in data or data[name] is None:
                if c.required:
                    out[name] = self.fail(path, f"missing required key '{name}'")
                    continue
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
                return self.fail(path, "expected a list")
            return [self.obj(item, key.children[0], (*path, i)) for i, item in enumerate(v)]
        if t == "str":
            if not isinstance(v, str):
                return self.fail(path, f"expected a string, got {type(v).__name__}")
            return v
        if t == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                return self.fail(path, f"expected a whole number, got {v!r}")
            if key.minimum is not None and v < key.minimum:
                return self.fail(path, f"must be at least {key.minimum}")
            return v
        if t == "bool":
            if not isinstance(v, bool):
                return self.fail(path, f"expected true or false, got {v!r}")
            return v
        if t == "duration":
            try:
                return parse_duration(str(v))
            except ValueError as exc:
                return self.fail(path, str(exc))
        if t == "enum":
            if v not in key.enum:
                return self.fail(path, f"expected one of {', '.join(key.enum)}, got {v!r}")
            return v
        if t == "glob-list":
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or not v:
                return self.fail(path, "expected a non-empty list of strings")
            bad_values = [x for x in v if key.enum and x not in key.enum]
            if bad_values:
                return self.fail(
                    path, f"expected some of {', '.join(key.enum)}, got {bad_values[0]!r}"
                )
            return tuple(v)
        if t == "str-map":
            if not isinstance(v, dict):
                return self.fail(path, "expected a mapping of tag keys to values")
            out = []
            bad = False
            for k2, v2 in v.items():
                if isinstance(v2, dict | list) or v2 is None:
                    self.fail((*path, k2), "expected a plain value")
                    bad = True
                    continue
                out.append((str(k2), str(v2).lower() if isinstance(v2, bool) else str(v2)))
            return BAD if bad else tuple(sorted(out))
        raise AssertionError(t)


def parse_policy_data(data: Any, pos: Positions, text: str = "") -> Policy:
    """The policy in ``data``; every problem of the file is reported in one InputError."""
    r = _Reader(pos)
    if data is None:
        raise pos.error((), "the policy is empty", hint="start with `format: 1` and `rules:`")
    top = r.obj(data, TOP, ())
    if top is BAD:
        raise_all(r.errors)
    if _ok(top["format"]) and top["format"] != 1:
        r.fail(("format",), "only format 1 is supported")
    name = top["name"]
    if name is None:
        name = PurePath(pos.file).stem if pos.file and not pos.file.startswith("<") else "policy"
        if not POLICY_NAME_RE.match(name):
            r.fail(
                (),
                f"the file's stem {name!r} cannot serve as the policy's name",
                hint="give the policy a `name:` (letters, digits, . _ -; at most 64)",
            )
    elif _ok(name) and not POLICY_NAME_RE.match(name):
        r.fail(
            ("name",),
            f"{name!r} is not a policy name: letters, digits, '.', '_' and '-', at most 64",
        )

    fam = top["families"] if top["families"] is not None else r.obj(None, FAMILIES, ("families",))
    families = None
    if _ok(fam) and _ok(fam["name_pattern"], fam["tag"], fam["version_tag"]):
        try:
            rx = re.compile(fam["name_pattern"])
        except re.error as exc:
            r.fail(("families", "name_pattern"), f"not a valid regular expression: {exc}")
        else:
            if not {"family", "version"} <= set(rx.groupindex):
                r.fail(
                    ("families", "name_pattern"),
                    "must define the named groups 'family' and 'version'",
                    hint=r"e.g. '^(?P<family>[a-z-]+)-v?(?P<version>\d+(\.\d+)*)$'",
                )
            families = FamilyRule(
                tag=fam["tag"], version_tag=fam["version_tag"], name_pattern=fam["name_pattern"]
            )

    holds = []
    for i, h in enumerate(top["holds"] if _ok(top["holds"]) and top["holds"] else []):
        path = ("holds", i)
        if not _ok(h):
            continue
        given = [k for k in ("tag", "deregistration_protection") if h[k] is not None]
        if len(given) != 1:
            r.fail(path, "a hold has exactly one of tag or deregistration_protection")
        if h["until"] and not h["tag"]:
            r.fail((*path, "until"), "until: value needs a tag")
        if h["deregistration_protection"] is False:
            r.fail((*path, "deregistration_protection"), "only `true` makes sense here")
        holds.append(
            Hold(
                tag=h["tag"],
                until_value=h["until"] == "value",
                deregistration_protection=h["deregistration_protection"] is True,
                line=pos.line(path),
            )
        )

    rules = []
    names: set[str] = set()
    for i, raw in enumerate(top["rules"] if _ok(top["rules"]) and top["rules"] else []):
        path = ("rules", i)
        if not _ok(raw):
            continue
        if _ok(raw["name"]):
            if raw["name"] in names:
                r.fail((*path, "name"), f"duplicate rule name {raw['name']!r}")
            names.add(raw["name"])
        sel = raw["select"]
        if sel is None:
            r.fail(
                path,
                "missing required key 'select'",
                hint="select: {families: ['*']} selects every family",
            )
        keep = raw["keep"] or r.obj(None, KEEP, (*path, "keep"))
        ret = raw["retire"]
        if ret is None:
            r.fail(path, "missing required key 'retire'", hint="e.g. retire: {deregister: 0d}")
        elif _ok(ret):
            if ret["deprecate"] is None and ret["disable"] is None and ret["deregister"] is None:
                r.fail(
                    (*path, "retire"), "give at least one stage: deprecate, disable or deregister"
                )
            order = [
                (k, ret[k]) for k in ("deprecate", "disable", "deregister") if ret[k] is not None
            ]
            for (k1, d1), (k2, d2) in zip(order, order[1:], strict=False):
                if _ok(d1, d2) and d2 < d1:
                    r.fail(
                        (*path, "retire", k2),
                        f"{k2} ({d2.days}d) comes before {k1} ({d1.days}d): "
                        "stages must not go backwards",
                    )
        if sel is not None and _ok(sel) and _ok(sel["regions"]):
            for j, reg in enumerate(sel["regions"] or ()):
                if not REGION_RE.match(reg):
                    r.fail((*path, "select", "regions", j), f"not a region name or glob: {reg!r}")
        if r.errors:
            continue  # nothing is built from a file with errors; the checks go on
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
                    images=sel["images"],
                    managed=sel["managed"] or (),
                ),
                keep=Keep(
                    latest=keep["latest"],
                    newer_than=keep["newer_than"],
                    in_use=keep["in_use"],
                    launched_within=keep["launched_within"],
                    shared=keep["shared"],
                    channels=keep["channels"],
                    channel_history=keep["channel_history"],
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
    if snaps and _ok(snaps) and snaps.get("orphaned") is not None and _ok(snaps["orphaned"]):
        o = snaps["orphaned"]
        if _ok(o["older_than"]):
            orphaned = Orphaned(
                only_from_images=o["only_from_images"],
                older_than=o["older_than"]
                if isinstance(o["older_than"], dt.timedelta)
                else parse_duration(o["older_than"]),
                action=o["action"],
            )
    opts = top["options"] or r.obj(None, OPTIONS, ("options",))
    prices = []
    if _ok(opts) and _ok(opts["prices"]):
        for k, v in opts["prices"] or ():
            try:
                prices.append((k, float(v)))
            except ValueError:
                r.fail(
                    ("options", "prices", k), f"expected a price in USD per GiB-month, got {v!r}"
                )
            if k not in ("standard", "archive"):
                r.fail(("options", "prices", k), "expected standard or archive")
    iac = top["iac"] if _ok(top["iac"]) and top["iac"] else ()
    retain = parse_retain(r, top["retain"] if _ok(top["retain"]) else None, pos.line)
    raise_all(r.errors)
    assert families is not None and _ok(opts)
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
        iac=iac_paths(iac, pos.file),
        retain=retain,
        notify_before=top["notify"]["before"] if _ok(top["notify"]) and top["notify"] else None,
    )


def iac_paths(
    paths: tuple[str, ...] | list[str], policy_file: str | None = None
) -> tuple[str, ...]:
    """Absolute paths (the plan carries them to apply): relative ones are relative to the
    policy file's directory (or, for ``--iac`` and a policy without a file, the current one)."""
    base = Path(policy_file).parent if policy_file and not policy_file.startswith("<") else Path()
    out = [os.path.abspath(base / os.path.expanduser(p)) for p in paths]
    return tuple(dict.fromkeys(out))


def parse_policy_text(text: str, file: str = "<policy>") -> Policy:
    data, pos = loads(text, file)
    return parse_policy_data(data, pos, text)


def load_policy(path: str) -> Policy:
    return parse_policy_text(read_text(path, "policy"), path)
