"""Execute a reviewed plan: refusals, lock, journal, live re-check, bounded concurrency.

``prepare`` (``apply/prepare.py``) runs every refusal (exit 3) and reads what the
confirmation must show (Recycle Bin coverage per account/region) before anything changes;
``execute`` runs the actions (one :class:`_Apply`: its journal, live decisions, workers and
scheduler). Every action is journaled ``intended`` before its AWS call and ``done``,
``skipped``, ``failed`` or ``not-found`` after it; those four are final for the plan.
Re-running the same plan (or ``--resume``) redoes nothing final and re-derives
everything else live, so a killed apply ends where a clean one would.

At most ``workers`` actions are in flight. On SIGINT/SIGTERM (see ``amictl.interrupts``)
no new action starts; in-flight calls finish and are journaled; a call still waiting to be
sent or retried when AWS can have done none of it ends (``aws/stopping.py``) and its action
is journaled ``stopped``; ``Interrupted`` is raised.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, as_completed, wait
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from .. import interrupts
from ..aws.pacing import default_pacer, pace_client
from ..aws.session import Connector, Target, aws_error
from ..errors import Interrupted, JournalError
from ..keep import assess, effective_holds
from ..keep.decide import STAGES
from ..policy.plan_model import Action, Plan, action_order
from ..state import timeouts
from ..state.store import FINAL, Store
from .actions import EXECUTORS, deregister_with_snapshots
from .blast import SHARE_MIN_IMAGES, blast_radius, live_blast_radius  # noqa: F401  (re-exported)
from .live import LiveReader, plan_regions
from .options import ApplyOptions, ApplyResult, Prepared  # noqa: F401  (re-exported)
from .pipeline import (
    Cadence,
    api_key,
    opens_an_api,
    pick,
    snapshot_followers,
    still_as_decided,
    with_associated,
)
from .prepare import (  # noqa: F401  (re-exported: the CLI's refusals and confirmation)
    check_plan,
    describe_coverage,
    prepare,
    recycle_bin_coverage,
    unrecoverable,
)
from .recheck import Context, Verdict, decide_image, decide_snapshot, utcnow
from .trust import sign_limits

Progress = Callable[[Action, str, str], None]
Ran = tuple[str, str | None, str, dict[str, str]]  # status, code, message, snapshot results
BatchHook = Callable[[list[Action]], None]
IMAGE_DECIDED = ("mark", *STAGES)
SNAPSHOT_ACTIONS = ("delete-snapshot", "archive-snapshot")
DECIDED = (*IMAGE_DECIDED, *SNAPSHOT_ACTIONS)
TOKEN_POLL_S = 0.05  # how often a wave waiting on an empty request bucket looks again


def apply_plan(
    connector: Connector,
    store: Store,
    plan: Plan,
    opts: ApplyOptions,
    progress: Progress | None = None,
    between_batches: BatchHook | None = None,
) -> ApplyResult:
    """prepare + execute, for library callers that do not confirm in between."""
    return execute(
        connector, store, prepare(connector, plan, opts, store), opts, progress, between_batches
    )


def execute(
    connector: Connector,
    store: Store,
    prep: Prepared,
    opts: ApplyOptions,
    progress: Progress | None = None,
    between_batches: BatchHook | None = None,
) -> ApplyResult:
    """Run the actions in waves: the ready actions (their dependencies done), at most
    ``opts.batch`` of each API at a time (default: sized by ``pipeline.Cadence``), each
    wave decided on live views read just before it
    (``apply.live``), then run ``opts.workers`` at a time. ``between_batches`` is called
    with each finished batch before the next is read (tests use it to change the live
    account between two actions of one apply)."""
    run = _Apply(connector, store, prep, opts, progress, between_batches)
    lock_keys = [f"{a}/{r}" for a, r in sorted(run.targets)]
    timeouts.journal(), timeouts.lock_check()  # a bad value is said now, before any change
    limits = opts.to_dict()
    limits_sig = sign_limits(prep.key, run.checksum, limits) if prep.key else None
    try:
        store.save_plan(run.checksum, prep.plan.to_dict())
    except (SQLAlchemyError, OSError) as exc:
        raise JournalError(
            f"cannot write to the state store: {str(exc).splitlines()[0][:200]}",
            hint="free space or fix --state, then apply again; nothing was changed",
        ) from None
    holder = ", ".join(sorted(set(run.callers.values()))) or None
    with store.lock(lock_keys, owner=f"apply {run.checksum[:12]}", caller=holder):
        # Again under the lock: another apply may have deregistered images since `prepare`
        # (two operators confirming at once), which changes what this plan would leave.
        live_blast_radius(connector, prep.plan, prep.policy, run.targets, opts, store)
        run_id = store.start_apply_run(
            run.checksum, limits, plan_signature=prep.signature, limits_signature=limits_sig
        )
        run.resume_from(store.journal_final_states(run.checksum), store.origins(run.checksum))
        with (
            interrupts.cooperative(end_calls=True),
            interrupts.Pool(run.workers) as pool,
        ):
            run.waves(pool)
        sig = run.stop_signal()
        with contextlib.suppress(SQLAlchemyError, OSError):
            store.end_apply_run(run_id, run.ending(sig))
    return run.outcome(sig)


class _Apply:
    """One run of :func:`execute`: its journal, the live decisions of its waves, the
    workers' actions, and the scheduler that feeds them."""

    def __init__(
        self,
        connector: Connector,
        store: Store,
        prep: Prepared,
        opts: ApplyOptions,
        progress: Progress | None,
        between_batches: BatchHook | None,
    ) -> None:
        plan = prep.plan
        self.connector, self.store, self.prep, self.opts = connector, store, prep, opts
        self.progress, self.between_batches = progress, between_batches
        self.checksum = plan.checksum
        self.result = ApplyResult(self.checksum, recycle_bin=prep.recycle_bin, caller=prep.callers)
        self.ctx = Context(prep.policy, effective_holds(prep.policy.holds), opts.force_unsafe)
        self.reader = LiveReader(
            connector,
            prep.policy.families,
            plan_regions(plan.inventory, list(plan.actions)),
            store,
            prep.policy.iac,
            every_region=opts.every_region,
        )
        self.targets = prep.targets
        self.callers = prep.callers
        self.journal_errors: list[str] = []
        self.lost: list[str] = []  # the store stopped answering (server down, hung, network)
        self.status: dict[str, str] = {}
        self.pending: dict[str, Action] = {}
        self.intended_before: set[str] = set()
        # the actions whose "intended" rows this run wrote for a call in flight
        self.unsettled: dict[str, list[Action]] = {}
        self.intended_now: set[str] = set()  # ... and every action it wrote one for
        self.by_id = {a.id: a for a in plan.actions}
        self.followers = snapshot_followers(plan.actions)
        self.dereg_by_image = {
            d.image_id: d for d in plan.actions if d.type == "deregister" and d.image_id
        }
        self.workers = max(1, opts.workers)
        # actions of one API decided on one live read (opts.batch, at most pipeline.WAVE_MAX;
        # 0: what the workers start within about one read) and when the next wave is picked
        self.cadence = Cadence(self.workers, opts.batch)
        self.began: set[str] = set()  # actions a worker has taken up

    # -- the journal ---------------------------------------------------------------------

    def failed_write(self, what: str, exc: Exception) -> None:
        self.journal_errors.append(f"{what}: {str(exc).splitlines()[0][:200]}")
        if store_lost(self.store, exc):
            self.lost.append(what)

    def journal(self, a: Action, st: str, code: str | None = None, msg: str | None = None) -> bool:
        try:
            self.store.journal_write(
                plan_checksum=self.checksum,
                action_id=a.id,
                type=a.type,
                account=a.account,
                region=a.region,
                resource=a.snapshot_id or a.image_id or "",
                status=st,
                error_code=code,
                message=(msg or "")[:2000] or None,
                caller=self.callers.get(a.account),
            )
            return True
        except (SQLAlchemyError, OSError) as exc:
            self.failed_write(f"{a.id} {st}", exc)
            return False

    def resume_from(self, previous: dict[str, str], origins: dict[str, Any]) -> None:
        """What earlier runs of this plan left: final actions stay final; the rest is to do."""
        # only "intended": a "stopped" call AWS did not do (aws/stopping.py), so one found
        # gone now was done by someone else (not-found), not by the stopped run
        self.intended_before = {aid for aid, st in previous.items() if st == "intended"}
        for image_id, snaps in origins.items():
            self.ctx.origins[image_id] = set(snaps)  # recorded by an earlier run of this plan
        for a in self.prep.plan.actions:
            st = previous.get(a.id)
            if st == "done":
                self.status[a.id] = "done"
                self.result.already_done.append(a.id)
            elif st in FINAL:
                self.status[a.id] = st
                self.result.final_earlier[a.id] = st
        self.pending = {a.id: a for a in self.prep.plan.actions if a.id not in self.status}

    def record(
        self, a: Action, st: str, code: str | None, msg: str, journaled: bool = False
    ) -> None:
        self.status[a.id] = st
        if not journaled:
            self.journal(a, st, code, msg)
        if st == "done":
            self.result.done.append(a.id)
        elif st == "skipped":
            self.result.skipped[a.id] = msg
        elif st == "not-found":
            self.result.not_found[a.id] = msg
        else:
            self.result.failed[a.id] = msg
        if self.progress:
            self.progress(a, st, msg)

    # -- the live decision of a wave -----------------------------------------------------

    def decide(self, batch: list[Action]) -> dict[str, Verdict | Exception]:
        """One live view per account/region of the batch, read now; every verdict
        from the planner's own decision on it."""
        out: dict[str, Verdict | Exception] = {}
        groups: dict[tuple[str, str], list[Action]] = defaultdict(list)
        for a in batch:
            if a.type in DECIDED:
                groups[(a.account, a.region)].append(a)
        for key, acts in sorted(groups.items()):
            try:
                out.update(self._decide_in(self.targets[key], acts))
            except (ClientError, BotoCoreError) as exc:
                for a in acts:
                    out[a.id] = exc
        return out

    def _decide_in(self, t: Target, acts: list[Action]) -> dict[str, Verdict | Exception]:
        # a deregister's snapshots the plan deletes right after it: their sharing
        # is read with the view, for DeleteAssociatedSnapshots (``apply.pipeline``)
        follow = {
            a.id: [f for f in self.followers.get(a.id, []) if f.id in self.pending]
            for a in acts
            if a.type == "deregister"
        }
        snap_ids = {a.snapshot_id or "" for a in acts if a.type in SNAPSHOT_ACTIONS}
        snap_ids |= {f.snapshot_id or "" for fs in follow.values() for f in fs}
        ec2 = self.connector.client("ec2", t.region, t.role_arn)
        view = self.reader.read(
            t, {a.image_id or "" for a in acts if a.type in IMAGE_DECIDED}, snap_ids
        )
        now = utcnow()
        ctx = self.ctx
        assessment = (
            assess(view.inventory, ctx.policy, now)
            if any(a.type in IMAGE_DECIDED for a in acts)
            else None
        )
        out: dict[str, Verdict | Exception] = {}
        for a in acts:
            if a.type in IMAGE_DECIDED:
                assert assessment is not None
                v = decide_image(ec2, a, view, assessment, ctx, now)
                if a.id in follow:
                    v = with_associated(ec2, a, v, follow[a.id], view, ctx, now)
                out[a.id] = v
            else:
                dereg = self.dereg_by_image.get(a.image_id or "")
                out[a.id] = decide_snapshot(ec2, a, view, ctx, now, dereg=dereg)
        return out

    # -- an action, in a worker ----------------------------------------------------------

    def stop(self) -> bool:
        return interrupts.stop_requested() or bool(self.journal_errors)

    def work(self, a: Action, verdict: Verdict | Exception | None) -> Ran:
        """``run``, then its final rows journaled by this worker (the scheduler reads the
        next wave meanwhile); the action counts as final once the scheduler sees it."""
        self.began.add(a.id)
        t0 = time.monotonic()
        try:
            st, code, msg, snaps = self.run(a, verdict)
        except Interrupted as exc:  # a call ended by the stop, before AWS did anything
            for x in self.unsettled.pop(a.id, []):
                self.journal(x, "stopped", "Interrupted", f"{exc.message}: AWS did not do it")
            raise
        except (_JournalDown, _NotStarted):
            raise
        except Exception as exc:  # noqa: BLE001 - journaled, reported, exit 4
            err = aws_error(exc, a.type, a.region)
            st, code, msg, snaps = "failed", err.code, err.message, {}
        self.journal(a, st, code, msg)
        for f in self.deleted_with(a, st, verdict, snaps):
            self.journal(f, "done", None, _with_image(a))
        self.cadence.took(time.monotonic() - t0)
        return st, code, msg, snaps

    def run(self, a: Action, verdict: Verdict | Exception | None) -> Ran:
        if self.stop():
            raise _NotStarted()
        if isinstance(verdict, Exception):
            raise verdict
        t = self.targets[(a.account, a.region)]
        ec2 = self.connector.client("ec2", a.region, t.role_arn)
        # Mutating calls paced to EC2's documented bucket per (account, region, API): no
        # call is spent on RequestLimitExceeded (amictl.aws.pacing, aws/ec2_limits.py).
        pace_client(ec2, a.account, a.region)
        if verdict is not None and not verdict.go:
            return self._not_go(ec2, a, verdict)
        if verdict is not None and a.type == "deregister":
            with self.ctx.lock:
                self.ctx.origins[a.image_id or ""] = set(verdict.snapshots)
            try:
                self.store.record_origin(self.checksum, a.image_id or "", list(verdict.snapshots))
            except (SQLAlchemyError, OSError) as exc:
                self.failed_write(a.id, exc)
                raise _JournalDown() from None
        self._intend(a, [a])
        snaps: dict[str, str] = {}
        if (
            verdict is not None
            and verdict.with_snapshots
            and still_as_decided(ec2, verdict)  # else the image goes alone
        ):
            # the snapshot deletions this call makes are intended too: a kill after it
            # finds them gone and done by this run (never done twice, never lost)
            self._intend(a, [self.by_id[f] for f in verdict.with_snapshots])
            out, said = deregister_with_snapshots(ec2, a)
            snaps = said or {}
            if said is not None:  # AWS said what this call did: no other snapshot is ours
                self.intended_now.difference_update(
                    f
                    for f in verdict.with_snapshots
                    if said.get(self.by_id[f].snapshot_id or "") != "success"
                )
        else:
            out = EXECUTORS[a.type].fn(ec2, a, self.prep.policy.name)
        msg = out.message + (f"; {verdict.note}" if verdict is not None and verdict.note else "")
        return out.status, ("NotFound" if out.status == "not-found" else None), msg, snaps

    def _intend(self, a: Action, acts: list[Action]) -> None:
        """The ``intended`` rows of ``acts``, before ``a``'s call (none written: no call)."""
        if not all(self.journal(x, "intended") for x in acts):
            raise _JournalDown()
        self.unsettled.setdefault(a.id, []).extend(acts)
        self.intended_now.update(x.id for x in acts)

    def _not_go(self, ec2: Any, a: Action, verdict: Verdict) -> Ran:
        """The live decision kept the image or snapshot, or found it gone."""
        if verdict.kind == "gone":
            if a.id in self.intended_before:
                # an earlier run of this plan was killed after its call
                return "done", None, f"{verdict.reason}: done by the interrupted run", {}
            if a.id in self.intended_now:
                # this run's own call did it, its answer lost (a 5xx, then a retry
                # that found it gone): a DeregisterImage's DeleteAssociatedSnapshots
                return "done", None, f"{verdict.reason}: done by this run's call", {}
            return "not-found", "NotFound", verdict.reason, {}
        return "skipped", "Recheck", verdict.reason + self._restore(ec2, a, verdict), {}

    def _restore(self, ec2: Any, a: Action, verdict: Verdict) -> str:
        """The image is kept by this policy now: undo the marks it made on it."""
        done = []
        for type_ in verdict.restore:
            try:
                o = EXECUTORS[type_].fn(ec2, a, self.prep.policy.name)
            except (ClientError, BotoCoreError) as exc:
                done.append(f"{type_} failed: {aws_error(exc, type_, a.region).message}")
                continue
            if o.status == "done":
                done.append(f"{type_}: {o.message}")
        return "; marks removed (" + "; ".join(done) + ")" if done else ""

    def deleted_with(
        self, a: Action, st: str, verdict: Verdict | Exception | None, snaps: dict[str, str]
    ) -> list[Action]:
        """The delete-snapshot actions AWS did with ``a``'s DeleteAssociatedSnapshots; a
        snapshot AWS kept (or did not report) is decided again as its own action."""
        if st != "done" or not isinstance(verdict, Verdict):
            return []
        fs = [self.by_id[fid] for fid in verdict.with_snapshots]
        return [f for f in fs if snaps.get(f.snapshot_id or "") == "success"]

    def finished(self, a: Action, fut: Future[Ran], verdict: Verdict | Exception | None) -> None:
        try:
            st, code, msg, snaps = fut.result()
        except (_JournalDown, _NotStarted, Interrupted):
            self.pending[a.id] = a  # not called: stays to do
            return
        self.record(a, st, code, msg, journaled=True)
        for f in self.deleted_with(a, st, verdict, snaps):
            if f.id in self.pending:
                del self.pending[f.id]
                self.record(f, "done", None, _with_image(a), journaled=True)

    # -- the scheduler -------------------------------------------------------------------

    def waves(self, pool: interrupts.Pool) -> None:
        """Pick a wave of ready actions, decide it live, hand it to the workers; again as
        actions finish (or a bucket refills), until all are final or a stop."""
        pending, cadence = self.pending, self.cadence
        pacer = default_pacer()
        started: Counter[tuple[str, str, str]] = Counter()
        inflight: dict[Future[Ran], tuple[Action, Verdict | Exception | None]] = {}
        finished_since: list[Action] = []  # for ``between_batches``: done since the last read
        horizon = 0.0  # how long the last wave's read took
        fresh = True  # an action finished since the last wave was picked
        seen: set[Any] = set()  # the APIs (or types) of the actions of every wave so far
        while not self.stop() and (pending or inflight):
            ready = _ready(pending, self.status, self.record)
            if not ready and not inflight:
                # a dependency cycle (only an edited plan has one): never run
                for a in list(pending.values()):
                    self.record(a, "skipped", "Dependency", "unresolvable dependency")
                pending.clear()
                break
            if self.between_batches is not None and finished_since and ready:
                self.between_batches(finished_since)
                finished_since = []
            waiting = sum(1 for a, _v in inflight.values() if a.id not in self.began)
            room = bool(ready) and (not inflight or (fresh and cadence.room(waiting)))
            if room and inflight:
                flying = {a.id: v for a, v in inflight.values()}
                room = not opens_an_api(pending.values(), flying, seen)
            apis = len({api_key(a) or a.type for a in ready})
            wave = pick(ready, started, pacer, cadence.per_api(apis), horizon) if room else []
            if not wave and ready and not inflight:
                wave = ready[:1]  # its bucket is empty: it waits in the pacer
            if wave:
                fresh = False
                seen.update(api_key(a) or a.type for a in wave)
                t0 = time.monotonic()
                try:
                    verdicts = self.decide(wave)
                except Interrupted:
                    break  # the live read was stopped: nothing of the wave was started
                except (SQLAlchemyError, OSError) as exc:  # the store, read for the view
                    self.failed_write("live view", exc)
                    break
                horizon = cadence.read_s = time.monotonic() - t0
                for a in wave:
                    if self.stop():
                        break
                    del pending[a.id]
                    v = verdicts.get(a.id)
                    inflight[pool.submit(self.work, a, v)] = (a, v)
                    if (k := api_key(a)) is not None:
                        started[k] += 1
            if not inflight:
                continue
            # an action finished, or (a wave may be picked) a bucket may have refilled
            poll = TOKEN_POLL_S if room else None
            done, _ = wait(inflight, timeout=poll, return_when=FIRST_COMPLETED)
            fresh = fresh or bool(done)
            for fut in done:
                a, v = inflight.pop(fut)
                if (k := api_key(a)) is not None:
                    started[k] -= 1
                self.finished(a, fut, v)
                finished_since.append(a)
        for fut in as_completed(list(inflight)):  # stopping: the calls in flight end
            a, v = inflight.pop(fut)
            self.finished(a, fut, v)

    # -- the end -------------------------------------------------------------------------

    def stop_signal(self) -> int | None:
        self.result.not_started = sorted(self.pending, key=action_order)
        if self.lost:
            return 15  # stopped as on SIGTERM (docs/team.md)
        return interrupts.signum() if interrupts.stop_requested() else None

    def ending(self, sig: int | None) -> str:
        if self.lost:
            return "store-lost"
        if self.journal_errors:
            return "journal-error"
        return "interrupted" if sig else "finished"

    def outcome(self, sig: int | None) -> ApplyResult:
        """The result, or the error that carries it (a lost store, a journal error, a stop)."""
        result, errors = self.result, self.journal_errors
        done, left = len(result.done), len(result.not_started)
        if self.lost:
            result.interrupted = "SIGTERM"
            gone = Interrupted(
                15,
                f"the state store stopped answering ({errors[0]}): apply stopped as on "
                f"SIGTERM: {done} actions done, {left} not started",
                hint="when the state store answers again, `amictl apply --resume` finishes the "
                "rest (it shows them and asks first); done actions are recognized, nothing is "
                "repeated",
            )
            gone.result = result
            raise gone
        if errors:
            jerr = JournalError(
                f"the journal could not be written ({errors[0]}): apply stopped; {done} actions "
                f"done, {left} not started",
                hint="free space on the state store, then run the same plan again (or "
                "`amictl apply --resume`): done actions are recognized, nothing is repeated",
            )
            jerr.result = result  # type: ignore[attr-defined]
            raise jerr
        if sig is not None and result.not_started:
            result.interrupted = "SIGTERM" if sig == 15 else "SIGINT"
            intr = Interrupted(
                sig,
                f"interrupted: {done} actions done, {left} not started",
                hint="`amictl apply --resume` finishes the rest (it shows them and asks first)",
            )
            intr.result = result
            raise intr
        return result


@functools.lru_cache(maxsize=1 << 16)
def _order(aid: str) -> tuple[int, str]:
    return action_order(aid)


def _with_image(dereg: Action) -> str:
    return f"deleted with image {dereg.image_id} (DeregisterImage DeleteAssociatedSnapshots)"


def _ready(
    pending: dict[str, Action],
    status: dict[str, str],
    record: Callable[[Action, str, str | None, str], None],
) -> list[Action]:
    """The pending actions whose dependencies are all done, in plan order; those whose
    dependency ended otherwise are recorded skipped (and leave ``pending``)."""
    ready: list[Action] = []
    for aid in sorted(pending, key=_order):
        a = pending[aid]
        deps = [status.get(d) for d in a.after]
        if any(d in FINAL and d != "done" for d in deps):
            del pending[aid]
            bad = [d for d in a.after if status.get(d) not in (None, "done")]
            record(a, "skipped", "Dependency", f"depends on {', '.join(bad)}: not done")
        elif all(d == "done" for d in deps):
            ready.append(a)
    return ready


def store_lost(store: Store, exc: BaseException) -> bool:
    """Whether a state store error means the store stopped answering (a PostgreSQL server
    down, restarted, hung past the statement timeout, or the network gone), not that it
    refused the write (a full SQLite disk)."""
    if getattr(exc, "connection_invalidated", False) or isinstance(exc, TimeoutError):
        return True
    pg = store.engine.dialect.name == "postgresql"
    return pg and isinstance(exc, (OperationalError, InterfaceError))


class _JournalDown(Exception):
    """The ``intended`` row could not be written, so the AWS call was not made."""


class _NotStarted(Exception):
    """Stopping (a signal, or the journal failed) before the action started."""
