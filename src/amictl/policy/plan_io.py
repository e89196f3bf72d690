"""Write a large plan without holding it twice: checksum and file streamed item by item.

``Plan.to_dict()`` builds every action and decision as a dict, then the canonical JSON
of the whole body as one string for the checksum, then the file's JSON as another: for a
20,000-image plan that is most of a plan command's peak memory. These functions produce
the same checksum (the canonical JSON's bytes are fed to sha256 piece by piece) and a
plan file with one action or decision per line, which ``json.loads`` reads back as the
same body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from .plan_model import FORMAT, Plan

_canon = partial(json.dumps, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
LISTS = ("actions", "decisions")


def _head(p: Plan) -> dict[str, Any]:
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


def _items(p: Plan, key: str) -> Iterator[dict[str, Any]]:
    for x in p.actions if key == "actions" else p.decisions:
        yield x.to_dict()


def streamed_checksum(p: Plan) -> str:
    """The same value as ``p.checksum``, without building the canonical JSON at once."""
    head = _head(p)
    h = hashlib.sha256(b"{")
    for n, key in enumerate(sorted(head)):
        h.update((b"," if n else b"") + _canon(key).encode() + b":")
        if key in LISTS:
            h.update(b"[")
            for i, item in enumerate(_items(p, key)):
                h.update((b"," if i else b"") + _canon(item).encode())
            h.update(b"]")
        else:
            h.update(_canon(head[key]).encode())
    h.update(b"}")
    return h.hexdigest()


def write_plan(p: Plan, path: str | Path, extra: dict[str, Any]) -> None:
    """The plan's JSON (plus ``extra``: checksum, signature) to ``path``, item by item."""
    head = _head(p)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("{\n")
        keys = [*head, *extra]
        for n, key in enumerate(keys):
            end = ",\n" if n < len(keys) - 1 else "\n"
            if key in LISTS:
                fh.write(f"  {json.dumps(key)}: [")
                for i, item in enumerate(_items(p, key)):
                    fh.write(("," if i else "") + "\n    " + json.dumps(item))
                fh.write("\n  ]" + end)
            else:
                value = extra[key] if key in extra else head[key]
                fh.write(f"  {json.dumps(key)}: {json.dumps(value)}{end}")
        fh.write("}\n")
