"""The policy's ``retain`` rules (issue 29): parsed from the file (checked key by key, with
file:line), written to and read from the plan (covered by its checksum)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .model import Retain

MIN_COOL_OFF, MAX_COOL_OFF = dt.timedelta(hours=1), dt.timedelta(hours=72)
MIN_LOCK, MAX_LOCK = dt.timedelta(days=1), dt.timedelta(days=36500)


def parse_retain(reader: Any, raws: Any, line: Any) -> tuple[Retain, ...]:
    """``reader``: the policy parser's reader (``fail(path, message)``); ``raws``: the
    ``retain`` list as the reader validated it; ``line(path)``: a path's line."""
    out: list[Retain] = []
    names: set[str] = set()
    for i, raw in enumerate(raws or []):
        path = ("retain", i)
        if not isinstance(raw, dict):
            continue
        name, sel, lock, store = raw["name"], raw["select"], raw["lock"], raw["store"]
        if isinstance(name, str):
            if name in names:
                reader.fail((*path, "name"), f"duplicate retain name {name!r}")
            names.add(name)
        if (lock is None) == (store is None):
            reader.fail(path, "a retain rule has exactly one of lock or store")
        if isinstance(lock, dict):
            d, c = lock["duration"], lock["cool_off"]
            if isinstance(d, dt.timedelta) and not MIN_LOCK <= d <= MAX_LOCK:
                reader.fail((*path, "lock", "duration"), "must be between 1d and 36500d")
            if c is not None and lock["mode"] != "compliance":
                reader.fail(
                    (*path, "lock", "cool_off"), "a cooling-off period is for compliance mode"
                )
            if isinstance(c, dt.timedelta) and not MIN_COOL_OFF <= c <= MAX_COOL_OFF:
                reader.fail((*path, "lock", "cool_off"), "must be between 1h and 72h")
        if not isinstance(sel, dict) or not isinstance(name, str):
            continue
        if not any(sel[k] for k in ("families", "channels", "tags", "images")):
            reader.fail(
                (*path, "select"), "select at least one of families, channels, tags, images"
            )
        ok_lock = isinstance(lock, dict) and isinstance(lock["duration"], dt.timedelta)
        ok_store = isinstance(store, dict) and isinstance(store["bucket"], str)
        out.append(
            Retain(
                name=name,
                families=sel["families"] or None,
                channels=sel["channels"] or None,
                tags=sel["tags"] or (),
                images=sel["images"] or None,
                lock_mode=lock["mode"] if ok_lock else None,
                lock_for=lock["duration"] if ok_lock else None,
                cool_off=lock["cool_off"] if ok_lock else None,
                store_bucket=store["bucket"] if ok_store else None,
                line=line(path),
            )
        )
    return tuple(out)


def _dur(td: dt.timedelta | None) -> str | None:
    if td is None:
        return None
    hours = int(td.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def retain_to_dict(rules: tuple[Retain, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "families": list(r.families) if r.families else None,
            "channels": list(r.channels) if r.channels else None,
            "tags": dict(r.tags),
            "images": list(r.images) if r.images else None,
            "lock": None
            if r.lock_mode is None
            else {"mode": r.lock_mode, "duration": _dur(r.lock_for), "cool_off": _dur(r.cool_off)},
            "store": None if r.store_bucket is None else {"bucket": r.store_bucket},
        }
        for r in rules
    ]


def retain_from_dict(reader: Any, raws: Any) -> tuple[Retain, ...]:
    """The plan's ``policy.retain`` (``reader``: the plan's strict policy reader)."""
    if raws is None:
        return ()
    if not isinstance(raws, list):
        raise reader.err("retain", "expected a list")
    out = []
    for i, x in enumerate(raws):
        k = f"retain[{i}]"
        x = reader.obj(x, k)
        lock = x.get("lock")
        store = x.get("store")
        if lock is not None:
            lock = reader.obj(lock, f"{k}.lock")
            if lock.get("mode") not in ("governance", "compliance"):
                raise reader.err(f"{k}.lock.mode", "expected governance or compliance")
        if store is not None:
            store = reader.obj(store, f"{k}.store")
        out.append(
            Retain(
                name=reader.str_(x.get("name"), f"{k}.name"),
                families=reader.strs(x.get("families"), f"{k}.families"),
                channels=reader.strs(x.get("channels"), f"{k}.channels"),
                tags=reader.tags(x.get("tags"), f"{k}.tags"),
                images=reader.strs(x.get("images"), f"{k}.images"),
                lock_mode=lock["mode"] if lock else None,
                lock_for=reader.dur(lock.get("duration"), f"{k}.lock.duration") if lock else None,
                cool_off=reader.dur(lock.get("cool_off"), f"{k}.lock.cool_off") if lock else None,
                store_bucket=reader.str_(store.get("bucket"), f"{k}.store.bucket")
                if store
                else None,
            )
        )
    return tuple(out)
