"""Promotion gates: what an image must have passed before it enters a channel.

```yaml
channels:
  prod:
    requires_channel: staging     # it was in this channel (in the same region) ...
    min_days_in: 3d               # ... for at least this long without interruption
    requires_tag: {amictl:bake-status: tested}   # tagnames.BAKE_STATUS_TAG / TESTED
```

A gate asking for the bake status ``tested`` is checked against the bake journal too (the
state store): the image, or the ``copy_to`` copy, must be one a journaled bake made and
tested. A tag alone proves nothing: anyone who may tag an image can write one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..durations import format_duration, parse_duration
from ..findings import NOT_SCANNED, SEVERITIES, summary
from ..model import Image
from ..tagnames import BAKE_STATUS_TAG, TESTED
from ..yamlpos import Positions, check_keys, load_file
from .names import NAME_RE

GATE_KEYS = (
    "requires_channel",
    "min_days_in",
    "requires_tag",
    "max_severity",  # issue 28: Amazon Inspector's worst finding at most this
    "max_days_fix_available",  # ... and no fix available for longer than N days
)

# (account, region, image id) -> the journaled bake that made the image, or None:
# ``{"bake_id", "status", "tested", ...}`` (``creation.bake_journal.lookup(store)``)
BakeLookup = Callable[[str, str, str], dict[str, Any] | None]


@dataclass
class Gate:
    channel: str
    requires_channel: str | None = None
    min_days_in: dt.timedelta | None = None
    requires_tag: dict[str, str] = field(default_factory=dict)
    max_severity: str | None = None
    max_days_fix_available: int | None = None
    where: str = ""  # file:line, for messages
    bake_journal: BakeLookup | None = None  # where a tested bake status is checked

    @property
    def requires_tested(self) -> bool:
        return self.requires_tag.get(BAKE_STATUS_TAG) == TESTED


@dataclass
class Interval:
    """A stretch of time during which a channel parameter held one image."""

    start: dt.datetime
    end: dt.datetime | None  # None: still there


def load_gates(path: str, bake_journal: BakeLookup | None = None) -> dict[str, Gate]:
    """Parse a gates file; InputError (exit 2) naming file:line and key on any problem.

    ``bake_journal`` answers for gates that ask for a tested image (without it, such a gate
    stays closed: nothing can confirm the tag)."""
    data, pos = load_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise pos.error((), "a gates file is a mapping with a `channels` key")
    check_keys(data, ("format", "channels"), (), pos, "gates file")
    if data.get("format", 1) != 1:
        raise pos.error(("format",), "unsupported format (expected 1)")
    chans = data.get("channels") or {}
    if not isinstance(chans, dict):
        raise pos.error(("channels",), "expected a mapping of channel name -> gate")
    out: dict[str, Gate] = {}
    for name, body in chans.items():
        out[str(name)] = _gate(str(name), body, pos)
        out[str(name)].bake_journal = bake_journal
    return out


def _gate(name: str, body: Any, pos: Positions) -> Gate:
    path: tuple[Any, ...] = ("channels", name)
    if not NAME_RE.match(name):
        raise pos.error(path, f"{name!r} is not a valid channel name")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise pos.error(path, f"expected a mapping ({', '.join(GATE_KEYS)})")
    check_keys(body, GATE_KEYS, path, pos, "gate")
    line = pos.line(path)
    gate = Gate(name, where=f"{pos.file}:{line}" if line else pos.file)
    req = body.get("requires_channel")
    if req is not None:
        if not isinstance(req, str) or not NAME_RE.match(req):
            raise pos.error((*path, "requires_channel"), "expected a channel name")
        if req == name:
            raise pos.error((*path, "requires_channel"), "a channel cannot require itself")
        gate.requires_channel = req
    days = body.get("min_days_in")
    if days is not None:
        try:
            gate.min_days_in = parse_duration(str(days))
        except ValueError as exc:
            raise pos.error((*path, "min_days_in"), str(exc)) from None
        if gate.requires_channel is None:
            raise pos.error(
                (*path, "min_days_in"),
                "min_days_in needs requires_channel (the channel the time is counted in)",
            )
    sev = body.get("max_severity")
    if sev is not None:
        if str(sev).lower() not in SEVERITIES:
            raise pos.error((*path, "max_severity"), f"expected one of {', '.join(SEVERITIES)}")
        gate.max_severity = str(sev).lower()
    fix = body.get("max_days_fix_available")
    if fix is not None:
        if isinstance(fix, bool) or not isinstance(fix, int) or fix < 0:
            raise pos.error((*path, "max_days_fix_available"), "expected a number of days >= 0")
        gate.max_days_fix_available = fix
    tags = body.get("requires_tag")
    if tags is not None:
        if not isinstance(tags, dict) or not tags:
            raise pos.error((*path, "requires_tag"), "expected a mapping of tag key -> value")
        for k, v in tags.items():
            if isinstance(v, dict | list) or v is None:
                raise pos.error((*path, "requires_tag", k), "expected a text value")
            gate.requires_tag[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    return gate


def intervals(history: list[dict[str, Any]], image_id: str, now: dt.datetime) -> list[Interval]:
    """When a parameter held ``image_id``, from its history (oldest version first)."""
    out: list[Interval] = []
    for n, h in enumerate(history):
        if h["value"] != image_id:
            continue
        if n and history[n - 1]["value"] == image_id:
            continue  # the same stretch, re-written
        end: dt.datetime | None = None
        for later in history[n + 1 :]:
            if later["value"] != image_id:
                end = later["modified"]
                break
        out.append(Interval(h["modified"], end))
    return out


def closed_reasons(
    gate: Gate,
    image: Image,
    required_history: list[dict[str, Any]] | None,
    now: dt.datetime,
) -> list[str]:
    """Why ``gate`` is closed for ``image`` (empty: open). ``required_history`` is the
    history of the required channel's parameter in the image's region (None: no such
    parameter)."""
    what = f"{image.image_id} in {image.region}"
    out: list[str] = []
    if gate.requires_channel:
        req = gate.requires_channel
        stays = intervals(required_history or [], image.image_id, now)
        if not stays:
            out.append(f"requires_channel {req}: {what} has never been in channel {req}")
        elif gate.min_days_in is not None:
            longest = max((s.end or now) - s.start for s in stays)
            if longest < gate.min_days_in:
                out.append(
                    f"min_days_in {format_duration(gate.min_days_in)}: {what} has been in "
                    f"channel {req} for {_short(longest)} only"
                )
    for key, want in gate.requires_tag.items():
        have = image.tags.get(key)
        if have != want:
            shown = "missing" if have is None else repr(have)
            out.append(f"requires_tag {key}={want}: {what} has {key} {shown}")
    if gate.requires_tested:
        out.extend(_journal_reasons(gate, image, what))
    out.extend(_finding_reasons(gate, image, what, now))
    return out


def _finding_reasons(gate: Gate, image: Image, what: str, now: dt.datetime) -> list[str]:
    """Amazon Inspector's findings against max_severity / max_days_fix_available: an image
    never scanned fails either ("not scanned"), it is never taken for clean."""
    if gate.max_severity is None and gate.max_days_fix_available is None:
        return []
    s = summary(image.scan_results, now)
    keys = [k for k in ("max_severity", "max_days_fix_available") if getattr(gate, k) is not None]
    if not s.scanned:
        return [f"{'/'.join(keys)}: {what} is {NOT_SCANNED} by Amazon Inspector"]
    out = []
    sev = gate.max_severity
    if sev is not None and s.worst is not None and s.at_least(sev) and s.worst != sev:
        out.append(f"max_severity {gate.max_severity}: {what} has {s.worst} findings")
    most = gate.max_days_fix_available
    if most is not None and s.fix_days is not None and s.fix_days > most:
        out.append(
            f"max_days_fix_available {most}: a fix for a finding "
            f"of {what} has been available for {s.fix_days} days"
        )
    return out


def _journal_reasons(gate: Gate, image: Image, what: str) -> list[str]:
    """A tested image is one the bake journal says a bake made and tested."""
    need = f"requires_tag {BAKE_STATUS_TAG}={TESTED}"
    if gate.bake_journal is None:
        return [f"{need}: no bake journal (state store) to confirm {what} was tested"]
    made = gate.bake_journal(image.account, image.region, image.image_id)
    if made is None:
        return [f"{need}: no bake in the journal (state store) made {what}"]
    if not made.get("tested"):
        return [
            f"{need}: bake {made['bake_id']} made {what} but did not pass its tests "
            f"(journal status {made.get('status')})"
        ]
    return []


def _short(td: dt.timedelta) -> str:
    secs = int(td.total_seconds())
    if secs >= 86400:
        return f"{secs // 86400}d {secs % 86400 // 3600}h"
    if secs >= 3600:
        return f"{secs // 3600}h {secs % 3600 // 60}m"
    return f"{secs // 60}m"
