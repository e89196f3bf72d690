"""Round 12 attacks (hostile12): the scan's head start for the launch-template slices
(``scan._head_start``, ``HEAD_START_S``) and the pacing of bulk reads
(``pacing.BULK_READS``: DescribeLaunchTemplateVersions paced by the process-wide Pacer).

Held (plain tests below):
- a listing denied in one region: that slice is incomplete with AccessDenied, its ASGs
  DependencyIncomplete, the other region complete, and the wait ends at once;
- a listing that hangs holds the other slices at most ``HEAD_START_S``;
- a throttled listing is retried and the scan completes;
- an exception in a slice before ``listed`` (a non-AWS error) ends the wait and the
  slice is recorded incomplete with its error;
- kinds without "launch-templates" never wait;
- ``lt_cache`` warm for one region and cold for the other: only the cold one is waited
  for, and the results equal an uncached scan's;
- a role that cannot be assumed (one account of two) fails the scan loudly (AwsError
  naming AssumeRole), never a silently short inventory;
- a stop during a paced wait of the version reads ends the scan promptly, and every
  token taken for an attempt that was never sent is given back (pacer calls == sends);
- apply's mutating calls on the client a scan made and paced are still paced by the
  process-wide pacer (``pace_client`` is a no-op the second time, same pacer);
- a paced version read that AWS throttles anyway (the real bucket smaller than the
  pacer's) is retried, the local bucket emptied, and the scan completes whole;
- the results (references, images, slices) are identical with the head start, without
  it (``HEAD_START_S = 0``) and without the pacing (``BULK_READS`` empty).

Broke, fixed (the two tests at the end):
- a stop during the head start still started every other slice: ``_head_start`` returned
  on the stop and the loop after it submitted the other slices (now: nothing is submitted
  after a stop; the scan raises Interrupted at once);
- a warm scan waited for the listing of every region that has no templates:
  ``lt_cache.known`` was empty for such a region, so it counted as cold on every run
  (now: the cache keeps a row saying the slice was read whole, ``LtVersionCache.read_before``).
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

import pytest

import test_scan_head_start
from amictl import interrupts
from amictl.aws import pacing, stopping
from amictl.errors import AwsError, Interrupted
from amictl.inventory.lt_cache import LtVersionCache
from amictl.inventory.scan import scan
from amictl.state.store import Store
from test_scan_head_start import REGIONS, _hook_clients, fleet
from test_stopping import _fresh_stop_flag  # noqa: F401  (the autouse fixture)

model = test_scan_head_start.model  # the fixtures: the sandbox's model reset after a test
pacer = test_scan_head_start.pacer  # ... and a fresh process-wide pacer

scan_mod = importlib.import_module("amictl.inventory.scan")
KINDS = ["launch-templates", "launch-configurations", "auto-scaling-groups", "images"]


def _head_start_log(monkeypatch: Any) -> list[tuple[int, float]]:
    """(events waited for, seconds waited) of every ``_head_start``."""
    log: list[tuple[int, float]] = []
    real = scan_mod._head_start

    def logged(ev: Any, fu: Any) -> None:
        t0 = time.monotonic()
        try:
            real(ev, fu)
        finally:
            log.append((len(ev), time.monotonic() - t0))

    monkeypatch.setattr(scan_mod, "_head_start", logged)
    return log


def _summary(inv: Any) -> tuple[Any, ...]:
    return (
        sorted((r.image_id, r.kind, r.id) for r in inv.references),
        sorted(i.image_id for i in inv.images),
        sorted((s.account, s.region, s.kind, s.complete, s.items) for s in inv.slices),
    )


def _slice(inv: Any, region: str, kind: str) -> Any:
    return next(s for s in inv.slices if s.region == region and s.kind == kind)


def test_a_listing_denied_in_one_region_is_recorded_and_holds_nothing(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    env.load(fleet(3))
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 30.0)
    env.sandbox.set_faults(
        [
            {
                "service": "ec2",
                "region": "eu-west-1",
                "action": "DescribeLaunchTemplates",
                "code": "AccessDenied",
                "status": 403,
            }
        ]
    )
    t0 = time.monotonic()
    inv = scan(env.connector(REGIONS), kinds=KINDS)
    assert time.monotonic() - t0 < 10
    lt = _slice(inv, "eu-west-1", "launch-templates")
    assert not lt.complete and lt.error_code == "AccessDenied"
    assert _slice(inv, "eu-west-1", "auto-scaling-groups").error_code in {
        None,
        "DependencyIncomplete",
    }
    assert not _slice(inv, "eu-west-1", "auto-scaling-groups").complete or (
        _slice(inv, "eu-west-1", "auto-scaling-groups").items == 0
    )
    assert all(s.complete for s in inv.slices if s.region == "us-east-1")
    assert not any(r.region == "eu-west-1" and "launch-template" in r.kind for r in inv.references)


def test_a_hanging_listing_holds_the_others_at_most_head_start(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    env.load(fleet(3))
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 0.4)
    log = _head_start_log(monkeypatch)
    gate = threading.Event()
    first_other: list[float] = []

    def hook(region: str, op: str, **_kw: Any) -> None:
        if op == "DescribeLaunchTemplates" and region == "eu-west-1":
            gate.wait(5)  # hangs until another slice's call goes out
        elif op.startswith("Describe") and "LaunchTemplate" not in op and not gate.is_set():
            first_other.append(time.monotonic())
            gate.set()

    _hook_clients(monkeypatch, "before-send.*", hook)
    inv = scan(env.connector(REGIONS), kinds=KINDS)
    assert all(s.complete for s in inv.slices)
    assert first_other, "the others started while the listing hung"
    assert len(log) == 1 and log[0][0] == 2
    assert log[0][1] < 0.4 + 0.5  # HEAD_START_S, with a generous margin


def test_a_throttled_listing_is_retried_and_the_scan_completes(env: Any, model: Any) -> None:
    env.load(fleet(3))
    env.sandbox.set_faults(
        [
            {
                "service": "ec2",
                "action": "DescribeLaunchTemplates",
                "code": "RequestLimitExceeded",
                "status": 503,
                "count": 1,
            }
        ]
    )
    inv = scan(env.connector(REGIONS), kinds=KINDS)
    assert env.sandbox.fault_state()["injected"] == 1
    assert all(s.complete for s in inv.slices)
    assert len([r for r in inv.references if r.kind == "launch-template-version"]) == 6


def test_an_exception_before_listed_ends_the_wait_and_is_recorded(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    env.load(fleet(3))
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 30.0)

    def hook(region: str, op: str, **_kw: Any) -> None:
        if op == "DescribeLaunchTemplates" and region == "us-east-1":
            raise RuntimeError("a bug in a handler before the listing")

    _hook_clients(monkeypatch, "before-call.*", hook)
    t0 = time.monotonic()
    inv = scan(env.connector(REGIONS), kinds=KINDS)
    assert time.monotonic() - t0 < 10
    lt = _slice(inv, "us-east-1", "launch-templates")
    assert not lt.complete and lt.error_code == "RuntimeError" and "a bug" in (lt.error or "")
    assert not _slice(inv, "us-east-1", "auto-scaling-groups").complete
    assert _slice(inv, "eu-west-1", "launch-templates").complete


def test_kinds_without_launch_templates_never_wait(env: Any, model: Any, monkeypatch: Any) -> None:
    env.load(fleet(3))
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 30.0)
    log = _head_start_log(monkeypatch)
    inv = scan(env.connector(REGIONS), kinds=["images", "instances"])
    assert all(s.complete for s in inv.slices)
    assert [n for n, _s in log] == [0] and log[0][1] < 0.1


def test_a_cache_warm_in_one_region_and_cold_in_the_other(
    env: Any, model: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    env.load(fleet(3))
    cache = LtVersionCache(Store(f"sqlite:///{tmp_path}/s.db"))
    scan(env.connector(["us-east-1"]), kinds=KINDS, lt_cache=cache)  # us-east-1 warm
    log = _head_start_log(monkeypatch)
    cache = LtVersionCache(cache.store)
    warm_cold = scan(env.connector(REGIONS), kinds=KINDS, lt_cache=cache)
    assert [n for n, _s in log] == [1]  # eu-west-1 only
    plain = scan(env.connector(REGIONS), kinds=KINDS)
    assert _summary(warm_cold) == _summary(plain)
    assert all(s.complete for s in warm_cold.slices)


def test_a_role_that_cannot_be_assumed_fails_loudly(env: Any, model: Any) -> None:
    env.load(fleet(1))
    other = "arn:aws:iam::" + str(int(env.account) + 500) + ":role/amictl-test"
    conn = env.connector(REGIONS)
    conn.role_arns = [other, env.role_arn]  # two accounts (as --accounts-file gives them)
    env.sandbox.set_faults(
        [{"service": "sts", "action": "AssumeRole", "code": "AccessDenied", "status": 403,
          "count": 1}]
    )  # fmt: skip
    with pytest.raises(AwsError) as err:
        scan(conn, kinds=KINDS)
    assert "AssumeRole" in str(err.value.args[0] if err.value.args else err.value)


def test_a_stop_during_paced_version_reads_ends_promptly_and_keeps_every_token(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    env.load(fleet(16))
    p = pacing.Pacer(
        sizes={"DescribeLaunchTemplateVersions": (2, 4)}, sleep=stopping.sleep, headroom_s=0
    )
    monkeypatch.setattr(pacing, "_default", p)
    for region in REGIONS:  # AWS throttled the API before: every call of it is paced
        p.throttled(env.account, region, "DescribeLaunchTemplateVersions")
    sent: list[str] = []
    lock = threading.Lock()

    def answered(region: str, op: str, response: Any = None, **_kw: Any) -> None:
        # an answer came back (an attempt a stop ended before sending has none)
        if op == "DescribeLaunchTemplateVersions" and response is not None:
            with lock:
                sent.append(region)
                if len(sent) == 3:  # the stop comes while the others wait for tokens
                    stopped_at.append(time.monotonic())
                    interrupts.request_stop()

    stopped_at: list[float] = []
    _hook_clients(monkeypatch, "needs-retry.*", answered)
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        scan(env.connector(REGIONS), kinds=["launch-templates"])
    t0 = stopped_at[0]
    assert time.monotonic() - t0 < 3
    time.sleep(0.5)  # the slices' threads end their waits (pool shut down without waiting)
    with lock:
        assert 0 < len(sent) < 32
        assert p.calls == len(sent)  # every token of an unsent attempt given back


def test_apply_after_a_scan_is_paced_by_the_same_pacer(
    env: Any, model: Any, pacer: pacing.Pacer
) -> None:
    env.load(fleet(1))
    conn = env.connector(["us-east-1"])
    scan(conn, kinds=["launch-templates", "images"])
    ec2 = conn.client("ec2", "us-east-1", env.role_arn)
    assert ec2._amictl_paced
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    before = pacer.calls
    pacing.pace_client(ec2, env.account, "us-east-1")  # what apply's executor does
    ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])
    assert pacer.calls == before + 1
    assert pacer.tokens(env.account, "us-east-1", "CreateTags") < pacer.size("CreateTags")[0]


def test_a_paced_read_throttled_anyway_is_retried_and_the_scan_completes(
    env: Any, model: Any, pacer: pacing.Pacer
) -> None:
    env.load(fleet(8))
    env.sandbox.set_aws_model(
        enabled=True, latency_ms=5, buckets={"DescribeLaunchTemplateVersions": [3, 20]}
    )
    inv = scan(env.connector(REGIONS), kinds=["launch-templates"])
    throttled = env.sandbox.aws_model_state()["throttled"]
    assert int(throttled.get("ec2.DescribeLaunchTemplateVersions", 0)) > 0
    assert all(s.complete for s in inv.slices)
    assert len([r for r in inv.references if r.kind == "launch-template-version"]) == 16
    # the throttled answers emptied the local buckets (they were far from empty otherwise)
    for region in REGIONS:
        assert pacer.tokens(env.account, region, "DescribeLaunchTemplateVersions") < 90


def test_results_identical_with_and_without_head_start_and_pacing(
    env: Any, model: Any, monkeypatch: Any, pacer: pacing.Pacer
) -> None:
    env.load(fleet(4))
    kinds = [*KINDS, "instances", "snapshots"]
    base = scan(env.connector(REGIONS), kinds=kinds)
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 0.0)
    no_head = scan(env.connector(REGIONS), kinds=kinds)
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 1.5)
    monkeypatch.setattr(pacing, "BULK_READS", frozenset())
    unpaced = scan(env.connector(REGIONS), kinds=kinds)
    assert all(s.complete for s in base.slices)
    assert _summary(base) == _summary(no_head) == _summary(unpaced)
    assert len([r for r in base.references if r.kind == "launch-template-version"]) == 8


# Was a bug (fixed: scan.py checks the stop after the head start). A stop (Ctrl-C) during the head start makes
# ``_head_start`` return (line 69), and the loop right after it submits every other slice
# anyway (lines 174-176); the stop is only seen by the ``while waiting`` loop after that.
# Those slices start on the pool's idle threads, make their clients (other regions:
# botocore client construction) and call AWS (ended by aws/stopping.py before sending), and
# keep running after ``scan`` raised (the pool is shut down without waiting). "Nothing new
# starts" after a stop (scan.py:180). Fix: after ``_head_start`` check
# ``interrupts.stop_requested()`` (set ``stopped``, ``interrupts.check()``) before the
# submit loop, or skip submitting when it is set.
def test_a_stop_during_the_head_start_starts_no_other_slice(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    env.load(fleet(3))
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 30.0)
    started: list[str] = []

    def hook(region: str, op: str, **_kw: Any) -> None:
        if op == "DescribeLaunchTemplates" and region == "eu-west-1":
            interrupts.sleep(5)  # the listing hangs, until the stop
        elif (
            op.startswith("Describe") and "LaunchTemplate" not in op and interrupts.stop_requested()
        ):
            started.append(op)

    _hook_clients(monkeypatch, "before-call.*", hook)
    threading.Timer(0.5, interrupts.request_stop).start()
    t0 = time.monotonic()
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        scan(env.connector(REGIONS), kinds=KINDS)
    assert time.monotonic() - t0 < 3  # prompt (held)
    time.sleep(0.5)  # what the pool's threads do after the command returned
    assert started == []


# Was a bug (fixed: LtVersionCache.read_before). A region "needs" the head start when
# ``lt_cache.known(account, region)`` is empty; a region without any launch template never
# has a cached row (lt_cache.flush writes rows per template), so every warm scan of an
# account with empty regions (``--region all``: most of them) holds all the other slices
# until those regions' listings are back (client made in the slice's thread + one call each),
# although no version is to be read there. "A warm scan (versions cached) does not wait."
# Fix: remember the (account, region)s whose listing was complete and empty (a row in the
# cache, or ``known`` returning a marker), or only wait for regions the previous scan saw
# templates in; at least never count a region the cache has read complete as cold.
def test_a_warm_scan_with_a_region_without_templates_does_not_wait(
    env: Any, model: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    lines = ["regions: [us-east-1, eu-west-1]", "images:"]
    lines.append("  - {alias: a, age_days: 50, region: us-east-1}")
    lines.append("launch_templates:")
    lines += [
        f"  - {{alias: lt{n}, name: lt{n}, region: us-east-1, versions: [{{image: a}}]}}"
        for n in range(3)
    ]
    env.load("\n".join(lines) + "\n")
    cache = LtVersionCache(Store(f"sqlite:///{tmp_path}/s.db"))
    scan(env.connector(REGIONS), kinds=KINDS, lt_cache=cache)  # cold: both regions read
    log = _head_start_log(monkeypatch)
    cache = LtVersionCache(cache.store)  # the next run's
    inv = scan(env.connector(REGIONS), kinds=KINDS, lt_cache=cache)
    assert all(s.complete for s in inv.slices)
    assert cache.misses == 0  # warm: no version read from AWS
    assert [n for n, _s in log] == [0]  # ... so nothing to wait for
