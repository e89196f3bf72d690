"""YAML loading that remembers the line of every key and item.

Policies and fleet files must name ``file:line`` and the key in every error;
``load`` returns plain Python data and a :class:`Positions` map from paths
(tuples of keys and indexes) to 1-based line numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from .errors import InputError

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


def _construct(node: yaml.Node, path: Path, pos: Positions, loader: yaml.SafeLoader) -> Any:
    pos.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode, deep=True)
            if isinstance(key, list | dict):
                raise pos.error(path, "a mapping key must be a plain value")
            if key in out:
                raise InputError(
                    f"duplicate key {key!r}", file=pos.file, line=knode.start_mark.line + 1
                )
            sub = (*path, key)
            pos.lines[sub] = knode.start_mark.line + 1
            out[key] = _construct(vnode, sub, pos, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), pos, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def loads(text: str, file: str = "<string>") -> tuple[Any, Positions]:
    """Parse YAML text; return (data, positions). Syntax errors become InputError."""
    pos = Positions(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, pos
        return _construct(node, (), pos, loader), pos
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(f"YAML syntax error: {exc.problem or exc}", file=file, line=line) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", file=file) from exc
    finally:
        loader.dispose()


def load_file(path: str) -> tuple[Any, Positions]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from exc
    return loads(text, path)


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
