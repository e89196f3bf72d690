"""How listings look: one time format, tables that fit the terminal without wrapping values.

Every command prints through :func:`amictl.cli.common.emit`, which uses these helpers, so a
new command gets the same behaviour by passing its rows and columns:

- times are ``2026-11-26T10:00:00Z`` everywhere, in tables, JSON, CSV and YAML
  (:func:`normalize_times`);
- a table wider than the terminal drops its lowest-value columns first and says which
  (:func:`fit_columns`); ids, names and times are never wrapped, only prose columns
  (reasons, details, messages) wrap between words.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
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
        return "yes" if v else ""
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


def _natural(col: str, cells: Sequence[str]) -> int:
    return max([cell_len(label(col)), *(cell_len(c) for c in cells)])


def _minimum(col: str, cells: Sequence[str]) -> int:
    nat = _natural(col, cells)
    if col not in PROSE:
        return nat
    longest_word = max(
        [cell_len(w) for c in cells for w in c.split()] + [cell_len(label(col))], default=0
    )
    return min(nat, max(PROSE_MIN, longest_word))


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
) -> Fitted:
    """Keep the columns that fit in ``width``; say the rest once or leave them out.

    Until the table fits, in this order: a column with the same value in every row is
    said once (``folded``, e.g. the account of a one-account listing); an empty column
    goes; then the columns of ``drop`` go, lowest value first (by default every column
    that does not identify the row, from the right). Ids and names are never dropped,
    and no column is narrowed below its longest value except prose, which wraps.
    """
    cols = list(columns)
    nrows = len(next(iter(cells.values()), []))
    order = list(drop) if drop is not None else [c for c in reversed(cols) if c not in KEY]
    order = [c for c in order if c in cols and not never_dropped(c)]
    same = [
        c
        for c in cols
        if nrows >= 2 and not never_dropped(c) and c not in PROSE and len(set(cells[c])) == 1
    ]
    candidates = [(c, "fold") for c in same if cells[c][0]]
    candidates += [(c, "drop") for c in same if not cells[c][0]]
    candidates += [(c, "drop") for c in order if c not in same]
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
    return fit
