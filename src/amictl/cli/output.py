"""How listings look: one time format, tables that fit the terminal without wrapping values.

Every command prints through :func:`amictl.cli.common.emit`, which uses these helpers, so a
new command gets the same behaviour by passing its rows and columns:

- times are ``2026-11-26T10:00:00Z`` everywhere, in tables, JSON, CSV and YAML
  (:func:`normalize_times`);
- a table wider than the terminal drops its lowest-value columns first and says which
  (:func:`fit_columns`); ids, names and times are never wrapped, only prose columns
  (reasons, details, messages) wrap between words;
- the columns a command exists for (declared in :mod:`amictl.cli.columns`) are never
  dropped: when they cannot fit, the listing is printed one record per block, like
  ``psql \\x`` (:attr:`Fitted.records`), instead of as a narrower table;
- an empty listing says "none" instead of printing headers only;
- text that is not a table (rules, plan lines, prose) fits :func:`text_width`: $COLUMNS,
  else the terminal's (:func:`hanging` wraps a reason under its action); piped output
  without $COLUMNS draws 100-column rules and keeps one line per item.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len

from ..model import iso

# Short headers: the column keys stay the JSON field names; a table needs less width.
LABELS = {
    "monthly_cost_usd": "$/month",
    "monthly_savings_usd": "savings $/month",
    "size_gib": "GiB",
    "age_days": "age (d)",
    "last_launched_time": "last launch",
    "deprecation_time": "deprecation",
    "references": "refs",
    "created_at": "created",
    "image_id": "image",
    "snapshot_id": "snapshot",
    "shared_with": "shared with",
    "incomplete_kinds": "incomplete kinds",
    "storage_tier": "tier",
    # cost: GiB and $ per month, as docs/cost.md names them
    "standard_gib": "standard GiB",
    "archive_gib": "archive GiB",
    "standard_usd": "standard $/month",
    "archive_usd": "archive $/month",
    "full_size_usd": "full size $/month",
    "estimate_usd": "estimate $/month",
    "orphaned_usd": "orphaned $/month",
    "unused_images": "unused images",
}

# Free text that may wrap between words. Every other column is kept on one line.
PROSE = frozenset(
    {
        "detail",
        "details",
        "message",
        "reason",
        "reasons",
        "why",
        "description",
        "note",
        "notes",
        "error",
        "hint",
        "incomplete_kinds",
        "value",
        "does",
        "criteria",
    }
)

# What is never dropped to make a table fit: the values that say which row is which.
KEY = frozenset(
    {
        "id",
        "image_id",
        "snapshot_id",
        "instance_id",
        "resource",
        "action_id",
        "alias",
        "key",
        "name",
        "kind",
        "family",
        "version",
        "region",
        "account",
        "type",
        "status",
    }
)

PROSE_MIN = 24
"""A prose column is squeezed to no less than this many characters (or its longest word)."""
PROSE_WORD_MAX = 32
"""A longer word in prose (an ARN in a finding's detail) is folded rather than kept whole."""

_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")
_TIME_KEY_RE = re.compile(
    r"(^|_)(time|at|until|since|created|expires|updated|date)$|^(at|when|created_at)$"
)


def label(col: str) -> str:
    return LABELS.get(col, col.replace("_", " "))


def is_time_key(key: str) -> bool:
    return bool(_TIME_KEY_RE.search(key))


def fmt_time(value: Any) -> Any:
    """A datetime, or an ISO 8601 string with a zone, as ``2026-11-26T10:00:00Z``.

    Anything else comes back unchanged (so a tag value or a free-text field is never
    rewritten by accident).
    """
    if isinstance(value, dt.datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    if isinstance(value, str) and _ISO_RE.match(value.strip()):
        try:
            t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
        return iso(t)
    return value


def normalize_times(data: Any, key: str = "") -> Any:
    """Every datetime, and every ISO string under a time-like key, in the one format.

    ``tags`` mappings are user data and are left alone.
    """
    if isinstance(data, dt.datetime):
        return fmt_time(data)
    if isinstance(data, dict):
        if key == "tags":
            return data
        return {k: normalize_times(v, str(k)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [normalize_times(v, key) for v in data]
    if isinstance(data, str) and key and is_time_key(key):
        return fmt_time(data)
    return data


def json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return fmt_time(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def cell(v: Any, col: str = "") -> str:
    """One table or CSV cell."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dt.datetime):
        return str(fmt_time(v))
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, list | tuple):
        return ", ".join(cell(x, col) for x in v)
    if isinstance(v, dict):
        return json.dumps(normalize_times(v, col), sort_keys=True, default=json_default)
    if isinstance(v, str) and col and is_time_key(col):
        return str(fmt_time(v))
    return str(v)


def terminal_width() -> int:
    """The width tables are fitted to: $COLUMNS, else the terminal's, else 220 for pipes."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    # Piped output (a file, CI logs, `less`) gets wide tables instead of 80 cramped columns.
    return 220


PIPE_TEXT_WIDTH = 100
"""Rules and wrapped text of piped output (no terminal): 100 columns, not the 220 of tables."""


def width_known() -> bool:
    """Whether there is a width to fit: $COLUMNS, or a terminal. Piped output without
    $COLUMNS keeps one line per item (grep, awk, CI logs): only its rules are 100 wide."""
    env = os.environ.get("COLUMNS", "")
    return (env.isdigit() and int(env) > 0) or sys.stdout.isatty()


def wrap_width() -> int:
    """The width plan lines and prose wrap to: :func:`text_width` when it is known (a
    terminal, or $COLUMNS), else no limit."""
    return text_width() if width_known() else 10**6


def text_width() -> int:
    """The width of text that is not a table: $COLUMNS, else the terminal's, else 100."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    return PIPE_TEXT_WIDTH


def hanging(head: str, tail: str, width: int, indent: int = 8) -> list[str]:
    """``head`` then ``tail`` on one line when it fits ``width``; else ``head`` alone and
    ``tail`` wrapped under it, indented (a plan line's reason under its action). Plain
    text: markup is added by the caller after wrapping."""
    if not tail:
        return [head.rstrip()]
    one = f"{head} {tail}" if head else tail
    if cell_len(one) <= width:
        return [one]
    head = head.rstrip()
    pad = " " * indent
    wrapped = textwrap.wrap(
        tail,
        width=max(width, indent + 20),
        initial_indent=pad,
        subsequent_indent=pad,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [head, *wrapped] if head else wrapped


def indented(text: str, width: int, indent: int) -> list[str]:
    """``text`` wrapped between words to ``width``, its continuation lines indented by
    ``indent`` (never at column 0); ids and ARNs are never broken."""
    if cell_len(text) <= width:
        return [text]
    return textwrap.wrap(
        text,
        width=max(width, indent + 20),
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


@dataclass
class Fitted:
    columns: list[str]
    dropped: list[str] = field(default_factory=list)
    """Columns left out (their values are in -o json / csv)."""
    empty: list[str] = field(default_factory=list)
    """Columns left out that had no value in any row."""
    folded: dict[str, str] = field(default_factory=dict)
    """Columns with one value in every row, said once (in the title) instead."""
    width: int = 0
    """The table's width with every kept value on one line (prose columns squeezed)."""
    records: bool = False
    """The kept columns cannot fit ``width`` as a table: print one record per block."""


def _natural(col: str, cells: Sequence[str]) -> int:
    return max([cell_len(label(col)), *(cell_len(c) for c in cells)])


def _minimum(col: str, cells: Sequence[str]) -> int:
    nat = _natural(col, cells)
    if col not in PROSE:
        return nat
    words = [w for c in cells for w in c.split()]
    longest_word = max([cell_len(w) for w in words] + [cell_len(label(col))], default=0)
    # An id or an ARN in prose is never broken (issue 31): the column is at least as wide.
    longest_id = max((cell_len(w) for w in words if is_id_word(w)), default=0)
    return min(nat, max(PROSE_MIN, min(longest_word, PROSE_WORD_MAX), longest_id))


_ID_WORD_RE = re.compile(r"^[(\[]?(arn:[\w-]+:|[a-z]+-[0-9a-f]{8,}\b)")


def is_id_word(word: str) -> bool:
    """An ARN or a resource id (``arn:aws:…``, ``lt-0abc…``, ``ami-…``): kept whole."""
    return bool(_ID_WORD_RE.match(word))


def table_width(widths: Sequence[int]) -> int:
    """A rich box table: one space of padding each side of a cell, a rule between columns."""
    return sum(widths) + 3 * len(widths) + 1


def never_dropped(col: str) -> bool:
    """Ids and names say which row is which: always shown, never wrapped. The value of a
    key/value table is the table itself: it wraps, it is never dropped."""
    return col in ("id", "name", "alias", "value") or col.endswith("_id")


def fit_columns(
    columns: Sequence[str],
    cells: dict[str, list[str]],
    width: int,
    drop: Sequence[str] | None = None,
    keep: Sequence[str] = (),
) -> Fitted:
    """Keep the columns that fit in ``width``; say the rest once or leave them out.

    Until the table fits, in this order: an empty column goes (even an id or a name,
    unless declared in ``keep``); a column with the same value in every row is said once
    (``folded``, e.g. the account of a one-account listing); then the columns of ``drop`` go, lowest value first (by default every column
    that does not identify the row, from the right). Ids, and names or else the columns
    of ``keep`` (what the command exists for), are never dropped; no column is narrowed
    below its longest value except prose, which wraps. When what is left still does not
    fit, ``records`` says to print one record per block instead.
    """
    cols = list(columns)
    kept = set(keep)

    def protected(c: str) -> bool:
        # A declaration says what identifies a row of this listing (with the ids);
        # without one, ids and names do.
        return c in kept or c == "id" or c.endswith("_id") if kept else never_dropped(c)

    nrows = len(next(iter(cells.values()), []))
    if drop is None:  # from the right; without a declaration, what identifies a row stays
        drop = [c for c in reversed(cols) if kept or c not in KEY]
    order = [c for c in drop if c in cols and not protected(c)]
    # Empty columns go first (they say nothing), whatever they are, unless declared.
    empty = [c for c in cols if nrows and not any(cells[c]) and c not in kept]
    same = [
        c
        for c in cols
        if nrows >= 2
        and c not in empty
        and not never_dropped(c)
        and c not in PROSE
        and len(set(cells[c])) == 1
    ]
    candidates = [(c, "drop") for c in empty]
    candidates += [(c, "fold") for c in same if cells[c][0]]
    candidates += [(c, "drop") for c in order if c not in same and c not in empty]
    fit = Fitted(cols)
    fit.width = table_width([_minimum(c, cells[c]) for c in cols])
    for c, how in candidates:
        if fit.width <= width:
            break
        cols.remove(c)
        if how == "fold":
            fit.folded[c] = cells[c][0]
        elif not any(cells[c]):
            fit.empty.append(c)
        else:
            fit.dropped.append(c)
        fit.width = table_width([_minimum(c, cells[c]) for c in cols])
    # A column dropped early may fit in the room a wider one left: take back what fits,
    # highest value first, in the table's own column order.
    for c in reversed(list(fit.dropped)):
        trial = [x for x in columns if x in cols or x == c]
        w = table_width([_minimum(x, cells[x]) for x in trial])
        if w <= width:
            cols[:] = trial
            fit.dropped.remove(c)
            fit.width = w
    if fit.width > width:
        # The columns the command exists for do not fit side by side: one record per
        # block shows them all (and every other column too: a block has the room).
        fit.records = True
        fit.columns = [c for c in columns if c not in fit.folded]
        fit.dropped, fit.empty = [], []
    return fit


def record_label_width(columns: Sequence[str]) -> int:
    return max((cell_len(label(c)) for c in columns), default=0)


def record_lines(name: str, value: str, label_width: int, width: int) -> list[str]:
    """One field of a record block: the label padded to ``label_width``, then the value;
    a value too long for the line continues under itself, between words. A word longer
    than the room (an ARN) is never cut (issue 31): it gets a line of its own, from
    column 0, whole even when it is wider than the terminal."""
    pad = label_width + 2
    room = max(width - pad, 10)
    head = name if cell_len(name) <= label_width else name[: max(label_width - 1, 1)] + "…"
    head = head + " " * (label_width - cell_len(head) + 2)
    if cell_len(value) <= room:
        return [(head + value).rstrip()]
    parts = textwrap.wrap(value, width=room, break_long_words=False, break_on_hyphens=False)
    lines: list[str] = []
    for i, part in enumerate(parts):
        if cell_len(part) > room:  # one word too long for beside the label
            lines += [head.rstrip()] if i == 0 else []
            lines.append(part)
        else:
            lines.append((head if i == 0 else " " * pad) + part)
    return lines
