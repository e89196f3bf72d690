"""Execute a reviewed plan: refusals, lock, journal, live re-check, bounded concurrency.

``prepare`` runs every refusal (exit 3) and reads what the confirmation must show
(Recycle Bin coverage per account/region) before anything changes; ``execute`` runs
the actions. Every action is journaled ``intended`` before its AWS call and ``done``,
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
import datetime as dt
import functools
import re
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
from ..durations import format_duration, human_duration
from ..errors import Interrupted, JournalError, SafetyError
from ..keep import assess, effective_holds
from ..keep.decide import STAGES
from ..model import parse_time
from ..policy.plan_model import Action, Plan, action_order
from ..recyclebin import coverage
from ..state import timeouts
from ..state.store import FINAL, UNSETTLED, Store
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
from .recheck import Context, Verdict, decide_image, decide_snapshot, utcnow
from .trust import sign_limits

Progress = Callable[[Action, str, str], None]
Ran = tuple[str, str | None, str, dict[str, str]]  # status, code, message, snapshot results
BatchHook = Callable[[list[Action]], None]
IMAGE_DECIDED = ("mark", *STAGES)
SNAPSHOT_ACTIONS = ("delete-snapshot", "archive-snapshot")
DECIDED = (*IMAGE_DECIDED, *SNAPSHOT_ACTIONS)
TOKEN_POLL_S = 0.05  # how often a wave waiting on an empty request bucket looks again
CLOCK_SKEW = dt.timedelta(minutes=5)


def check_plan(plan: Plan, opts: ApplyOptions, now: dt.datetime | None = None) -> list[str]:
    """The refusals that need no AWS call (exit 3). Returns notes for the user."""
    now = now or dt.datetime.now(dt.UTC)
    notes: list[str] = []
    plan_now = parse_time(plan.now)
    created = parse_time(plan.created_at)
    assert plan_now is not None and created is not None  # validated by Plan.from_dict
    if plan_now > now + CLOCK_SKEW:
        raise SafetyError(
            f"the plan was made for {plan.now}, later than the real time ({now:%Y-%m-%dT%H:%M:%SZ}): "
            "a plan made with `plan --now` in the future is a preview and is never applied",
            hint="make the plan without --now",
        )
    if created > now + CLOCK_SKEW:
        raise SafetyError(
            f"the plan says it was made at {plan.created_at}, in the future",
            hint="make a new plan with `amictl plan`",
        )
    if not plan.inventory.get("complete", False):
        raise SafetyError(
            "the plan was made from an INCOMPLETE inventory ("
            + "; ".join(str(x) for x in plan.inventory.get("incomplete", []))
            + ")",
            hint="fix access to those regions/kinds (or leave them out with --region) and plan again",
        )
    if now - created > opts.max_age:
        raise SafetyError(
            f"the plan is {human_duration(now - created)} old "
            f"(the limit is {human_duration(opts.max_age)}, --max-age {format_duration(opts.max_age)})",
            hint="make a fresh plan, or pass --max-age with a longer limit",
        )
    unsafe = [a for a in plan.actions if a.unsafe]
    if unsafe and not opts.force_unsafe:
        raise SafetyError(
            f"{len(unsafe)} actions retire images that are IN USE or SHARED (a rule says "
            "in_use: false or shared: false): " + ", ".join(a.image_id or "" for a in unsafe[:5]),
            hint="pass --force-unsafe only if you really mean it",
        )
    dereg = [a for a in plan.actions if a.type == "deregister"]
    if len(dereg) > opts.max_destroy:
        raise SafetyError(
            f"the plan deregisters {len(dereg)} images, more than --max-destroy {opts.max_destroy}",
            hint=f"review the plan, then pass --max-destroy {len(dereg)}",
        )
    return notes


def recycle_bin_coverage(connector: Connector, target: Target) -> dict[str, Any]:
    """Whether Recycle Bin rules keep deregistered images and deleted snapshots recoverable
    in this account/region, and for how long (``amictl.recyclebin``), as JSON-ready data."""
    return coverage(connector, target, max_attempts=2).to_dict()


def describe_coverage(c: dict[str, Any]) -> str:
    return str(c.get("summary", ""))


def unrecoverable(coverage: dict[str, dict[str, Any]]) -> list[str]:
    """The ``account/region`` places of :attr:`Prepared.recycle_bin` where a deleted image
    or snapshot would NOT be recoverable (no Recycle Bin rule keeps it)."""
    return sorted(
        where
        for where, c in coverage.items()
        if not all(c.get(k, {}).get("recoverable") for k in ("images", "snapshots"))
    )


def _role_for(connector: Connector, account: str) -> str | None:
    for arn in connector.role_arns:
        m = re.match(r"^arn:aws[\w-]*:iam::(\d{12}):", arn)
        if m and m.group(1) == account:
            return arn
    return None


def prepare(
    connector: Connector, plan: Plan, opts: ApplyOptions, store: Store | None = None
) -> Prepared:
    """Every refusal, before anything changes: raises SafetyError (exit 3); an AWS error
    on the way is an AwsError naming the call (exit 1)."""
    try:
        return _prepare(connector, plan, opts, store)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "apply (checks before the first action)") from None


def _prepare(connector: Connector, plan: Plan, opts: ApplyOptions, store: Store | None) -> Prepared:
    notes = check_plan(plan, opts)
    policy = plan.policy_spec()
    targets = {
        (a.account, a.region): Target(a.account, a.region, _role_for(connector, a.account))
        for a in plan.actions
    }
    callers: dict[str, str] = {}
    for t in targets.values():
        if t.account not in callers:
            ident = connector.identity(t.role_arn)
            callers[t.account] = ident["arn"]
            if ident["account"] != t.account:
                raise SafetyError(
                    f"the plan is for account {t.account} but the credentials are for "
                    f"{ident['account']}",
                    hint=f"pass --role-arn for {t.account}",
                )
    live_blast_radius(connector, plan, policy, targets, opts, store)
    destroying = {
        (a.account, a.region) for a in plan.actions if a.type in ("deregister", "delete-snapshot")
    }
    coverage: dict[str, Any] = {}
    if opts.recycle_bin_check:
        for key in sorted(destroying):
            c = recycle_bin_coverage(connector, targets[key])
            coverage[f"{key[0]}/{key[1]}"] = c
            if policy.require_recycle_bin and not all(
                c.get(n, {}).get("recoverable") for n in ("images", "snapshots")
            ):
                raise SafetyError(
                    f"{key[0]}/{key[1]}: deletions would not be recoverable "
                    f"({describe_coverage(c)}) and the policy requires Recycle Bin",
                    hint="amictl recycle-bin ensure --retention 7d",
                )
    return Prepared(plan, policy, targets, callers, coverage, notes)


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
    plan = prep.plan
    checksum = plan.checksum
    result = ApplyResult(checksum, recycle_bin=prep.recycle_bin, caller=prep.callers)
    ctx = Context(prep.policy, effective_holds(prep.policy.holds), opts.force_unsafe)
    reader = LiveReader(
        connector,
        prep.policy.families,
        plan_regions(plan.inventory, list(plan.actions)),
        store,
        prep.policy.iac,
        every_region=opts.every_region,
    )
    targets = prep.targets
    callers = prep.callers
    journal_errors: list[str] = []
    lost: list[str] = []  # the store stopped answering (server down, hung, network)

    def failed_write(what: str, exc: Exception) -> None:
        journal_errors.append(f"{what}: {str(exc).splitlines()[0][:200]}")
        if store_lost(store, exc):
            lost.append(what)

    def journal(a: Action, st: str, code: str | None = None, msg: str | None = None) -> bool:
        try:
            store.journal_write(
                plan_checksum=checksum,
                action_id=a.id,
                type=a.type,
                account=a.account,
                region=a.region,
                resource=a.snapshot_id or a.image_id or "",
                status=st,
                error_code=code,
                message=(msg or "")[:2000] or None,
                caller=callers.get(a.account),
            )
            return True
        except (SQLAlchemyError, OSError) as exc:
            failed_write(f"{a.id} {st}", exc)
            return False

    lock_keys = [f"{a}/{r}" for a, r in sorted(targets)]
    timeouts.journal(), timeouts.lock_check()  # a bad value is said now, before any change
    limits = opts.to_dict()
    limits_sig = sign_limits(prep.key, checksum, limits) if prep.key else None
    try:
        store.save_plan(checksum, plan.to_dict())
    except (SQLAlchemyError, OSError) as exc:
        raise JournalError(
            f"cannot write to the state store: {str(exc).splitlines()[0][:200]}",
            hint="free space or fix --state, then apply again; nothing was changed",
        ) from None
    holder = ", ".join(sorted(set(callers.values()))) or None
    with store.lock(lock_keys, owner=f"apply {checksum[:12]}", caller=holder):
        # Again under the lock: another apply may have deregistered images since `prepare`
        # (two operators confirming at once), which changes what this plan would leave.
        live_blast_radius(connector, plan, prep.policy, targets, opts, store)
        run_id = store.start_apply_run(
            checksum, limits, plan_signature=prep.signature, limits_signature=limits_sig
        )
        previous = store.journal_final_states(checksum)
        # "stopped": the run was stopped before AWS answered (aws/stopping.py), which AWS
        # cannot have done; looked at live first all the same, as after a kill
        intended_before = {aid for aid, st in previous.items() if st in UNSETTLED}
        for image_id, snaps in store.origins(checksum).items():
            ctx.origins[image_id] = set(snaps)  # recorded by an earlier run of this plan
        status: dict[str, str] = {}
        # the actions whose "intended" rows this run wrote for a call in flight
        unsettled: dict[str, list[Action]] = {}
        intended_now: set[str] = set()  # ... and every action it wrote one for
        for a in plan.actions:
            st = previous.get(a.id)
            if st == "done":
                status[a.id] = "done"
                result.already_done.append(a.id)
            elif st in FINAL:
                status[a.id] = st
                result.final_earlier[a.id] = st
        pending = {a.id: a for a in plan.actions if a.id not in status}
        by_id = {a.id: a for a in plan.actions}

        followers = snapshot_followers(plan.actions)

        dereg_by_image = {
            d.image_id: d for d in plan.actions if d.type == "deregister" and d.image_id
        }

        def _dereg_of(a: Action) -> Action | None:
            """The plan's deregister of the snapshot action's image, if it has one."""
            return dereg_by_image.get(a.image_id or "")

        def decide(batch: list[Action]) -> dict[str, Verdict | Exception]:
            """One live view per account/region of the batch, read now; every verdict
            from the planner's own decision on it."""
            out: dict[str, Verdict | Exception] = {}
            groups: dict[tuple[str, str], list[Action]] = defaultdict(list)
            for a in batch:
                if a.type in DECIDED:
                    groups[(a.account, a.region)].append(a)
            for key, acts in sorted(groups.items()):
                t = targets[key]
                # a deregister's snapshots the plan deletes right after it: their sharing
                # is read with the view, for DeleteAssociatedSnapshots (``apply.pipeline``)
                follow = {
                    a.id: [f for f in followers.get(a.id, []) if f.id in pending]
                    for a in acts
                    if a.type == "deregister"
                }
                snap_ids = {a.snapshot_id or "" for a in acts if a.type in SNAPSHOT_ACTIONS}
                snap_ids |= {f.snapshot_id or "" for fs in follow.values() for f in fs}
                try:
                    ec2 = connector.client("ec2", t.region, t.role_arn)
                    view = reader.read(
                        t, {a.image_id or "" for a in acts if a.type in IMAGE_DECIDED}, snap_ids
                    )
                    now = utcnow()
                    assessment = (
                        assess(view.inventory, ctx.policy, now)
                        if any(a.type in IMAGE_DECIDED for a in acts)
                        else None
                    )
                    for a in acts:
                        if a.type in IMAGE_DECIDED:
                            assert assessment is not None
                            v = decide_image(ec2, a, view, assessment, ctx, now)
                            if a.id in follow:
                                v = with_associated(ec2, a, v, follow[a.id], view, ctx, now)
                            out[a.id] = v
                        else:
                            out[a.id] = decide_snapshot(ec2, a, view, ctx, now, dereg=_dereg_of(a))
                except (ClientError, BotoCoreError) as exc:
                    for a in acts:
                        out[a.id] = exc
            return out

        def restore(ec2: Any, a: Action, verdict: Verdict) -> str:
            """The image is kept by this policy now: undo the marks it made on it."""
            done = []
            for type_ in verdict.restore:
                try:
                    o = EXECUTORS[type_].fn(ec2, a, prep.policy.name)
                except (ClientError, BotoCoreError) as exc:
                    done.append(f"{type_} failed: {aws_error(exc, type_, a.region).message}")
                    continue
                if o.status == "done":
                    done.append(f"{type_}: {o.message}")
            return "; marks removed (" + "; ".join(done) + ")" if done else ""

        def run(a: Action, verdict: Verdict | Exception | None) -> Ran:
            if interrupts.stop_requested() or journal_errors:
                raise _NotStarted()
            if isinstance(verdict, Exception):
                raise verdict
            t = targets[(a.account, a.region)]
            ec2 = connector.client("ec2", a.region, t.role_arn)
            # Mutating calls paced to EC2's documented bucket per (account, region, API): no
            # call is spent on RequestLimitExceeded (amictl.aws.pacing, aws/ec2_limits.py).
            pace_client(ec2, a.account, a.region)
            if verdict is not None and not verdict.go:
                if verdict.kind == "gone":
                    if a.id in intended_before:
                        # an earlier run of this plan was killed after its call
                        return "done", None, f"{verdict.reason}: done by the interrupted run", {}
                    if a.id in intended_now:
                        # this run's own call did it, its answer lost (a 5xx, then a retry
                        # that found it gone): a DeregisterImage's DeleteAssociatedSnapshots
                        return "done", None, f"{verdict.reason}: done by this run's call", {}
                    return "not-found", "NotFound", verdict.reason, {}
                return "skipped", "Recheck", verdict.reason + restore(ec2, a, verdict), {}
            if verdict is not None and a.type == "deregister":
                with ctx.lock:
                    ctx.origins[a.image_id or ""] = set(verdict.snapshots)
                try:
                    store.record_origin(checksum, a.image_id or "", list(verdict.snapshots))
                except (SQLAlchemyError, OSError) as exc:
                    failed_write(a.id, exc)
                    raise _JournalDown() from None
            if not journal(a, "intended"):
                raise _JournalDown()
            unsettled[a.id] = [a]
            intended_now.add(a.id)
            snaps: dict[str, str] = {}
            if (
                verdict is not None
                and verdict.with_snapshots
                and still_as_decided(ec2, verdict)  # else the image goes alone
            ):
                # the snapshot deletions this call makes are intended too: a kill after it
                # finds them gone and done by this run (never done twice, never lost)
                if not all(journal(by_id[f], "intended") for f in verdict.with_snapshots):
                    raise _JournalDown()
                unsettled[a.id] += [by_id[f] for f in verdict.with_snapshots]
                intended_now.update(verdict.with_snapshots)
                out, snaps = deregister_with_snapshots(ec2, a)
            else:
                out = EXECUTORS[a.type].fn(ec2, a, prep.policy.name)
            msg = out.message + (
                f"; {verdict.note}" if verdict is not None and verdict.note else ""
            )
            return out.status, ("NotFound" if out.status == "not-found" else None), msg, snaps

        def record(a: Action, st: str, code: str | None, msg: str, journaled: bool = False) -> None:
            status[a.id] = st
            if not journaled:
                journal(a, st, code, msg)
            if st == "done":
                result.done.append(a.id)
            elif st == "skipped":
                result.skipped[a.id] = msg
            elif st == "not-found":
                result.not_found[a.id] = msg
            else:
                result.failed[a.id] = msg
            if progress:
                progress(a, st, msg)

        def stop() -> bool:
            return interrupts.stop_requested() or bool(journal_errors)

        def work(a: Action, verdict: Verdict | Exception | None) -> Ran:
            """``run``, then its final rows journaled by this worker (the scheduler reads the
            next wave meanwhile); the action counts as final once the scheduler sees it."""
            began.add(a.id)
            t0 = time.monotonic()
            try:
                st, code, msg, snaps = run(a, verdict)
            except Interrupted as exc:  # a call ended by the stop, before AWS did anything
                for x in unsettled.pop(a.id, []):
                    journal(x, "stopped", "Interrupted", f"{exc.message}: not sent to AWS")
                raise
            except (_JournalDown, _NotStarted):
                raise
            except Exception as exc:  # noqa: BLE001 - journaled, reported, exit 4
                err = aws_error(exc, a.type, a.region)
                st, code, msg, snaps = "failed", err.code, err.message, {}
            journal(a, st, code, msg)
            for f in _deleted_with(a, st, verdict, snaps):
                journal(f, "done", None, _with_image(a))
            cadence.took(time.monotonic() - t0)
            return st, code, msg, snaps

        def _deleted_with(
            a: Action, st: str, verdict: Verdict | Exception | None, snaps: dict[str, str]
        ) -> list[Action]:
            """The delete-snapshot actions AWS did with ``a``'s DeleteAssociatedSnapshots; a
            snapshot AWS kept (or did not report) is decided again as its own action."""
            if st != "done" or not isinstance(verdict, Verdict):
                return []
            fs = [by_id[fid] for fid in verdict.with_snapshots]
            return [f for f in fs if snaps.get(f.snapshot_id or "") == "success"]

        def finished(a: Action, fut: Future[Ran], verdict: Verdict | Exception | None) -> None:
            try:
                st, code, msg, snaps = fut.result()
            except (_JournalDown, _NotStarted, Interrupted):
                pending[a.id] = a  # not called: stays to do
                return
            record(a, st, code, msg, journaled=True)
            for f in _deleted_with(a, st, verdict, snaps):
                if f.id in pending:
                    del pending[f.id]
                    record(f, "done", None, _with_image(a), journaled=True)

        pacer = default_pacer()
        started: Counter[tuple[str, str, str]] = Counter()
        inflight: dict[Future[Ran], tuple[Action, Verdict | Exception | None]] = {}
        finished_since: list[Action] = []  # for ``between_batches``: done since the last read
        horizon = 0.0  # how long the last wave's read took
        workers = max(1, opts.workers)
        # actions of one API decided on one live read (opts.batch, at most pipeline.WAVE_MAX;
        # 0: what the workers start within about one read) and when the next wave is picked
        cadence = Cadence(workers, opts.batch)
        began: set[str] = set()  # actions a worker has taken up
        fresh = True  # an action finished since the last wave was picked
        seen: set[Any] = set()  # the APIs (or types) of the actions of every wave so far
        with (
            interrupts.cooperative(end_calls=True),
            interrupts.Pool(workers) as pool,
        ):
            while not stop() and (pending or inflight):
                ready = _ready(pending, status, record)
                if not ready and not inflight:
                    # a dependency cycle (only an edited plan has one): never run
                    for a in list(pending.values()):
                        record(a, "skipped", "Dependency", "unresolvable dependency")
                    pending.clear()
                    break
                if between_batches is not None and finished_since and ready:
                    between_batches(finished_since)
                    finished_since = []
                waiting = sum(1 for a, _v in inflight.values() if a.id not in began)
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
                        verdicts = decide(wave)
                    except Interrupted:
                        break  # the live read was stopped: nothing of the wave was started
                    except (SQLAlchemyError, OSError) as exc:  # the store, read for the view
                        failed_write("live view", exc)
                        break
                    horizon = cadence.read_s = time.monotonic() - t0
                    for a in wave:
                        if stop():
                            break
                        del pending[a.id]
                        v = verdicts.get(a.id)
                        inflight[pool.submit(work, a, v)] = (a, v)
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
                    finished(a, fut, v)
                    finished_since.append(a)
            for fut in as_completed(list(inflight)):  # stopping: the calls in flight end
                a, v = inflight.pop(fut)
                finished(a, fut, v)
        result.not_started = sorted(pending, key=action_order)
        sig = interrupts.signum() if interrupts.stop_requested() else None
        if lost:
            sig = 15  # stopped as on SIGTERM (docs/team.md)
        end = (
            "store-lost"
            if lost
            else "journal-error"
            if journal_errors
            else "interrupted"
            if sig
            else "finished"
        )
        with contextlib.suppress(SQLAlchemyError, OSError):
            store.end_apply_run(run_id, end)
    if lost:
        result.interrupted = "SIGTERM"
        gone = Interrupted(
            15,
            f"the state store stopped answering ({journal_errors[0]}): apply stopped as on "
            f"SIGTERM: {len(result.done)} actions done, {len(result.not_started)} not started",
            hint="when the state store answers again, `amictl apply --resume` finishes the rest "
            "(it shows them and asks first); done actions are recognized, nothing is repeated",
        )
        gone.result = result
        raise gone
    if journal_errors:
        jerr = JournalError(
            "the journal could not be written ("
            + journal_errors[0]
            + f"): apply stopped; {len(result.done)} actions done, {len(result.not_started)} not "
            "started",
            hint="free space on the state store, then run the same plan again (or "
            "`amictl apply --resume`): done actions are recognized, nothing is repeated",
        )
        jerr.result = result  # type: ignore[attr-defined]
        raise jerr
    if sig is not None and result.not_started:
        result.interrupted = "SIGTERM" if sig == 15 else "SIGINT"
        intr = Interrupted(
            sig,
            f"interrupted: {len(result.done)} actions done, {len(result.not_started)} not started",
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
