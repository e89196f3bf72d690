"""The conventions file: image names, required tags, allowed families, version syntax.

``name_template`` such as ``"{family}-{version}"`` becomes a regex with a named group per
placeholder; ``{version}`` matches ``version_pattern``, every other placeholder one or more
characters. A name is parsed by trying every way to split it along the template, so a name
that splits in two ways (``app-1-2``: family ``app`` version ``1-2``, or ``app-1`` and
``2``) is known to be *ambiguous* rather than parsed by regex backtracking luck.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..yamlpos import Positions, check_keys, loads, read_text

DEFAULT_FILE = "amictl-conventions.yaml"
DEFAULT_TEMPLATE = "{family}-{version}"
DEFAULT_VERSION_PATTERN = r"v?\d+(?:\.\d+){0,2}(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?"
KEYS = ("name_template", "required_tags", "allowed_families", "version_pattern", "owners")
PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ANY = r".+"
MAX_PLACEHOLDERS = 8


@dataclass(frozen=True)
class Segment:
    literal: str | None = None  # a literal part, or
    name: str | None = None  # a placeholder
    regex: re.Pattern[str] | None = None


@dataclass
class Conventions:
    path: str = "<default>"
    sha256: str = ""
    name_template: str = DEFAULT_TEMPLATE
    required_tags: dict[str, re.Pattern[str] | None] = field(default_factory=dict)
    allowed_families: list[str] | None = None
    owners: dict[str, str] = field(default_factory=dict)  # family glob -> its owner (issue 29)
    version_pattern: str = DEFAULT_VERSION_PATTERN
    segments: list[Segment] = field(default_factory=list)
    name_regex: str = ""

    @property
    def version_re(self) -> re.Pattern[str]:
        return re.compile(self.version_pattern)

    def family_allowed(self, family: str) -> bool:
        if self.allowed_families is None:
            return True
        return any(fnmatch.fnmatchcase(family, g) for g in self.allowed_families)

    def parses(self, name: str, limit: int = 2) -> list[dict[str, str]]:
        """The distinct ways ``name`` splits along the template (at most ``limit``)."""
        found: list[dict[str, str]] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for assign in _splits(self.segments, 0, name, 0, {}):
            key = tuple(sorted(assign.items()))
            if key not in seen:
                seen.add(key)
                found.append(dict(assign))
                if len(found) >= limit:
                    break
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "name_template": self.name_template,
            "name_regex": self.name_regex,
            "required_tags": {
                k: (v.pattern if v is not None else None) for k, v in self.required_tags.items()
            },
            "allowed_families": self.allowed_families,
            "version_pattern": self.version_pattern,
        }


def _splits(
    segs: list[Segment], i: int, name: str, pos: int, assign: dict[str, str]
) -> Iterator[dict[str, str]]:
    if i == len(segs):
        if pos == len(name):
            yield assign
        return
    seg = segs[i]
    if seg.literal is not None:
        if name.startswith(seg.literal, pos):
            yield from _splits(segs, i + 1, name, pos + len(seg.literal), assign)
        return
    assert seg.name is not None and seg.regex is not None
    nxt = segs[i + 1].literal if i + 1 < len(segs) else None
    for end in range(pos + 1, len(name) + 1):
        if nxt is not None and not name.startswith(nxt, end):
            continue
        if i + 1 == len(segs) and end != len(name):
            continue
        if seg.regex.fullmatch(name, pos, end):
            yield from _splits(segs, i + 1, name, end, {**assign, seg.name: name[pos:end]})


def _regex(pos: Positions, path: tuple[Any, ...], value: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as exc:
        raise pos.error(path, f"not a valid regular expression ({what}): {exc}") from None


def compile_template(
    template: str, version_pattern: str, pos: Positions
) -> tuple[list[Segment], str]:
    path = ("name_template",)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise pos.error(
            path, f"not a valid template: {exc}", hint='e.g. "{family}-{version}"; {{ for a brace'
        ) from None
    segs: list[Segment] = []
    regex = ["^"]
    names: set[str] = set()
    vre = re.compile(version_pattern)
    for literal, fname, spec, conv in parts:
        if literal:
            segs.append(Segment(literal=literal))
            regex.append(re.escape(literal))
        if fname is None:
            continue
        if not PLACEHOLDER.match(fname) or spec or conv:
            raise pos.error(
                path,
                f"placeholder {{{fname}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}"
                " is not a plain name",
                hint="placeholders are names such as {family}, {version}, {arch}",
            )
        if fname in names:
            raise pos.error(path, f"placeholder {{{fname}}} appears more than once")
        names.add(fname)
        pattern = version_pattern if fname == "version" else ANY
        segs.append(Segment(name=fname, regex=vre if fname == "version" else re.compile(ANY)))
        regex.append(f"(?P<{fname}>{pattern})")
    if not names:
        raise pos.error(path, "the template has no placeholder", hint='e.g. "{family}-{version}"')
    if len(names) > MAX_PLACEHOLDERS:
        raise pos.error(path, f"more than {MAX_PLACEHOLDERS} placeholders")
    regex.append("$")
    return segs, "".join(regex)


def _string(value: Any, pos: Positions, path: tuple[Any, ...], what: str) -> str:
    if not isinstance(value, str) or not value:
        raise pos.error(
            path,
            f"expected {what} (a non-empty string), got {type(value).__name__} {value!r}"[:200],
            hint="quote values YAML would read as numbers, booleans or dates",
        )
    return value


def parse(data: Any, pos: Positions, text: str = "") -> Conventions:
    """Validate the loaded YAML; every problem is an InputError naming file:line and key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise pos.error(
            (), "the conventions file must be a mapping", hint="keys: " + ", ".join(KEYS)
        )
    check_keys(data, KEYS, (), pos, "the conventions file")
    conv = Conventions(path=pos.file, sha256=hashlib.sha256(text.encode()).hexdigest())
    if "version_pattern" in data:
        vp = _string(data["version_pattern"], pos, ("version_pattern",), "a regular expression")
        vre = _regex(pos, ("version_pattern",), vp, "version_pattern")
        if vre.groupindex:
            raise pos.error(
                ("version_pattern",),
                "named groups are not allowed here",
                hint="use (?:...) for grouping",
            )
        if vre.match(""):
            raise pos.error(("version_pattern",), "the pattern matches an empty version")
        conv.version_pattern = vp
    if "name_template" in data:
        conv.name_template = _string(
            data["name_template"], pos, ("name_template",), "a name template"
        )
    conv.segments, conv.name_regex = compile_template(conv.name_template, conv.version_pattern, pos)
    _regex(pos, ("name_template",), conv.name_regex, "the name template")
    tags = data.get("required_tags")
    if tags is not None:
        if not isinstance(tags, dict):
            raise pos.error(
                ("required_tags",),
                "expected a mapping of tag key to a value regex (or null: any value)",
            )
        for key, value in tags.items():
            p = ("required_tags", key)
            if not isinstance(key, str) or not key or len(key) > 128:
                raise pos.error(p, "a tag key is a string of 1 to 128 characters")
            if value is None:
                conv.required_tags[key] = None
            else:
                text_value = _string(value, pos, p, "a regular expression for the tag's value")
                conv.required_tags[key] = _regex(pos, p, text_value, "tag value")
    fams = data.get("allowed_families")
    if fams is not None:
        if not isinstance(fams, list):
            raise pos.error(("allowed_families",), "expected a list of family globs")
        conv.allowed_families = [
            _string(g, pos, ("allowed_families", i), "a family glob") for i, g in enumerate(fams)
        ]
    owners = data.get("owners")
    if owners is not None:
        if not isinstance(owners, dict):
            raise pos.error(("owners",), "expected a mapping of family glob to its owner")
        for glob, who in owners.items():
            conv.owners[_string(glob, pos, ("owners", glob), "a family glob")] = _string(
                who, pos, ("owners", glob), "an owner (a contact name or an email address)"
            )
    return conv


def load(path: str | None = None) -> Conventions:
    """Read ``path`` (default ``amictl-conventions.yaml`` in the working directory)."""
    file = path or DEFAULT_FILE
    if path is None and not os.path.exists(file):
        raise InputError(
            f"no conventions file: {DEFAULT_FILE} is not in the working directory",
            key="--conventions",
            hint="give --conventions FILE (see examples/conventions.yml)",
        )
    text = read_text(file, "conventions file")
    data, pos = loads(text, file)
    return parse(data, pos, text)
