"""Write a large plan without holding it twice: file and checksum streamed in one pass.

``Plan.to_dict()`` builds every action and decision as a dict, then the canonical JSON
of the whole body as one string for the checksum, then the file's JSON as another: for a
100,000-image plan that is most of a plan command's peak memory and seconds of CPU.
:func:`write_plan` makes each action's and decision's two texts in one pass
(:mod:`.plan_text`: its canonical JSON and its line, each string escaped once), writes
the line to the file and feeds the canonical JSON to sha256 (a chunk of items at a
time), then ends
the file with the checksum (and whatever is made from it: the signature). The bytes fed
to sha256 are exactly ``Plan.checksum_of``'s canonical JSON, so the checksum is the one
plans always had (tests/test_plan_io.py checks plans written before against it).

The file holds one action or decision per line, which ``json.loads`` reads back as the
same body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from ..memory import gc_paused
from .plan_model import FORMAT, Plan
from .plan_text import item_texts

# One encoder each, made once: ``json.dumps`` with arguments builds a new encoder per call.
_CANON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_LINE = json.JSONEncoder()  # json.dumps's defaults: the file's lines
LISTS = ("actions", "decisions")


CHUNK = 1000  # items encoded (canonically) and hashed at a time


def _head(p: Plan) -> dict[str, Any]:
    """The plan body in the file's key order, with the two long lists left out (None)."""
    return {
        "format": FORMAT,
        "created_at": p.created_at,
        "now": p.now,
        "policy": p.policy,
        "inventory": p.inventory,
        "actions": None,
        "decisions": None,
        "summary": p.summary,
        "warnings": list(p.warnings),
    }


def _canon(value: Any) -> str:
    return _CANON.encode(value)


def _items(p: Plan, key: str) -> Iterable[Any]:
    return p.actions if key == "actions" else p.decisions


def _stream(p: Plan, fh: IO[str] | None) -> str:
    """Hash the canonical body (its keys sorted, lists included) while writing the file's
    head and lists (in the file's order) to ``fh``; returns the checksum. Both orders put
    ``actions`` before ``decisions``, and every other key is small: its canonical text is
    known beforehand, so one pass over the lists serves both."""
    head = _head(p)
    h = hashlib.sha256()
    pending = ["{"]  # canonical text not hashed yet, up to the next list
    for n, key in enumerate(sorted(head)):
        pending.append(("," if n else "") + _canon(key) + ":")
        if key not in LISTS:
            pending.append(_canon(head[key]))
            continue
        h.update("".join(pending).encode() + b"[")
        pending = []
        if fh is not None:
            _write_head(fh, head, key)
        _list(h, fh, _items(p, key))
        pending.append("]")
    pending.append("}")
    h.update("".join(pending).encode())
    return h.hexdigest()


def _write_head(fh: IO[str], head: dict[str, Any], upto: str) -> None:
    """The file's keys before list ``upto`` that are not written yet, and the list's key."""
    keys = list(head)
    start = keys.index("actions") + 1 if upto == "decisions" else 0
    for key in keys[start : keys.index(upto)]:
        fh.write(f"  {_LINE.encode(key)}: {_LINE.encode(head[key])},\n")
    fh.write(f"  {_LINE.encode(upto)}: [")


def _list(h: Any, fh: IO[str] | None, items: Iterable[Any]) -> None:
    """Each item's canonical text and file line made in one pass (plan_text): the canonical
    texts hashed a chunk at a time (a list's canonical JSON, brackets off, is its items'
    joined by commas), the lines written."""
    canon: list[str] = []
    lines: list[str] = []
    first = True
    for x in items:
        c, line = item_texts(x)
        canon.append(c)
        lines.append(line)
        if len(canon) == CHUNK:
            first = _flush(h, fh, canon, lines, first)
            canon, lines = [], []
    if canon:
        first = _flush(h, fh, canon, lines, first)
    if fh is not None:
        fh.write("\n  ],\n")


def _flush(h: Any, fh: IO[str] | None, canon: list[str], lines: list[str], first: bool) -> bool:
    h.update((("" if first else ",") + ",".join(canon)).encode())
    if fh is not None:
        fh.write(("\n    " if first else ",\n    ") + ",\n    ".join(lines))
    return False


def streamed_checksum(p: Plan) -> str:
    """The same value as ``p.checksum``, without building the canonical JSON at once."""
    with gc_paused():
        return _stream(p, None)


def write_plan(
    p: Plan,
    path: str | Path,
    extra_of: Callable[[str], dict[str, Any]] | None = None,
) -> str:
    """The plan's JSON to ``path``, item by item, hashed as it is written; then ``checksum``
    and what ``extra_of(checksum)`` adds (the signature). Returns the checksum."""
    with gc_paused(), open(path, "w", encoding="utf-8") as fh:
        fh.write("{\n")
        checksum = _stream(p, fh)
        head = _head(p)
        tail = {"summary": head["summary"], "warnings": head["warnings"], "checksum": checksum}
        tail.update(extra_of(checksum) if extra_of else {})
        fh.write(",\n".join(f"  {_LINE.encode(k)}: {_LINE.encode(v)}" for k, v in tail.items()))
        fh.write("\n}\n")
    return checksum
