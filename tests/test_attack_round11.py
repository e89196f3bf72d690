"""Round 11 attacks (hostile7): round 10's fixes and the ``stopped`` journal status.

Each test here failed on the code under attack; the comment above it names the bug with
its file:line then, fixed in the commit after (only "intended" rows count as an earlier
run's call; a deregister's results say which snapshots this call can have deleted; the
call state is held for exactly ``_make_api_call``; a pacer token of an attempt never sent is
given back; waiters go through ``stopping.wait``; the docs name ``stopped``). Every check reads AWS's own state or the
journal amictl wrote.

Held (no test here): ``stopped`` in the readers (``amictl journal`` prints any status;
``resumable`` and the executor treat it as not final; the HTML legend names it;
``journal_outcomes`` keeps the last row; the hash chain hashes any status; the blast radius
counts a stopped deregister as hit, live or gone: stricter, never looser); a stopped
deregister with its snapshots is resumed once, with its snapshots, by the same call; every
pool under apply/ and inventory/ is ``interrupts.Pool`` (audit/run.py's plain pool runs
outside any end_calls block), the scan's pool is made with ``end_calls=True`` before its
block, workers inherit the mark at creation; a specific ``before-call`` handler that returns
a response (a stub) pushes nothing and pops nothing; paginators and waiters make whole calls
(no state left between pages); ProxyConnectionError is raised only before the proxy
connection exists (urllib3 ``has_connected_to_proxy``); ``interrupts.sleep`` re-reads the
flag before it returns False, ``reset`` runs only before the handlers are installed; a 2 s
``interrupts.sleep`` costs 1.8 ms of CPU (the 50 ms polls are no burn).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from amictl import interrupts
from amictl.aws import pacing, stopping
from amictl.errors import AmictlError, Interrupted
from amictl.state.store import FINAL, UNSETTLED, Store
from test_apply import Cli, fleet, live_images, live_snapshots
from test_attack_round10 import paced_clean_up_after_a_stop
from test_stopping import _fresh_stop_flag  # noqa: F401  (the autouse fixture)

THROTTLED = {
    "service": "ec2",
    "action": "DeregisterImage",
    "code": "RequestLimitExceeded",
    "status": 503,
}


def _on_clients(monkeypatch, event: str, handler: Any) -> None:
    """``handler`` on ``event`` of every client amictl makes (as a library caller's hook)."""
    orig = stopping.install

    def install(c: Any) -> None:
        orig(c)
        c.meta.events.register_first(event, handler)

    monkeypatch.setattr(stopping, "install", install)


def _image_snapshots(side: Any, image: str) -> list[str]:
    img = side.describe_images(ImageIds=[image])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"] if "Ebs" in m]


# Bug: apply/executor.py:384-387 (``if a.id in intended_now``: "done by this run's call").
# ``intended_now`` holds every snapshot action journaled ``intended`` before a DeregisterImage
# with DeleteAssociatedSnapshots, whatever AWS answered for it. AWS answered that call with a
# snapshot KEPT (``client-error``: a lock another actor put on it just before); the snapshot
# is decided again as its own action, and another actor has deleted it meanwhile: the run
# reports and journals it ``done`` ("done by this run's call") although AWS said this run's
# call did not delete it. Only a snapshot AWS did not report (a lost answer) may be counted.
def test_a_snapshot_aws_kept_then_another_actor_deleted_is_not_done_by_this_run(
    env, sandbox, tmp_path, monkeypatch
):
    run = Cli(env, tmp_path, monkeypatch)
    env.load(fleet(3))
    p = run.plan()
    side = env.client("ec2")
    kept: list[str] = []

    def lock_one(params: Any = None, **_kw: Any) -> None:  # another actor, before the call
        body = (params or {}).get("body") or {}
        if not kept and body.get("DeleteAssociatedSnapshots"):
            sid = _image_snapshots(side, body["ImageId"])[0]
            side.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=1)
            kept.append(sid)

    def delete_it(**_kw: Any) -> None:  # ... and after AWS answered "kept": unlocks, deletes
        if kept and kept[0] in live_snapshots(env):
            side.unlock_snapshot(SnapshotId=kept[0])
            side.delete_snapshot(SnapshotId=kept[0])

    _on_clients(monkeypatch, "before-call.ec2.DeregisterImage", lock_one)
    orig = stopping.install

    def install(c: Any) -> None:
        orig(c)
        c.meta.events.register_last("after-call.ec2.DeregisterImage", delete_it)

    monkeypatch.setattr(stopping, "install", install)
    code, out = run.apply("--workers", "1")
    assert kept and kept[0] not in live_snapshots(env)  # gone: another actor deleted it
    res = json.loads(out)
    (aid,) = [a["id"] for a in p["actions"] if a.get("snapshot_id") == kept[0]]
    assert aid not in res["done"], (code, res)


# Bug: apply/executor.py:384-387 again, with actions.py:178-180 ("already deregistered"). The
# "done by this run's call" branch is meant for a DeregisterImage whose answer was lost and
# whose RETRY found the image gone. Another actor deregisters the image with its snapshots
# (the console's "delete associated snapshots") between amictl's last read and its call:
# AWS answers the FIRST attempt InvalidAMIID.NotFound, this run did nothing, yet each
# snapshot action is reported and journaled ``done`` "done by this run's call". botocore
# says whether the gone answer came on a retry (``ResponseMetadata.RetryAttempts``).
def test_snapshots_another_actor_deleted_before_the_first_attempt_are_not_done(
    env, sandbox, tmp_path, monkeypatch
):
    run = Cli(env, tmp_path, monkeypatch)
    env.load(fleet(3))
    p = run.plan()
    side = env.client("ec2")
    raced: list[str] = []

    def another_actor(params: Any = None, **_kw: Any) -> None:
        body = (params or {}).get("body") or {}
        if not raced and body.get("DeleteAssociatedSnapshots"):
            raced.append(body["ImageId"])
            side.deregister_image(ImageId=body["ImageId"], DeleteAssociatedSnapshots=True)

    _on_clients(monkeypatch, "before-call.ec2.DeregisterImage", another_actor)
    code, out = run.apply("--workers", "1")
    res = json.loads(out)
    theirs = {
        a["id"]
        for a in p["actions"]
        if a["type"] == "delete-snapshot" and a.get("image_id") == raced[0]
    }
    assert theirs and not theirs & set(res["done"]), (code, res)


# Bug: apply/executor.py:284 (``intended_before`` takes every UNSETTLED row, ``stopped``
# included) with :381-383 ("done by the interrupted run"). ``stopped`` is written only for a
# call a stop ended before AWS did any of it (journaled "not sent to AWS"); another actor
# then deregisters the image, and ``apply --resume`` reports and journals the action ``done``
# "by the interrupted run": the journal says amictl retired an image it never touched, and
# contradicts its own ``stopped`` row. A ``stopped`` action found gone is ``not-found``.
def test_a_stopped_action_done_by_another_actor_is_not_done_by_amictl(
    env, sandbox, tmp_path, monkeypatch
):
    run = Cli(env, tmp_path, monkeypatch)
    env.load(fleet(3))
    p = run.plan()
    sandbox.set_faults([THROTTLED])
    _on_clients(
        monkeypatch, "needs-retry.ec2.DeregisterImage", lambda **_kw: interrupts.request_stop()
    )
    code, out = run.apply("--workers", "1")
    assert code == 130, out
    monkeypatch.undo()
    interrupts.reset()  # a new process
    run = Cli(env, tmp_path, monkeypatch)
    sandbox.clear_faults()
    store = Store(env.cli_env(tmp_path)["AMICTL_STATE"])
    last = {r["action_id"]: r for r in store.journal_rows(plan_checksum=p["checksum"])}
    (dereg,) = [
        a
        for a in p["actions"]
        if last.get(a["id"], {}).get("status") == "stopped" and a["type"] == "deregister"
    ]
    assert dereg["image_id"] in live_images(env)  # never sent: AWS has the image
    env.client("ec2").deregister_image(ImageId=dereg["image_id"])  # another actor
    code, out = run("apply", "--resume", "--yes", "-o", "json")
    res = json.loads(out)
    assert dereg["id"] not in res["done"], res


# Bug: aws/pacing.py:107-119 (``take`` gives the token back only when its own wait raised)
# with aws/stopping.py:213-217 (the stop ends the call in handlers that run AFTER the pacer's
# ``before-send.ec2``: adaptive mode's send bucket, ``_end_if_stopped``). A call that got its
# pacer token at once and is then ended by the stop (waiting in the adaptive bucket under
# throttling: every in-flight worker of an apply) never reaches AWS, and its token is spent:
# round 10's give-back covers only the pacer's own wait. The next apply of a long-lived
# process (``default_pacer`` is process-wide) waits for tokens nobody used.
def test_a_call_ended_after_its_pacer_token_gives_the_token_back(env):
    env.load("images:\n  - {alias: a1, age_days: 10, tags: {family: f}}\n")
    side = env.client("ec2")
    image = side.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    pacer = pacing.Pacer(sizes={"CreateTags": (1.0, 0.01)}, sleep=stopping.sleep, headroom_s=0)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    pacing.pace_client(ec2, "acct", "us-east-1", pacer)
    interrupts.request_stop()  # Ctrl-C as the call starts: ended before it is sent
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])
    img = side.describe_images(ImageIds=[image])["Images"][0]
    assert "k" not in {t["Key"] for t in img.get("Tags", [])}  # never sent ...
    assert pacer.tokens("acct", "us-east-1", "CreateTags") > 0.5  # ... so its token is back


def _section(path: str, title: str) -> str:
    text = (Path(__file__).parent.parent / path).read_text()
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start : end if end > 0 else None]


# Bug: docs/cli.md:567 (``amictl journal``: "status (`intended`, `done`, `skipped`, `failed`,
# `not-found`)") and docs/team.md:283-290 ("Journal and resume across hosts": the statuses a
# team's runner, SQL or dashboard reads, and what a resume does with an unfinished one) do
# not name ``stopped``, the status 0ac18fe added (state/tables.py UNSETTLED). A team reading
# the journal by those docs counts a stopped action as neither final nor in flight.
def test_the_journal_docs_name_every_status_the_journal_holds():
    for path, title in (
        ("docs/cli.md", "### `amictl journal`"),
        ("docs/team.md", "## Journal and resume across hosts"),
    ):
        text = _section(path, title)
        missing = [s for s in (*FINAL, *UNSETTLED) if f"`{s}`" not in text]
        assert not missing, f"{path} {title!r} does not name {missing}"


# Bug: creation/bake.py:287 (``instance_running`` waiter) and creation/create.py:509
# (``image_available``), run inside bake's ``interrupts.cooperative()``: botocore's
# ``Waiter.wait`` polls with a plain ``time.sleep`` and never looks at the stop flag, and the
# polls are not ended (no end_calls). docs/cli.md:1290 promises "a botocore waiter [ends]
# after its current delay"; a Ctrl-C while a bake waits for its image (15 s delay, up to the
# recipe's image timeout: an hour) is seen only when the waiter ends, then reported as a
# waiter failure ("is not running"), not exit 130. Here: delay 1 s, 4 attempts.
def test_a_bakes_waiter_ends_after_its_current_delay_at_a_stop(env):
    from amictl.creation import bake
    from amictl.creation.runsteps import Waits

    b = object.__new__(bake._Bake)
    b.ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    b.recipe = SimpleNamespace(ready_timeout=4)
    b.waits = Waits(poll=0.05, waiter_delay=1)
    b.emit = lambda *_a, **_k: None
    timer = threading.Timer(0.2, interrupts.request_stop)
    timer.start()
    t0 = time.monotonic()
    with interrupts.cooperative(), pytest.raises(AmictlError) as got:
        b.wait_ready("i-0123456789abcdef0", "builder")  # never running: polled until a stop
    took = time.monotonic() - t0
    timer.join()
    assert isinstance(got.value, Interrupted) and took < 2, (took, got.value)


# Bug: aws/stopping.py:159-170, 214-216 (``_start_call`` pushes at ``before-call``; only ``after-call``
# / ``after-call-error`` pop). botocore emits ``after-call-error`` only for an exception of
# ``_make_request``: one raised after ``_start_call`` and before the request (a generic
# ``before-call`` hook of a library caller that fails, botocore's request compression or
# checksum), or a BaseException (KeyboardInterrupt outside a cooperative block) leaves the
# call's state on the thread's stack for good. With a stale "may end" state on top, a pacer
# wait made by hand after the block (pacing.py's documented use) ends at a stop and its
# clean-up call never goes: round 10's stale-state bug, by another door.
def test_a_failed_before_call_hook_leaves_no_stale_call_state(env):
    env.load("images:\n  - {alias: a1, age_days: 10, tags: {family: f}}\n")
    side = env.client("ec2")
    image = side.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)

    def audit_hook(**_kw: Any) -> None:
        raise RuntimeError("the audit sink is down")

    def a_failed_call() -> None:
        ec2.meta.events.register("before-call", audit_hook)
        with interrupts.cooperative(end_calls=True), contextlib.suppress(RuntimeError):
            ec2.describe_images(ImageIds=[image])  # its hook fails: the call never goes
        ec2.meta.events.unregister("before-call", audit_hook)

    got = paced_clean_up_after_a_stop(ec2, image, a_failed_call)
    assert got == ["sent"]
    img = side.describe_images(ImageIds=[image])["Images"][0]
    assert {t["Key"]: t["Value"] for t in img.get("Tags", [])}.get("k") == "v"
