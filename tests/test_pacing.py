"""The client-side pacer (aws/pacing.py) and the one bucket table it shares with the sandbox.

A fake clock: ``sleep`` advances it, so waits are exact and the tests take no time.
"""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from amictl.aws import ec2_limits
from amictl.aws.pacing import Pacer
from amictl.sandbox.aws_model import AwsModel, bucket_class


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def pacer(clock: FakeClock, **kw: object) -> Pacer:
    kw.setdefault("headroom_s", 0.0)  # the exact bucket, unless a test says otherwise
    return Pacer(clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_documented_sizes_per_action_and_category() -> None:
    # the page's own rows ...
    assert ec2_limits.size("DeregisterImage") == (100, 5)
    assert ec2_limits.size("DeleteSnapshot") == (100, 5)
    assert ec2_limits.size("CreateTags") == (100, 10)
    assert ec2_limits.size("CopyImage") == (100, 1)
    assert ec2_limits.size("ModifyImageAttribute") == (100, 5)
    # ... and the categories elsewhere
    assert ec2_limits.size("EnableImageDeprecation") == (50, 5)  # mutating
    assert ec2_limits.size("DescribeImages") == (100, 20)  # non-mutating
    assert ec2_limits.size("DescribeSnapshots", []) == (50, 10)  # unfiltered, unpaginated
    assert ec2_limits.size("DescribeSnapshots", ["SnapshotId.1"]) == (100, 20)
    assert ec2_limits.category("RequestSpotInstances") == "resource-intensive"


def test_sandbox_model_uses_the_same_table() -> None:
    model = AwsModel()
    for action in ("DeregisterImage", "CreateTags", "CopyImage", "DisableImage", "DescribeImages"):
        assert model.size(action, {"MaxResults": ["5"]}) == ec2_limits.size(action)
    assert bucket_class("DeregisterImage", {}) == "uncategorized"
    assert bucket_class("DescribeInstances", {}) == "unfiltered"
    # a test's category override shrinks the category's own-sized actions too; an action
    # override only that action
    model.configure({"buckets": {"mutating": [3, 1], "CreateTags": [2, 1]}})
    assert model.size("DeregisterImage", {}) == (3, 1)
    assert model.size("CreateTags", {}) == (2, 1)
    assert model.size("DescribeImages", {}) == (100, 20)
    model.configure({"defaults": True})
    assert model.size("DeregisterImage", {}) == (100, 5)


def test_burst_then_refill_rate() -> None:
    clock = FakeClock()
    p = pacer(clock)
    t0 = clock.now
    waits = [p.take("111", "us-east-1", "DeregisterImage") for _ in range(110)]
    assert waits[:100] == [0.0] * 100  # the bucket's burst goes at once
    assert all(w == pytest.approx(0.2, abs=1e-4) for w in waits[100:])  # then 5 a second
    assert clock.now - t0 == pytest.approx(10 * 0.2, abs=1e-4)


def test_buckets_are_per_account_region_and_api() -> None:
    clock = FakeClock()
    p = pacer(clock, sizes={"DeregisterImage": (2, 1), "DeleteSnapshot": (2, 1)})
    for _ in range(2):
        assert p.take("111", "us-east-1", "DeregisterImage") == 0
    # another API, region or account does not wait for the empty one
    assert p.take("111", "us-east-1", "DeleteSnapshot") == 0
    assert p.take("111", "eu-west-1", "DeregisterImage") == 0
    assert p.take("222", "us-east-1", "DeregisterImage") == 0
    assert p.take("111", "us-east-1", "DeregisterImage") == pytest.approx(1.0, abs=1e-4)


def test_idle_time_refills_up_to_the_capacity_only() -> None:
    clock = FakeClock()
    p = pacer(clock, sizes={"CreateTags": (4, 2)})
    for _ in range(4):
        p.take("a", "r", "CreateTags")
    clock.now += 1.0  # 2 tokens back
    assert p.tokens("a", "r", "CreateTags") == pytest.approx(2, abs=1e-4)
    clock.now += 100.0
    assert p.tokens("a", "r", "CreateTags") == pytest.approx(4, abs=1e-4)


def test_throttled_empties_the_local_bucket() -> None:
    clock = FakeClock()
    p = pacer(clock, sizes={"DeleteSnapshot": (10, 5)})
    assert p.take("a", "r", "DeleteSnapshot") == 0
    p.throttled("a", "r", "DeleteSnapshot")
    assert p.take("a", "r", "DeleteSnapshot") == pytest.approx(0.2, abs=1e-4)


def test_headroom_holds_back_part_of_the_burst() -> None:
    clock = FakeClock()
    p = pacer(clock, headroom_s=0.2)  # DeregisterImage 100 / 5: one token held back
    waits = [p.take("a", "r", "DeregisterImage") for _ in range(100)]
    assert waits[:99] == [0.0] * 99 and waits[99] == pytest.approx(0.2, abs=1e-4)
    q = pacer(clock, headroom_s=0.5)  # CreateTags 100 / 10: five
    assert sum(q.take("a", "r", "CreateTags") == 0 for _ in range(100)) == 95


def test_share_leaves_room_for_other_clients() -> None:
    clock = FakeClock()
    p = pacer(clock, sizes={"DeregisterImage": (1, 4)}, share=0.5)
    p.take("a", "r", "DeregisterImage")
    assert p.take("a", "r", "DeregisterImage") == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError):
        Pacer(share=0)


def test_threads_each_wait_for_their_own_token() -> None:
    """Concurrent callers: reservations are serialized, sleeps happen outside the lock, and
    the calls go out at the refill rate however many threads ask (a real clock, small
    bucket)."""
    p = Pacer(sizes={"DeregisterImage": (2, 50)}, headroom_s=0)
    sent: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        p.take("a", "r", "DeregisterImage")
        with lock:
            sent.append(time.monotonic())

    t0 = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 2 at once, then 10 more at 50 a second: at least 0.2 s, and not serialized sleeps
    assert time.monotonic() - t0 >= 0.19
    assert time.monotonic() - t0 < 1.0
    sent.sort()
    # never more than capacity + rate x elapsed by any moment
    for i, at in enumerate(sent):
        assert i + 1 <= 2 + (at - t0) * 50 + 1e-6 + 1


@settings(max_examples=60, deadline=None)
@example(cap=1, refill=5.0, gaps=[0.0, 0.0, 0.0])  # exactly one refill time apart
@given(
    cap=st.integers(1, 20),
    refill=st.sampled_from([0.5, 1.0, 5.0, 20.0]),
    gaps=st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=80),
)
def test_never_exceeds_the_bucket(cap: int, refill: float, gaps: list[float]) -> None:
    """Whatever the arrival pattern, the calls the pacer lets through fit the bucket: the
    server's model (AwsModel's bucket, same size) admits every one of them."""
    from amictl.sandbox.aws_model import _Bucket

    clock = FakeClock()
    p = pacer(clock, sizes={"X": (cap, refill)})
    server = _Bucket(cap, refill, cap, clock.now)
    for gap in gaps:
        clock.now += gap
        p.take("a", "r", "X")
        assert server.take(clock.now + 1e-9), "the pacer sent a call into an empty bucket"


def test_floor_is_the_slowest_bucket() -> None:
    calls = {"CreateTags": 320, "DeregisterImage": 320, "DeleteSnapshot": 320}
    # CreateTags (320-100)/10 = 22 s; the other two (320-100)/5 = 44 s each, in parallel
    assert ec2_limits.floor_seconds(calls) == pytest.approx(44.0, abs=1e-4)
    assert ec2_limits.floor_seconds({"DeregisterImage": 50}) == 0.0


def test_paced_client_wastes_no_call_on_the_sandbox_buckets(env) -> None:  # type: ignore[no-untyped-def]
    """Against the sandbox's --aws-model with a small CreateTags bucket: 8 threads making 30
    calls through a paced client get no RequestLimitExceeded; unpaced, they do."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    from amictl.aws.pacing import pace_client

    ami = env.load("images:\n  - {alias: x, age_days: 10}\n")["aliases"]["x"]
    sb = env.sandbox
    cfg = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=16)

    def client():  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "ec2", endpoint_url=sb.endpoint, region_name="us-east-1", config=cfg, **env.creds()
        )

    def burst(ec2) -> tuple[int, float]:  # type: ignore[no-untyped-def]
        with ThreadPoolExecutor(8) as pool:
            # The client's 8 connections opened first (each held 50 ms): the pacer spaces the
            # calls' departures, and a first connection's set-up (slow on a cold sandbox)
            # would bunch their arrivals whatever the pacer does.
            sb.set_aws_model(enabled=True, latency_ms=50)
            barrier = threading.Barrier(8)
            list(
                pool.map(lambda _i: (barrier.wait(), ec2.describe_images(ImageIds=[ami])), range(8))
            )
        sb.set_aws_model(enabled=True, latency_ms=0, buckets={"CreateTags": [10, 25]})
        before = sb.aws_model_state()["throttled"].get("ec2.CreateTags", 0)
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: ec2.create_tags(
                        Resources=[ami], Tags=[{"Key": "k", "Value": str(i)}]
                    ),
                    range(30),
                )
            )
        wall = time.monotonic() - t0
        return sb.aws_model_state()["throttled"].get("ec2.CreateTags", 0) - before, wall

    try:
        paced = client()
        # the burst held back (0.4 s of refill: the whole bucket): on a loaded machine a thread
        # can send late, and those behind it arrive together, up to the bucket's 10 at once
        pacer = Pacer(sizes={"CreateTags": (10, 25)}, headroom_s=0.4)
        pace_client(paced, env.account, "us-east-1", pacer)
        throttled, wall = burst(paced)
        assert throttled == 0
        assert wall >= (30 - 10) / 25 - 0.05  # and no faster than the bucket allows
        assert pacer.calls == 30
        throttled, _wall = burst(client())
        assert throttled > 0  # the same burst unpaced: calls wasted on RequestLimitExceeded
    finally:
        sb.reset_aws_model()
