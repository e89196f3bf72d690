"""``plan --from-state``: one inventory from the newest complete stored scan of each account.

Shards of an organization (``inventory --shard K/N``, one job each) each store a run with
their own accounts. Planning over "the latest run" would see one shard only; this module
picks, per account, the newest run in which that account was scanned completely (every
kind, every region, no error) and joins those accounts' parts into one inventory, as one
process scanning all of them would have produced.

Nothing is planned on an account it cannot vouch for: an expected account with no complete
run, or whose newest complete run is older than ``max_age``, makes the whole plan refused
(``SafetyError``, exit 3) with the accounts named — a plan that silently left an account
out would show nothing to retire there, and the shards' coverage would go unchecked.

The expected accounts are the caller's (``--org``, ``--accounts-file``, ``--role-arn``:
read off the role ARNs, no call made) or, without those, every account any stored run has.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..errors import InputError, SafetyError
from ..model import Inventory, parse_time
from ..state.store import Store, _inventory, runs, slices
from .kinds import COLLECTORS


@dataclass
class AccountRun:
    account: str
    run_id: int
    scanned_at: dt.datetime


@dataclass
class Coverage:
    """Per expected account: the run chosen, or why none can be."""

    chosen: dict[str, AccountRun] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # no complete run at all
    stale: list[AccountRun] = field(default_factory=list)  # newest complete run too old
    incomplete_only: list[str] = field(default_factory=list)  # only incomplete runs


def coverage(
    store: Store,
    expected: list[str] | None,
    max_age: dt.timedelta,
    now: dt.datetime,
) -> Coverage:
    """Which run serves each account (reads the runs' slice rows, not their inventories)."""
    q = sa.select(
        slices.c.run_id, slices.c.account, slices.c.kind, slices.c.complete, runs.c.scanned_at
    ).join(runs, runs.c.id == slices.c.run_id)
    parts: dict[tuple[int, str], dict[str, bool]] = defaultdict(dict)
    when: dict[int, dt.datetime] = {}
    with store.engine.connect() as c:
        for row in c.execute(q):
            kinds = parts[(int(row.run_id), row.account)]
            kinds[row.kind] = kinds.get(row.kind, True) and bool(row.complete)
            t = parse_time(row.scanned_at)
            assert t is not None
            when[int(row.run_id)] = t
    everyone = sorted({acct for _run, acct in parts})
    wanted = sorted(set(expected)) if expected else everyone
    best: dict[str, AccountRun] = {}
    seen: set[str] = set()
    for (run_id, acct), kinds in parts.items():
        seen.add(acct)
        if set(COLLECTORS) - set(kinds) or not all(kinds.values()):
            continue
        cand = AccountRun(acct, run_id, when[run_id])
        old = best.get(acct)
        if old is None or (cand.scanned_at, cand.run_id) > (old.scanned_at, old.run_id):
            best[acct] = cand
    out = Coverage()
    for acct in wanted:
        got = best.get(acct)
        if got is None:
            (out.incomplete_only if acct in seen else out.missing).append(acct)
        elif now - got.scanned_at > max_age:
            out.stale.append(got)
        else:
            out.chosen[acct] = got
    return out


def refuse_uncovered(cov: Coverage, max_age: dt.timedelta, now: dt.datetime) -> None:
    problems = []
    if cov.missing:
        problems.append(f"no stored inventory: {', '.join(cov.missing)}")
    if cov.incomplete_only:
        problems.append(f"only incomplete inventories: {', '.join(cov.incomplete_only)}")
    if cov.stale:
        ages = ", ".join(
            f"{r.account} ({_age(now - r.scanned_at)} old)"
            for r in sorted(cov.stale, key=lambda r: r.account)
        )
        problems.append(f"inventory older than --max-age {_age(max_age)}: {ages}")
    if problems:
        raise SafetyError(
            "plan --from-state refused: " + "; ".join(problems),
            hint="scan those accounts (amictl inventory, or the missing shards) and plan again",
        )


def _age(d: dt.timedelta) -> str:
    s = int(d.total_seconds())
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600}h"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def merged_inventory(store: Store, cov: Coverage) -> Inventory:
    """The chosen accounts' parts of their chosen runs, as one inventory."""
    by_run: dict[int, list[str]] = defaultdict(list)
    for r in cov.chosen.values():
        by_run[r.run_id].append(r.account)
    out = Inventory()
    for run_id in sorted(by_run):
        mine = set(by_run[run_id])
        with store.engine.connect() as c:
            blob = c.execute(sa.select(runs.c.data).where(runs.c.id == run_id)).scalar_one()
        inv = _inventory(blob)
        out.images.extend(i for i in inv.images if i.account in mine)
        out.snapshots.extend(s for s in inv.snapshots if s.account in mine)
        out.references.extend(r for r in inv.references if r.account in mine)
        out.slices.extend(s for s in inv.slices if s.account in mine)
        out.regions = sorted({*out.regions, *{s.region for s in inv.slices if s.account in mine}})
        for k, v in inv.api_calls.items():
            out.api_calls[k] = out.api_calls.get(k, 0) + v
        out.duration = max(out.duration, inv.duration)
        if inv.scanned_at is not None and (
            out.scanned_at is None or inv.scanned_at < out.scanned_at
        ):
            out.scanned_at = inv.scanned_at  # the oldest part: what the plan's facts date from
    out.accounts = sorted(cov.chosen)
    return out


def inventory_from_state(
    store: Store,
    expected: list[str] | None,
    max_age: dt.timedelta,
    now: dt.datetime | None = None,
) -> Inventory:
    """The newest complete inventory of every expected account, joined; refuses (exit 3)
    when an account has none or only one older than ``max_age``."""
    now = now or dt.datetime.now(dt.UTC)
    cov = coverage(store, expected, max_age, now)
    if not cov.chosen and not (cov.missing or cov.stale or cov.incomplete_only):
        raise InputError("no stored inventory yet", hint="run `amictl inventory` first")
    refuse_uncovered(cov, max_age, now)
    return merged_inventory(store, cov)
