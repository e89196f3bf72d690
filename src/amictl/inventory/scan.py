"""Run the collectors over accounts x regions x kinds, concurrently and bounded.

Every failure (access denied, throttling after retries, endpoint down) is recorded
per (account, region, kind) and makes that slice incomplete; the other slices
still load. A slice is never silently empty.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from .. import interrupts
from ..aws.pacing import pace_client
from ..aws.session import Connector, Target, aws_error
from ..model import FamilyRule, Inventory, SliceStatus
from .collectors import resolve_asg_references, resolve_ssm_aliases
from .kinds import COLLECTORS
from .launchers.templates import template_references
from .registry import SliceData

Progress = Callable[[str, int, int], None]

SLOW_FIRST = {"launch-templates": 0, "instances": 1, "images": 2, "snapshots": 3}
MAX_WORKERS = 16
# The launch-template slices' head start: when their versions must be read from AWS (one
# call per template, paced by EC2's bucket for the API, which is full from the start and
# wastes its refill until the first call), and every launch-template slice runs at once,
# the other slices wait until every such slice has listed its templates, at most this
# long. Otherwise the big pages' parsing (on the client and, on one machine, the
# sandbox's) delays the listings by a second or more, and the scan's end with them.
HEAD_START_S = 1.5


# What a collector raises on a page of the wrong shape (never an AWS error).
SHAPE_ERRORS = (TypeError, KeyError, AttributeError, ValueError, IndexError)


def _collect(memo: Any, spec: Any, client: Any, target: Target, extra: dict[str, Any]) -> Any:
    """One slice read. A slice that failed on a shape error after kept pages answered
    some of its pages (aws.pagememo: a page there forged or damaged in a way no parse
    gives) is read again with every page parsed, so such a page is a miss, not a failed
    slice (tests/test_attack_round8.py)."""
    hits = memo.thread_hits() if memo is not None else 0
    try:
        return spec.fn(client, target.account, target.region, **extra)
    except SHAPE_ERRORS:
        if memo is None or memo.thread_hits() == hits:
            raise
    with memo.bypassed():
        return spec.fn(client, target.account, target.region, **extra)


def _head_start(
    events: dict[Target, threading.Event], futures: dict[Future[Any], tuple[Target, str]]
) -> None:
    """Wait (at most ``HEAD_START_S``) until every launch-template slice in ``events`` has
    listed its templates or ended; a stop ends the wait (the caller's loop sees it)."""
    slices = {t: f for f, (t, kind) in futures.items() if kind == "launch-templates"}
    deadline = time.monotonic() + HEAD_START_S
    for t, event in events.items():
        fut = slices.get(t)
        while not (event.is_set() or fut is None or fut.done()):
            if interrupts.stop_requested() or time.monotonic() >= deadline:
                return
            event.wait(0.02)


def scan(
    connector: Connector,
    targets: list[Target] | None = None,
    *,
    kinds: list[str] | None = None,
    family_rule: FamilyRule | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    launch_permissions: bool = True,
    lt_cache: Any = None,
) -> Inventory:
    """Scan every target; return the inventory with per-slice completeness.

    ``workers``: slices read at once (default: every slice, up to ``MAX_WORKERS``).
    ``launch_permissions=False``: images are listed without their per-image launch
    permissions (``Image.lp == "unread"``); ``inventory.sharing`` reads the ones a
    decision needs. ``lt_cache`` (``lt_cache.LtVersionCache``): launch-template versions
    read before are reused, only new ones read; what was read is stored after the scan.
    """
    started = time.perf_counter()
    before = connector.counter.snapshot()
    targets = targets if targets is not None else connector.targets()
    kinds = kinds or list(COLLECTORS)
    # The slowest slices start first: launch template versions (one call per template,
    # paced by EC2's request limits), then the big listings; every slice of a small scan
    # runs at once (they wait on the network, not the CPU).
    jobs = sorted(
        ((t, COLLECTORS[k]) for t in targets for k in kinds),
        key=lambda job: SLOW_FIRST.get(job[1].kind, len(SLOW_FIRST)),
    )
    workers = workers or min(len(jobs), MAX_WORKERS)
    results: dict[tuple[Target, str], SliceData] = {}
    statuses: dict[tuple[Target, str], SliceStatus] = {}

    def run(target: Target, spec: Any) -> tuple[SliceData | None, SliceStatus]:
        t0 = time.perf_counter()
        try:
            client = connector.client(spec.service, target.region, target.role_arn)
            extra: dict[str, Any] = {"launch_permissions": False} if spec.kind == "images" else {}
            if launch_permissions:
                extra = {}
            if spec.kind == "launch-templates":
                extra = {"lt_cache": lt_cache, "listed": listed[target].set}
            pace_client(client, target.account, target.region)  # its bulk reads (EC2's only)
            data = _collect(connector.page_memo, spec, client, target, extra)
            return data, SliceStatus(
                target.account,
                target.region,
                spec.kind,
                True,
                data.items,
                seconds=round(time.perf_counter() - t0, 3),
            )
        except Exception as exc:  # noqa: BLE001 - recorded, never swallowed into an empty slice
            err = aws_error(exc, spec.kind, target.region)
            return None, SliceStatus(
                target.account,
                target.region,
                spec.kind,
                False,
                0,
                err.code,
                err.message,
                round(time.perf_counter() - t0, 3),
            )

    done = 0
    # The clients (and the botocore service models behind them: half a million objects
    # for EC2) are made first and frozen out of the garbage collector's full collections,
    # which otherwise walk them again and again while pages are parsed.
    # One client per service and account is enough for that (clients of a service share
    # its model: aws.shared_parts), and assumes each account's role once, here; the other
    # regions' clients are made by the slices' threads, whose first calls go out meanwhile.
    # EC2's come first: the launch-template slices start while the others are made.
    accounts: dict[str | None, Target] = {}
    for t in targets:
        accounts.setdefault(t.role_arn, t)  # each account's first target
    services = sorted(dict.fromkeys(COLLECTORS[k].service for k in kinds), key="ec2".__ne__)
    listed = {t: threading.Event() for t in targets}
    head_start = {t: e for t, e in listed.items() if "launch-templates" in kinds and (
        lt_cache is None or not lt_cache.read_before(t.account, t.region))}  # fmt: skip
    if len(targets) > workers:  # not every launch-template slice runs at once (an
        head_start = {}  # organization): those queued first start first anyway
    for t in accounts.values():  # an account whose role cannot be assumed fails here
        connector.client(services[0], t.region, t.role_arn)
    futures: dict[Future[Any], tuple[Target, str]] = {}
    try:
        pool = interrupts.Pool(max(1, workers), end_calls=True)
        stopped = False
        try:
            with interrupts.cooperative(end_calls=True):
                for t, spec in jobs:  # the launch-template slices (first in SLOW_FIRST)
                    if spec.kind == "launch-templates":
                        futures[pool.submit(run, t, spec)] = (t, spec.kind)
                for t in accounts.values():
                    for service in services[1:]:
                        connector.client(service, t.region, t.role_arn)
                # ... and stay frozen until the inventory is assembled and indexed: its sort,
                # indexes and fingerprint allocate enough to trigger full collections that
                # would walk them all.
                gc.freeze()
                _head_start(head_start, futures)  # the other slices wait for the listings
                for t, spec in jobs:  # after a stop nothing new starts: the loop below ends it
                    if spec.kind != "launch-templates" and not interrupts.stop_requested():
                        futures[pool.submit(run, t, spec)] = (t, spec.kind)
                waiting = set(futures)
                while waiting:
                    if interrupts.stop_requested():
                        # Read-only work: nothing new starts, running slices stop at their next
                        # page, and the caller is not kept waiting for their retries.
                        stopped = True
                        interrupts.check()
                    finished, waiting = wait(waiting, timeout=0.2, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        key = futures[fut]
                        data, status = fut.result()
                        statuses[key] = status
                        if data is not None:
                            results[key] = data
                        done += 1
                        if progress:
                            progress(f"{key[0].region} {key[1]}", done, len(jobs))
                stopped = interrupts.stop_requested()
                interrupts.check()  # a slice stopped by the interrupt is not an AWS failure
        finally:
            pool.shutdown(wait=not stopped, cancel_futures=True)

        if lt_cache is not None:  # versions of the slices read to the end only
            lt_cache.flush(
                (t.account, t.region) for (t, kind), st in statuses.items()
                if kind == "launch-templates" and st.complete
            )  # fmt: skip
        inv = Inventory(scanned_at=dt.datetime.now(dt.UTC))
        for (target, kind), data in list(results.items()):
            aliases = data.raw.get("ssm_aliases") if kind == "launch-templates" else None
            if aliases:
                try:
                    data.references.extend(
                        resolve_ssm_aliases(
                            connector.client("ssm", target.region, target.role_arn),
                            aliases,
                            data.raw.get("templates", {}),
                            target.account,
                            target.region,
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - an unresolved alias: the slice is incomplete
                    err = aws_error(exc, "GetParameter", target.region)
                    st = statuses[(target, kind)]
                    st.complete, st.error_code = False, err.code
                    st.error = f"a launch template names an SSM parameter that could not be read: {err.message}"
                    del results[(target, kind)]
        for (target, kind), data in results.items():
            inv.images.extend(data.images)
            inv.snapshots.extend(data.snapshots)
            inv.references.extend(data.references)
            if kind == "auto-scaling-groups":
                lt = results.get((target, "launch-templates"))
                lc = results.get((target, "launch-configurations"))
                if lt is None or lc is None:
                    st = statuses[(target, kind)]
                    st.complete = False
                    st.error_code = "DependencyIncomplete"
                    st.error = "launch templates or launch configurations could not be read, so ASG images are unknown"
                else:
                    inv.references.extend(
                        resolve_asg_references(
                            data.raw.get("asg_specs", []),
                            lt.raw.get("templates", {}),
                            lc.raw.get("launch_configurations", {}),
                            target.account,
                            target.region,
                        )
                    )
            specs = data.raw.get("launch_template_specs")  # another service names a template
            if specs:
                lt = results.get((target, "launch-templates"))
                if lt is None:
                    st = statuses[(target, kind)]
                    st.complete, st.error_code = False, "DependencyIncomplete"
                    st.error = (
                        "launch templates could not be read, so the images they launch are unknown"
                    )
                else:
                    inv.references.extend(
                        template_references(
                            specs, lt.raw.get("templates", {}), target.account, target.region
                        )
                    )
        inv.slices = sorted(statuses.values(), key=lambda s: (s.account, s.region, s.kind))
        inv.accounts = sorted({t.account for t in targets})
        inv.regions = sorted({t.region for t in targets})
        inv.images.sort(key=lambda i: (i.account, i.region, i.image_id))
        inv.snapshots.sort(key=lambda s: (s.account, s.region, s.snapshot_id))
        inv.references.sort(key=lambda r: (r.image_id, r.kind, r.id))
        inv.resolve_families(family_rule or FamilyRule())
        after = connector.counter.snapshot()
        inv.api_calls = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        inv.build_indexes()  # once, with the inventory: plans and views only read them
        inv.duration = round(time.perf_counter() - started, 3)
        return inv
    finally:
        gc.unfreeze()
