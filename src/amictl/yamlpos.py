"""YAML loading that remembers the line of every key and item.

Policies and fleet files must name ``file:line`` and the key in every error;
``load`` returns plain Python data and a :class:`Positions` map from paths
(tuples of keys and indexes) to 1-based line numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from .errors import InputError, InputErrors

Path = tuple[Any, ...]


class Positions:
    """Maps a path such as ``("rules", 0, "keep", "latest")`` to its line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path, int] = {}

    def line(self, path: Iterable[Any]) -> int | None:
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, path: Iterable[Any], message: str, hint: str | None = None) -> InputError:
        p = tuple(path)
        key = ".".join(str(x) if not isinstance(x, int) else f"[{x}]" for x in p).replace(".[", "[")
        return InputError(message, file=self.file, line=self.line(p), key=key or None, hint=hint)


def raise_all(errors: list[InputError]) -> None:
    """Nothing if ``errors`` is empty; the error if there is one; else all of them at once."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InputErrors(errors)


MAX_BYTES = 10 * 1024 * 1024
"""A policy or fleet file larger than this is refused (a real one is far smaller)."""
MAX_ALIAS_NODES = 100_000
"""At most this many values may be built by expanding aliases (``*name``) in one document."""
MAX_DEPTH = 100
"""Mappings and lists may nest at most this deep."""


class _Limits:
    """What one document has cost so far: values built through aliases."""

    def __init__(self) -> None:
        self.alias_nodes = 0
        self.seen: set[int] = set()


def _construct(
    node: yaml.Node,
    path: Path,
    pos: Positions,
    loader: yaml.SafeLoader,
    limits: _Limits,
    stack: tuple[int, ...] = (),
    via_alias: bool = False,
) -> Any:
    line = node.start_mark.line + 1
    again = id(node) in limits.seen  # reached through an alias: its mark is the anchor's
    if not again:
        pos.lines.setdefault(path, line)
    if id(node) in stack:
        raise pos.error(
            path,
            "recursive YAML alias: an anchored value (&name) contains an alias to itself (*name)",
            hint="remove the alias that refers back to its own anchor",
        )
    limits.seen.add(id(node))
    if again or via_alias:
        via_alias = True
        limits.alias_nodes += 1
        if limits.alias_nodes > MAX_ALIAS_NODES:
            raise pos.error(
                path,
                f"YAML aliases (*name) expand to more than {MAX_ALIAS_NODES:,} values",
                hint="write the values out, or nest fewer aliases",
            )
    if len(stack) >= MAX_DEPTH and isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        raise pos.error(path, f"mappings and lists are nested more than {MAX_DEPTH} levels deep")
    inner = (*stack, id(node))
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise pos.error(path, "a mapping key must be a plain value")
            key = _scalar(knode, pos, loader)
            if key in out:
                raise InputError(
                    f"duplicate key {key!r}", file=pos.file, line=knode.start_mark.line + 1
                )
            sub = (*path, key)
            pos.lines[sub] = knode.start_mark.line + 1
            out[key] = _construct(vnode, sub, pos, loader, limits, inner, via_alias)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*path, i), pos, loader, limits, inner, via_alias)
            for i, item in enumerate(node.value)
        ]
    return _scalar(node, pos, loader)


def _scalar(node: yaml.Node, pos: Positions, loader: yaml.SafeLoader) -> Any:
    """A plain value; values YAML accepts but Python cannot build become InputError."""
    try:
        value = loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        # e.g. a date like 2024-13-45, or an integer with more than 4300 digits
        raise InputError(
            f"cannot read the value {_short(node.value)}: {exc}",
            file=pos.file,
            line=node.start_mark.line + 1,
        ) from None
    return value


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, max(index, 0)) + 1


def loads(text: str, file: str = "<string>") -> tuple[Any, Positions]:
    """Parse YAML text; return (data, positions). Every problem becomes an InputError.

    Refused: text over ``MAX_BYTES``, characters YAML does not allow (NUL and other
    control characters: binary content), aliases that refer to themselves or expand to
    more than ``MAX_ALIAS_NODES`` values, nesting deeper than ``MAX_DEPTH``.
    """
    pos = Positions(file)
    if len(text) > MAX_BYTES:
        raise InputError(
            f"the file is larger than the limit of {MAX_BYTES // (1024 * 1024)} MiB",
            file=file,
            hint="is this the right file?",
        )
    nul = text.find("\0")
    if nul >= 0:
        raise InputError(
            "contains NUL bytes: this looks like a binary file, not YAML",
            file=file,
            line=_line_at(text, nul),
        )
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, pos
        return _construct(node, (), pos, loader, _Limits()), pos
    except yaml.reader.ReaderError as exc:
        raise InputError(
            f"not a text file: character {exc.character!r} is not allowed in YAML",
            file=file,
            line=_line_at(text, exc.position),
            hint="is this a binary file?",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(f"YAML syntax error: {exc.problem or exc}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", file=file) from None
    except RecursionError:
        raise InputError(
            f"mappings and lists are nested more than {MAX_DEPTH} levels deep", file=file
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text(path: str, what: str = "file") -> str:
    """Read a policy or fleet file as UTF-8 text; too large, unreadable or binary -> InputError."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror}", file=path) from None
    if len(raw) > MAX_BYTES:
        raise InputError(
            f"the {what} is larger than the limit of {MAX_BYTES // (1024 * 1024)} MiB",
            file=path,
            hint="is this the right file?",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}): this looks like a binary file",
            file=path,
            line=raw.count(b"\n", 0, exc.start) + 1,
            hint="policy and fleet files are YAML text in UTF-8",
        ) from None


def load_file(path: str) -> tuple[Any, Positions]:
    return loads(read_text(path), path)


def check_keys(
    data: dict[str, Any], allowed: Iterable[str], path: Path, pos: Positions, what: str
) -> None:
    """Unknown keys are errors, named with their line and the keys that are allowed."""
    allowed_set = set(allowed)
    for key in data:
        if key not in allowed_set:
            raise pos.error(
                (*path, key),
                f"unknown key in {what}",
                hint="allowed keys: " + ", ".join(sorted(allowed_set)),
            )
