"""Round 10 attacks (hostile6): "a stop ends waiting calls" (commit 1b4a955, aws/stopping.py).

Each test here failed on the code under attack; the comment above it names the bug, fixed
in the commit after (a one-way "undone", refused connections as never sent, a stack of call
states ended at after-call, a thread-local end-calls mark carried by ``interrupts.Pool``,
the pacer's token given back, this run's own "intended" rows, a lock-free stop flag). Every check reads AWS's own state (the tag on the image) or the call's own outcome.

Held (no test here): the rebuilt retry handler is botocore 1.44.18's standard + adaptive
registration (same objects, same events; ``needs-retry.ec2`` runs before the generic
``needs-retry`` handlers, so the back-off is slept after the limiter saw the answer, as
botocore's own sleep); the Connector's ``max_attempts`` override reaches
``total_max_attempts``; a mutating call after one 5xx is retried to its answer; the send
bucket's stop-aware wait neither spins nor leaks its lock; the cooperative depths are
restored by ``finally`` (no leak); the executor's ``run`` re-checks the stop before any
call, so a view made incomplete by an ended read never drives a call. Explored, not kept
(too slow for the suite): an apply of fleet(6) with 500s and throttles on every mutating
call, stopped at its 1st..11th mutating answer (also with "AWS did it, then answered 500"
on DeregisterImage), then ``apply --resume``: 32 runs, each ended with AWS's images and
snapshots as the plan says and every action done exactly once in the journal (the one
misreport found is the not-found test below).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from amictl import interrupts
from amictl.aws import pacing, stopping
from amictl.aws.session import AwsConfig, Connector
from amictl.errors import Interrupted
from test_stopping import _fresh_stop_flag, _image, _tag, _tags  # noqa: F401  (the autouse fixture)

THROTTLE = {
    "service": "ec2",
    "action": "CreateTags",
    "code": "RequestLimitExceeded",
    "status": 503,
    "count": 1,
}


def _tag_or_ended(ec2: Any, image: str) -> Interrupted | None:
    """Tag the image in an end-calls block: None, or the Interrupted that ended the call."""
    with interrupts.cooperative(end_calls=True):
        try:
            _tag(ec2, image)
        except Interrupted as exc:
            return exc
    return None


# Bug: aws/stopping.py ``_Retry.needs_retry`` (the ``_call.undone = ...`` assignment)
# overwrites "can AWS have done it" with the LAST answer alone. A mutating call whose first
# attempt may have been done (a 5xx: AWS did it, the answer was lost) and whose retry was
# then throttled is ended at a stop as "AWS did none of it": the caller (apply) records
# "not started" while AWS did the call. The module's own contract says "when no attempt of
# it can have been done"; the flag must stay False once an attempt may have been done.
def test_a_mutating_call_done_then_throttled_is_not_ended_as_undone(env, sandbox):
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    side = env.client("ec2")  # AWS itself: the first attempt was done, its answer lost
    sandbox.set_faults(
        [{"service": "ec2", "action": "CreateTags", "code": "InternalError", "status": 500}]
    )
    answers: list[int] = []

    def aws_did_it_then_5xx(response: Any = None, **_kw: Any) -> None:
        answers.append(1)
        if len(answers) == 1:  # the 500 of the first attempt: AWS had done the call
            sandbox.clear_faults()
            side.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])
            sandbox.set_faults([THROTTLE])  # the retry is throttled
        else:
            interrupts.request_stop()  # Ctrl-C while the throttled retry waits

    ec2.meta.events.register_first("needs-retry.ec2", aws_did_it_then_5xx)
    ended = _tag_or_ended(ec2, image)
    assert _tags(env, image)["k"] == "v"  # AWS did it ...
    assert ended is None, "the call was ended as 'AWS did none of it'"  # ... so never 'undone'


# Bug: interrupts.py ``calls_end`` / ``_ending`` is one counter for the whole process, read
# by aws/stopping.py ``_start_call``: while ANY thread is inside ``cooperative(end_calls=True)``
# (an apply or a scan of a long-lived service), every call of every other thread ends at a
# stop, a bake's or rollout's clean-up included (terminate the builder, tag the image
# abandoned), which the module promises "are never ended".
def test_a_clean_up_call_is_not_ended_by_another_threads_end_calls_block(env, sandbox):
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    inside, leave = threading.Event(), threading.Event()

    def an_apply_elsewhere() -> None:
        with interrupts.cooperative(end_calls=True):
            inside.set()
            leave.wait(10)

    other = threading.Thread(target=an_apply_elsewhere)
    other.start()
    try:
        assert inside.wait(5)
        sandbox.set_faults([THROTTLE])
        interrupts.request_stop()
        # this thread's clean-up, as bake's finally
        with interrupts.cooperative(), contextlib.suppress(Interrupted):
            ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])
    finally:
        leave.set()
        other.join(5)
    assert _tags(env, image).get("k") == "v", "the clean-up call was ended by another thread"


# Bug: aws/stopping.py ``sleep`` (and ``ending``) read the thread's ``_call`` state, which
# ``_start_call`` sets at a call's start and nothing clears at its end. The pacer's
# documented use (pacing.py: ``pacer.take(...)`` before ``ec2.deregister_image(...)``) outside
# any end_calls block, on a thread whose last call was made inside one, ends with
# Interrupted at a stop: the clean-up it paces never goes.
def paced_clean_up_after_a_stop(ec2: Any, image: str, before: Callable[[], None]) -> list[Any]:
    """On a fresh thread: ``before`` (calls in an end_calls block), then a stop, then a
    clean-up paced by hand outside any such block (pacing.py's documented use). Returns
    ``["sent"]`` when the clean-up call went, else the Interrupted that ended it."""
    pacer = pacing.Pacer(sizes={"CreateTags": (1.0, 5.0)}, sleep=stopping.sleep, headroom_s=0)
    got: list[Any] = []

    def worker() -> None:
        before()
        interrupts.request_stop()
        with interrupts.cooperative():  # clean-up after the stop, paced by hand
            try:
                pacer.take("a", "us-east-1", "CreateTags")
                pacer.take("a", "us-east-1", "CreateTags")  # the bucket is empty: waits
                _tag(ec2, image)
                got.append("sent")
            except Interrupted as exc:
                got.append(exc)

    th = threading.Thread(target=worker)
    th.start()
    th.join(10)
    return got


def test_a_pacer_wait_outside_an_end_calls_block_is_not_ended_by_a_stale_call(env):
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)

    def a_scan_done() -> None:
        with interrupts.cooperative(end_calls=True):
            ec2.describe_images(ImageIds=[image])

    assert paced_clean_up_after_a_stop(ec2, image, a_scan_done) == ["sent"]
    assert _tags(env, image)["k"] == "v"


def test_the_pacer_and_bucket_waits_still_end_inside_an_end_calls_block(env):
    """The guard the attacks above must keep: a paced wait of a call that may end does end."""
    pacer = pacing.Pacer(
        sizes={"CreateTags": (1.0, 0.2)}, sleep=pacing.stopping.sleep, headroom_s=0
    )
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-west-2", env.role_arn)
    pacing.pace_client(ec2, "a", "us-west-2", pacer)
    pacer.take("a", "us-west-2", "CreateTags")  # the one token
    threading.Timer(0.3, interrupts.request_stop).start()
    t0 = time.monotonic()
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])
    assert time.monotonic() - t0 < 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Bug: aws/stopping.py ``_Retry.needs_retry`` counts every non-throttle failure of a
# mutating call as "AWS may have done it", a connection that was never made included
# (EndpointConnectionError, ConnectTimeoutError: no byte of the request left). The network
# drops mid-apply (VPN, proxy), the operator presses Ctrl-C, and every in-flight mutating
# call goes on through all its attempts: max_attempts x connect_timeout (8 x 10 s with the
# defaults, 80 s) instead of "within a second" (docs/cli.md "Interrupts").
def test_a_mutating_call_whose_connection_was_never_made_ends_at_a_stop():
    conn = Connector(
        AwsConfig(
            endpoint_url=f"http://127.0.0.1:{_closed_port()}",
            access_key="AKIAEXAMPLE",
            secret_key="secret",
            regions=["us-east-1"],
            max_attempts=4,
            connect_timeout=1,
        )
    )
    ec2 = conn.client("ec2", "us-east-1")
    attempts: list[int] = []
    ec2.meta.events.register_first("before-send.ec2", lambda **_kw: attempts.append(1))
    ec2.meta.events.register_first(
        "needs-retry.ec2", lambda **_kw: interrupts.request_stop()
    )  # Ctrl-C after the first refused connection
    with interrupts.cooperative(end_calls=True):
        try:
            ec2.create_tags(Resources=["ami-12345678"], Tags=[{"Key": "k", "Value": "v"}])
            ended: BaseException | None = None
        except Interrupted as exc:
            ended = exc
        except botocore.exceptions.EndpointConnectionError as exc:
            ended = exc
    assert len(attempts) == 1, f"{len(attempts)} attempts after the stop"
    assert isinstance(ended, Interrupted)


# Bug: aws/stopping.py keeps ONE call state per thread (``_Call``), not per call: a client
# call made from inside an event handler of another call (a library caller's audit hook,
# a credential or metrics helper on an amictl client) resets the outer call's state at its
# ``before-call`` (``_start_call``). The outer mutating call had a 5xx (may have been done,
# so it must be retried to its answer); after the nested read it is "undone" again and a
# stop ends it: its retry never goes and its caller records "not started".
def test_a_nested_call_does_not_make_a_maybe_done_outer_call_undone(env, sandbox):
    image = _image(env)
    conn = env.connector()
    ec2 = conn.client("ec2", "us-east-1", env.role_arn)
    audit = conn.client("ec2", "us-east-1", env.role_arn, max_attempts=2)  # another client
    sandbox.set_faults(
        [
            {
                "service": "ec2",
                "action": "CreateTags",
                "code": "InternalError",
                "status": 500,
                "count": 1,
            }
        ]
    )

    def audit_hook(event_name: str = "", **_kw: Any) -> None:
        if event_name.endswith("CreateTags") and not interrupts.stop_requested():
            audit.describe_images(ImageIds=[image])  # a nested read, answered
            interrupts.request_stop()  # then Ctrl-C, while the 5xx'd call waits its retry

    ec2.meta.events.register_last("needs-retry.ec2", audit_hook)
    ended = _tag_or_ended(ec2, image)
    assert ended is None, "a call that may have been done was ended as undone"
    assert _tags(env, image)["k"] == "v"


# Bug: aws/pacing.py ``Pacer.take`` reserves its token before it sleeps, and a wait ended by
# a stop (aws/stopping.py ``sleep`` raising Interrupted) keeps the reservation: the call is
# never sent but its token is spent. The process-wide pacer (``default_pacer``) of a
# long-lived process then makes the next apply wait for every token the stopped one
# reserved and never used (a wave of queued workers: seconds per API).
def test_a_pacer_wait_ended_by_a_stop_gives_its_token_back(env):
    image = _image(env)
    pacer = pacing.Pacer(
        sizes={"CreateTags": (1.0, 0.5)}, sleep=pacing.stopping.sleep, headroom_s=0
    )
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    pacing.pace_client(ec2, "acct", "us-east-1", pacer)
    ec2.create_tags(Resources=[image], Tags=[{"Key": "a", "Value": "1"}])  # the one token
    timer = threading.Timer(0.2, interrupts.request_stop)
    timer.start()
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])  # waits 2 s
    timer.join()
    assert "k" not in _tags(env, image)  # never sent ...
    assert pacer.tokens("acct", "us-east-1", "CreateTags") > -0.5  # ... so its token is back


# Bug (older than 1b4a955; found attacking its "5xx on a mutating call" path): apply/executor.py
# ``run`` (the "gone" verdict, ``if a.id in intended_before``) and ``_deleted_with``. A
# DeregisterImage with DeleteAssociatedSnapshots that AWS did but answered with a 5xx is
# retried; the retry finds the image gone ("already deregistered", no DeleteSnapshotResults),
# so the covered snapshot actions, journaled ``intended`` by THIS run just before the call,
# are decided again, found gone, and reported ``not-found`` ("snapshot not found"): the run
# says it did not delete snapshots its own call deleted (a resume would say "done by the
# interrupted run": only an earlier run's ``intended`` rows count).
def test_snapshots_deleted_by_a_deregister_whose_answer_was_lost_are_done(
    env, sandbox, tmp_path, monkeypatch
):
    from test_apply import Cli, fleet, live_snapshots

    run = Cli(env, tmp_path, monkeypatch)
    env.load(fleet(4))
    p = run.plan()
    side = env.client("ec2")
    fault = {"service": "ec2", "action": "DeregisterImage", "code": "InternalError", "status": 500}
    sandbox.set_faults([dict(fault, count=1)])
    did: list[str] = []

    def aws_did_it(response: Any = None, request_dict: Any = None, **_kw: Any) -> None:
        code = (response[1] or {}).get("Error", {}).get("Code") if response else None
        body = (request_dict or {}).get("body") or {}
        if code == "InternalError" and not did:
            did.append(body["ImageId"])  # AWS deregistered it, with its snapshots
            side.deregister_image(ImageId=body["ImageId"], DeleteAssociatedSnapshots=True)

    orig = stopping.install

    def install(c: Any) -> None:
        orig(c)
        c.meta.events.register_first("needs-retry.ec2.DeregisterImage", aws_did_it)

    monkeypatch.setattr(stopping, "install", install)
    code, out = run.apply("--workers", "1")
    assert code == 0, out
    res = json.loads(out)
    deleted_with = {
        a["id"]
        for a in p["actions"]
        if a["type"] == "delete-snapshot" and a.get("image_id") == did[0]
    }
    assert deleted_with and not {
        a["snapshot_id"] for a in p["actions"] if a["id"] in deleted_with
    } & live_snapshots(env)
    assert not deleted_with & set(res["not_found"]), res["not_found"]
    assert deleted_with <= set(res["done"])


# Bug (older than 1b4a955, which widens it): interrupts.py ``_handler`` -> ``request_stop`` ->
# ``_stop.set()`` takes the Event's lock inside a signal handler. A handler runs in the main
# thread between two bytecodes, also between ``Event.wait`` taking that (non-reentrant) lock
# and its ``Condition.wait`` releasing it; ``interrupts.sleep`` (``_stop.wait``) is what the
# main thread now runs in every back-off of a call made in an end_calls block (aws/stopping.py
# ``sleep``: apply's live reads on the main thread, e.g. DescribeRegions), as in rollout's
# and bake's polls before. A Ctrl-C landing there deadlocks: the stop never ends. Simulated
# here on a fresh Event (a stuck daemon thread holds only that one).
def test_a_signal_landing_inside_the_stop_wait_does_not_deadlock(monkeypatch):
    """The handler sets a plain flag (no lock, no Event): it returns even while the thread it
    interrupts holds the module's lock, and a wait on another thread still wakes."""
    monkeypatch.setattr(interrupts, "_depth", [1])  # inside apply's cooperative block
    woke: list[bool] = []
    sleeper = threading.Thread(target=lambda: woke.append(interrupts.sleep(30)), daemon=True)
    sleeper.start()
    handled = threading.Event()

    def main_thread_holding_the_lock() -> None:
        with interrupts._lock:  # cooperative() entering or leaving
            interrupts._handler(signal.SIGINT, None)  # the signal lands here
        handled.set()

    th = threading.Thread(target=main_thread_holding_the_lock, daemon=True)
    th.start()
    assert handled.wait(1), "the signal handler deadlocked on the stop flag's lock"
    sleeper.join(2)
    assert woke == [True]
