"""Apply's pipeline: which ready actions start in the next wave, and the deregisters that
take their snapshots with them.

Apply runs waves: the ready actions (every action they depend on done) that the next one
takes are decided together on one live view read for them (``apply.live``), then started;
the next wave is picked and read while they run, as soon as an action finishes or a
request bucket refills. So an image's snapshot deletion, another's deregister and a third's
mark overlap, each decided on a view read after the action it depends on finished.

``pick`` fills a wave: at most ``Cadence.per_api`` actions of each API (``--batch N``: N),
each only when its API's request bucket (``amictl.aws.pacing``, the table of
``aws.ec2_limits``) will have a token for it within ``horizon`` (about one wave's read),
counting the actions already started and not finished; so the actions of one API never
wait long on its bucket while another API's bucket has tokens, and a decision is never
much older than the call it allows. The wave's actions run ``--workers`` at a time.

``Cadence`` sizes the waves and says when the next one is picked: a wave holds as many
actions as the workers start within about one wave's read (at least ``--workers`` of each
API; the first wave, before anything was measured, exactly that), and the next wave is
picked once an action finished and the actions still waiting for a worker will all have
one within about half a read. So the next wave's view is read while the previous wave's
calls go out, and each call goes out within about one read of its decision.

``with_associated``: a deregister whose image's every snapshot the same live decision
lets go (``keep.snapshot_keep_reasons``, as the snapshot's own delete-snapshot action
would be decided, with the image counted as leaving) and that the plan deletes right
after it, runs as ``DeregisterImage DeleteAssociatedSnapshots=True``; never when any
snapshot must stay or is not the plan's to delete.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import interrupts
from ..aws.pacing import Pacer
from ..policy.plan_model import Action
from .actions import API_OF
from .live import View, snapshot_shares
from .recheck import Context, Verdict, decide_snapshot

Key = tuple[str, str, str]  # account, region, API
HORIZON_MIN_S = 0.2
HORIZON_MAX_S = 2.0
WAVE_MAX = 1000  # actions of one API in one wave, whatever --batch says


def api_key(a: Action) -> Key | None:
    api = API_OF.get(a.type)
    return (a.account, a.region, api) if api else None


def pick(
    ready: list[Action], started: Counter[Key], pacer: Pacer, per_api: int, horizon: float
) -> list[Action]:
    """Of ``ready`` (in their order), at most ``per_api`` for each (account, region, API),
    each only when its API's bucket has a token for it now or within ``horizon`` seconds,
    after the tokens the ``started`` actions will take."""
    budget: dict[Key, float] = {}
    taken: Counter[Key | str] = Counter()
    out: list[Action] = []
    horizon = min(HORIZON_MAX_S, max(HORIZON_MIN_S, horizon))
    for a in ready:
        key = api_key(a)
        slot: Key | str = key if key is not None else a.type
        if taken[slot] >= per_api:
            continue
        if key is not None:
            if key not in budget:
                _cap, refill = pacer.size(key[2])
                budget[key] = pacer.tokens(*key) - started[key] + refill * horizon
            if budget[key] < 1:
                continue
            budget[key] -= 1
        taken[slot] += 1
        out.append(a)
    return out


class Cadence:
    """The size of the next wave and when it is picked, from what was measured: the last
    wave's read (``read_s``) and an action's time in a worker (``action_s``, a moving
    average of ``took``). ``batch`` (``--batch N``, 0: measured) fixes the size."""

    SMOOTH = 0.2  # weight of the newest action time in the average

    def __init__(self, workers: int, batch: int = 0) -> None:
        self.workers = max(1, workers)
        self.batch = min(WAVE_MAX, batch)
        self.read_s = 0.0
        self.action_s = 0.0
        self._lock = threading.Lock()

    def took(self, seconds: float) -> None:
        """An action's time in a worker (its reads, its pacer wait, its call)."""
        with self._lock:
            a = self.action_s
            self.action_s = seconds if not a else a + self.SMOOTH * (seconds - a)

    def per_api(self, apis: int) -> int:
        """The actions of each of ``apis`` APIs the next wave may hold: what the workers
        start within about one read, shared by the APIs; at least ``workers`` each."""
        if self.batch:
            return self.batch
        if not self.read_s or not self.action_s:
            return self.workers
        fit = self.workers * self.read_s / self.action_s / max(1, apis)
        return int(min(WAVE_MAX, max(self.workers, fit)))

    def room(self, waiting: int) -> bool:
        """Whether the next wave may be picked while ``waiting`` started actions have no
        worker yet: they all get one within about half a read (none waiting: always)."""
        if waiting <= 0:
            return True
        if not self.read_s or not self.action_s:
            return False
        return waiting * self.action_s / self.workers <= self.read_s / 2


def opens_an_api(
    pending: Iterable[Action], inflight: dict[str, Verdict | Exception | None], seen: set[Any]
) -> bool:
    """Whether an action in flight is all that holds back a pending action of an API (or
    type) no wave has taken yet (``seen``): the next wave then waits for the actions in
    flight, so that API's first calls start together (the first deregisters after the
    first marks) instead of one wave later. A delete-snapshot that a deregister in flight
    makes with DeleteAssociatedSnapshots is not held back by it: it will not run."""
    covered = {f for v in inflight.values() if isinstance(v, Verdict) for f in v.with_snapshots}
    for a in pending:
        slot = api_key(a) or a.type
        if slot in seen or a.id in covered or a.id in inflight:
            continue
        if any(d in inflight for d in a.after):
            return True
    return False


def snapshot_followers(actions: Iterable[Action]) -> dict[str, list[Action]]:
    """deregister id -> the plan's delete-snapshot actions that depend on it alone."""
    out: dict[str, list[Action]] = {}
    for a in actions:
        if a.type == "delete-snapshot" and len(a.after) == 1 and a.snapshot_id:
            out.setdefault(a.after[0], []).append(a)
    return out


def with_associated(
    ec2: Any,
    dereg: Action,
    verdict: Verdict,
    followers: list[Action],
    view: View,
    ctx: Context,
    now: dt.datetime,
) -> Verdict:
    """``verdict`` with ``with_snapshots`` set when DeleteAssociatedSnapshots may be used:
    the image's live snapshots are exactly the followers' (none the plan leaves), and each
    follower is decided ``go`` on this view with the image counted as deregistered."""
    if not verdict.go or not verdict.snapshots or not followers:
        return verdict
    by_sid = {a.snapshot_id: a for a in followers if a.image_id == dereg.image_id}
    if set(verdict.snapshots) != set(by_sid):
        return verdict
    leaving = frozenset({dereg.image_id or ""})
    for sid in verdict.snapshots:
        if not decide_snapshot(ec2, by_sid[sid], view, ctx, now, leaving=leaving, dereg=dereg).go:
            return verdict
    facts = []
    for sid in sorted(verdict.snapshots):
        snap = view.inventory.snapshot_by_id[sid]
        shares = tuple(sorted(view.snapshot_shares.get(sid) or ()))
        facts.append((sid, tuple(sorted(snap.tags.items())), shares))
    return replace(
        verdict,
        with_snapshots=tuple(by_sid[s].id for s in sorted(verdict.snapshots)),
        snapshot_facts=tuple(facts),
    )


def still_as_decided(ec2: Any, verdict: Verdict) -> bool:
    """Just before DeregisterImage DeleteAssociatedSnapshots: the snapshots' tags and
    createVolumePermission are what the view that decided them said (one DescribeSnapshots
    and a DescribeSnapshotAttribute each, the reads the plain path's own view makes). Any
    change (a hold tagged, a share added, a snapshot gone) and the image is deregistered
    alone; its snapshots are then decided one by one on a view read after it, by the same
    keep decision. An error reading them counts as a change. The reads go out together."""
    ids = [sid for sid, _tags, _shares in verdict.snapshot_facts]
    try:
        with interrupts.Pool(max(1, len(ids))) as pool:  # the reads at once
            sharing = [pool.submit(snapshot_shares, ec2, sid) for sid in ids]
            live = ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]
            shares = {sid: tuple(sorted(f.result())) for sid, f in zip(ids, sharing, strict=True)}
        tags = {
            s["SnapshotId"]: tuple(sorted((t["Key"], t["Value"]) for t in s.get("Tags") or []))
            for s in live
        }
        for sid, was_tags, was_shares in verdict.snapshot_facts:
            if tags.get(sid) != was_tags or shares[sid] != was_shares:
                return False
    except (ClientError, BotoCoreError):
        return False
    return True
