"""Round 13 attacks (hostile13): bulk reads paced from their bucket's first throttle on
(``pacing.BULK_READS``, ``Pacer.limited``), and that throttle kept from the client's adaptive
rate limiter (``stopping.pacer_answers`` / ``stopping._limit``).

Changed after the round (its caveat: with every throttle of a bulk read kept from the
limiter, the send rate never came down when another client spends the same bucket): only
the throttle of an attempt sent unpaced, the one that starts the pacing, is the pacer's to
answer; an attempt sent paced and throttled anyway is fed to the limiter, as botocore
would (``pacing.PACED_SEND``; the tests below that throttle a paced retry say so).

Attacked, and held (plain tests):
- the flag is per response: the retry's answer of the same throttled bulk read reaches the
  limiter (a success), the throttle itself does not;
- a throttled bulk read, then a throttled mutating call on the same thread and client: the
  second enables the limiter (also when the bulk read ran out of attempts);
- a call made from inside the bulk read's ``needs-retry`` handlers, between the pacer's hook
  and the limiter (same client, another client; throttled): its throttle reaches its
  limiter, the outer bulk read's does not; the reverse nesting (a bulk read inside a
  throttled describe) too;
- two threads throttled at once on the same client (a bulk read and another read): the
  other read's throttle reaches the limiter;
- a stop while paced bulk reads wait for tokens ends the scan promptly, and every pacer
  token of an attempt never sent is given back (``Pacer.calls`` == paced sends);
- a throttle of another API (a read, a mutating call) never starts pacing the bulk reads;
  a throttle in one region paces that region only (the other's reads stay unpaced);
- a bulk read throttled on every attempt stops after max attempts (sends == max_attempts)
  and its slice is recorded incomplete with RequestLimitExceeded, the other region whole;
- paced bulk reads under a real bucket far smaller than the pacer's (1 + 10/s against
  8 + 200/s) are retried and the scan completes whole (botocore's back-off spaces them;
  with the back-off cut to 10 ms, outside this file, the slices end incomplete with
  RequestLimitExceeded: recorded, never silently short).

Broke, fixed (the last test):
- a client paced with ``pace_client`` but not made by the Connector (no
  ``stopping.install``), called from inside a tracked call, flagged the OUTER call: the
  outer call's own throttle never reached the limiter. The mark is now on the throttled
  request itself (its context, ``stopping.pacer_answers(request_dict)``), not the thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.retries import adaptive, standard

import test_scan_head_start
from amictl import interrupts
from amictl.aws import pacing, stopping
from amictl.errors import Interrupted
from amictl.inventory.scan import scan
from test_scan_head_start import REGIONS, _hook_clients, fleet
from test_stopping import _fresh_stop_flag  # noqa: F401  (the autouse fixture)

model = test_scan_head_start.model  # the fixtures: the sandbox's model reset after a test
pacer = test_scan_head_start.pacer  # ... and a fresh process-wide pacer

DLTV = "DescribeLaunchTemplateVersions"
RLE = "RequestLimitExceeded"


@pytest.fixture
def fast_backoff(monkeypatch: Any) -> None:
    """botocore's retry back-off of 10 ms (retries, attempts and quota unchanged)."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.01)


class Fed:
    """Every response the clients' adaptive rate limiters are fed: (limiter, op, throttle)."""

    def __init__(self, monkeypatch: Any) -> None:
        self.seen: list[tuple[Any, str, bool]] = []
        self.lock = threading.Lock()
        real = adaptive.ClientRateLimiter.on_receiving_response
        fed = self

        def spy(self: Any, **kw: Any) -> None:
            resp = kw.get("response")
            parsed = resp[1] if isinstance(resp, tuple) and len(resp) > 1 else {}
            code = (parsed or {}).get("Error", {}).get("Code")
            op = getattr(kw.get("operation"), "name", "?")
            if op in {"AssumeRole", "GetCallerIdentity"}:  # the connector's own (STS)
                return real(self, **kw)
            with fed.lock:
                fed.seen.append((self, op, code == RLE))
            real(self, **kw)

        monkeypatch.setattr(adaptive.ClientRateLimiter, "on_receiving_response", spy)

    def ops(self, throttle: bool | None = None) -> list[str]:
        with self.lock:
            return [op for _l, op, t in self.seen if throttle is None or t == throttle]

    def enabled(self, op: str) -> bool:
        """The limiter that was fed ``op`` is enabled (a throttle reached it)."""
        with self.lock:
            lims = [lim for lim, o, _t in self.seen if o == op]
        return bool(lims) and all(lim._enabled for lim in lims)


def _faults(env: Any, *rules: dict[str, Any]) -> None:
    env.sandbox.set_faults([{"service": "ec2", "code": RLE, "status": 503, **r} for r in rules])


def _client(env: Any, region: str = "us-east-1", conn: Any = None, **kw: Any) -> Any:
    conn = conn or env.connector(REGIONS, **kw)
    c = conn.client("ec2", region, env.role_arn)
    pacing.pace_client(c, env.account, region)
    return c


def _setup(env: Any) -> tuple[str, str]:
    """A launch template and an image: (template id, image id)."""
    env.load(fleet(1))
    ec2 = env.client("ec2")
    lt = ec2.describe_launch_templates()["LaunchTemplates"][0]["LaunchTemplateId"]
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    return lt, image


# --- the flag never leaks -------------------------------------------------------------------


def test_a_throttle_of_a_paced_bulk_read_reaches_the_limiter(
    env: Any, model: Any, pacer: pacing.Pacer, fast_backoff: None, monkeypatch: Any
) -> None:
    """Once its bucket is paced, a bulk read throttled anyway (another client spends the same
    bucket) is fed to the limiter, as botocore would: the rate must come down. Only the
    throttle that starts the pacing is the pacer's to answer."""
    lt, _image = _setup(env)
    fed = Fed(monkeypatch)
    ec2 = _client(env)
    pacer.throttled(env.account, "us-east-1", DLTV)  # AWS throttled it before: paced
    _faults(env, {"action": DLTV, "count": 1})
    assert ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]
    assert env.sandbox.fault_state()["injected"] == 1
    assert fed.ops(throttle=True) == [DLTV]
    assert fed.enabled(DLTV)


def test_the_retry_s_answer_reaches_the_limiter_the_throttle_does_not(
    env: Any, model: Any, pacer: pacing.Pacer, fast_backoff: None, monkeypatch: Any
) -> None:
    lt, _image = _setup(env)
    fed = Fed(monkeypatch)
    ec2 = _client(env)
    _faults(env, {"action": DLTV, "count": 1})
    assert ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]
    assert env.sandbox.fault_state()["injected"] == 1
    assert fed.ops() == [DLTV]  # one response fed: the retry's answer
    assert fed.ops(throttle=True) == []
    assert not fed.enabled(DLTV)
    assert pacer.limited(env.account, "us-east-1", DLTV)


@pytest.mark.parametrize("bulk_fails", [False, True])
def test_a_throttled_mutating_call_after_a_throttled_bulk_read_enables_the_limiter(
    env: Any,
    model: Any,
    pacer: pacing.Pacer,
    fast_backoff: None,
    monkeypatch: Any,
    bulk_fails: bool,
) -> None:
    lt, image = _setup(env)
    fed = Fed(monkeypatch)
    ec2 = _client(env, max_attempts=2)
    _faults(env, {"action": DLTV} if bulk_fails else {"action": DLTV, "count": 1})
    if bulk_fails:  # out of attempts: the last throttle is the call's answer
        with pytest.raises(Exception, match=RLE):
            ec2.describe_launch_template_versions(LaunchTemplateId=lt)
    else:
        ec2.describe_launch_template_versions(LaunchTemplateId=lt)
    # the first throttle starts the pacing and is the pacer's; a retry sent paced and
    # throttled again is fed to the limiter (another client spends the bucket)
    attempts = ec2.meta.config.retries["total_max_attempts"]
    again = [DLTV] * (attempts - 1) if bulk_fails else []
    assert fed.ops(throttle=True) == again
    assert fed.enabled(DLTV) == bulk_fails
    _faults(env, {"action": "CreateTags", "count": 1})
    ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])
    assert fed.ops(throttle=True) == [*again, "CreateTags"]
    assert fed.enabled("CreateTags")


def _nest(client: Any, event: str, once: list[Any], inner: Any) -> None:
    """Run ``inner()`` from ``client``'s ``event`` handler the first time it fires: after the
    pacer's ``needs-retry.ec2`` hook (registered first), before the limiter's
    (``needs-retry``)."""

    def h(**_kw: Any) -> None:
        if not once:
            once.append(1)
            inner()

    client.meta.events.register(event, h)


def _bulk_read_inside_a_throttled_read(
    env: Any, monkeypatch: Any, outer: Any, event: str, inner: Any, lt: str
) -> None:
    """``outer``'s DescribeRegions is throttled once; from its ``event`` handler, ``inner``
    makes a bulk read that is throttled once too (the pacer answers that one): the outer
    call's throttle still reaches the limiter, and only it."""
    fed = Fed(monkeypatch)
    _faults(env, {"action": DLTV, "count": 1}, {"action": "DescribeRegions", "count": 1})
    once: list[Any] = []
    _nest(
        outer,
        f"{event}.ec2.DescribeRegions",
        once,
        lambda: inner.describe_launch_template_versions(LaunchTemplateId=lt),
    )
    outer.describe_regions()
    assert once and env.sandbox.fault_state()["injected"] == 2
    assert fed.ops(throttle=True) == ["DescribeRegions"]
    assert fed.enabled("DescribeRegions")


@pytest.mark.parametrize("other_client", [False, True])
def test_a_nested_throttled_call_inside_a_bulk_read_s_throttle_reaches_the_limiter(
    env: Any,
    model: Any,
    pacer: pacing.Pacer,
    fast_backoff: None,
    monkeypatch: Any,
    other_client: bool,
) -> None:
    lt, _image = _setup(env)
    conn = env.connector(REGIONS)
    outer = _client(env, conn=conn)
    inner = _client(env, "eu-west-1", conn=conn) if other_client else outer
    fed = Fed(monkeypatch)
    _faults(env, {"action": DLTV, "count": 1}, {"action": "DescribeRegions", "count": 1})
    once: list[Any] = []
    _nest(outer, f"needs-retry.ec2.{DLTV}", once, lambda: inner.describe_regions())
    outer.describe_launch_template_versions(LaunchTemplateId=lt)
    assert once and env.sandbox.fault_state()["injected"] == 2
    assert fed.ops(throttle=True) == ["DescribeRegions"]
    assert fed.enabled("DescribeRegions")
    assert DLTV in fed.ops(throttle=False)  # the retry's answer


def test_a_nested_throttled_bulk_read_inside_a_throttled_read(
    env: Any, model: Any, pacer: pacing.Pacer, fast_backoff: None, monkeypatch: Any
) -> None:
    lt, _image = _setup(env)
    ec2 = _client(env)
    _bulk_read_inside_a_throttled_read(env, monkeypatch, ec2, "needs-retry", ec2, lt)


def test_two_threads_throttled_at_once_the_other_read_reaches_the_limiter(
    env: Any, model: Any, pacer: pacing.Pacer, fast_backoff: None, monkeypatch: Any
) -> None:
    lt, _image = _setup(env)
    ec2 = _client(env)
    fed = Fed(monkeypatch)
    _faults(env, {"action": DLTV, "count": 1}, {"action": "DescribeRegions", "count": 1})
    both = threading.Barrier(2, timeout=5)
    met: list[Any] = []

    def meet(response: Any = None, **_kw: Any) -> None:
        # both threads hold a throttle between the pacer's hook and the limiter's
        if response is not None and response[1].get("Error") and len(met) < 2:
            met.append(1)
            both.wait()

    ec2.meta.events.register("needs-retry.ec2", meet)
    errors: list[BaseException] = []

    def run(f: Any) -> None:
        try:
            f()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [
        threading.Thread(target=run, args=(lambda: ec2.describe_regions(),)),
        threading.Thread(
            target=run,
            args=(lambda: ec2.describe_launch_template_versions(LaunchTemplateId=lt),),
        ),
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert not errors and len(met) == 2
    assert fed.ops(throttle=True) == ["DescribeRegions"]
    assert fed.enabled("DescribeRegions")


# --- scans: a stop, regions, other APIs, max attempts ---------------------------------------


class Counting(pacing.Pacer):
    """A pacer that notes the (region, api) of every token it hands out, and on this thread
    whether the attempt being prepared took one."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.took: list[tuple[str, str]] = []
        self.tl = threading.local()

    def take(self, account: str, region: str, api: str) -> float:
        w = super().take(account, region, api)
        self.tl.took = True
        with self._lock:
            self.took.append((region, api))
        return w


def test_a_stop_ends_paced_bulk_reads_promptly_and_gives_back_unsent_tokens(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    env.load(fleet(40))
    p = Counting(sizes={DLTV: (4, 10)}, sleep=stopping.sleep, headroom_s=0)
    monkeypatch.setattr(pacing, "_default", p)
    env.sandbox.set_aws_model(enabled=True, latency_ms=5, buckets={DLTV: [4, 10]})
    lock = threading.Lock()
    paced_sent: list[str] = []
    stopped_at: list[float] = []

    def before_send(region: str, op: str, **_kw: Any) -> None:
        if op == DLTV:  # runs before the pacer's hook (a more specific event)
            p.tl.took = False

    def answered(region: str, op: str, response: Any = None, **_kw: Any) -> None:
        if op == DLTV and response is not None and getattr(p.tl, "took", False):
            p.tl.took = False
            with lock:
                paced_sent.append(region)
                if len(paced_sent) == 4 and not stopped_at:
                    stopped_at.append(time.monotonic())
                    interrupts.request_stop()

    orig = stopping.install

    def install(c: Any) -> None:
        orig(c)
        region = c.meta.region_name
        c.meta.events.register_first(
            f"before-send.ec2.{DLTV}", lambda **kw: before_send(region, DLTV, **kw)
        )
        c.meta.events.register_first(
            f"needs-retry.ec2.{DLTV}", lambda **kw: answered(region, DLTV, **kw)
        )

    monkeypatch.setattr(stopping, "install", install)
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        scan(env.connector(REGIONS), kinds=["launch-templates"])
    assert stopped_at and time.monotonic() - stopped_at[0] < 3
    time.sleep(0.5)  # the slices' threads end their waits
    with lock:
        assert p.calls == len(paced_sent)  # every token of an unsent attempt given back
        assert len(paced_sent) < 80


def test_a_throttle_in_one_region_paces_that_region_only(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    env.load(fleet(6))
    p = Counting(sleep=stopping.sleep)
    monkeypatch.setattr(pacing, "_default", p)
    _faults(env, {"action": DLTV, "region": "us-east-1", "count": 1})
    inv = scan(env.connector(REGIONS), kinds=["launch-templates"])
    assert all(s.complete for s in inv.slices)
    assert len([r for r in inv.references if r.kind == "launch-template-version"]) == 12
    assert p.limited(env.account, "us-east-1", DLTV)
    assert not p.limited(env.account, "eu-west-1", DLTV)
    assert p.took and {r for r, _api in p.took} == {"us-east-1"}


def test_throttles_of_other_apis_never_pace_the_bulk_reads(
    env: Any, model: Any, monkeypatch: Any, fast_backoff: None
) -> None:
    env.load(fleet(2))
    p = Counting(sleep=stopping.sleep)
    monkeypatch.setattr(pacing, "_default", p)
    conn = env.connector(REGIONS)
    _faults(
        env,
        {"action": "DescribeLaunchTemplates", "count": 1},
        {"action": "DescribeImages", "count": 1},
    )
    inv = scan(conn, kinds=["launch-templates", "images"])
    assert env.sandbox.fault_state()["injected"] == 2
    assert all(s.complete for s in inv.slices)
    assert p.took == []
    assert not any(p.limited(env.account, r, DLTV) for r in REGIONS)


def test_a_bulk_read_always_throttled_stops_at_max_attempts_and_is_recorded(
    env: Any, model: Any, pacer: pacing.Pacer, monkeypatch: Any, fast_backoff: None
) -> None:
    env.load(fleet(1))  # one call a region: the limiter, once on, slows each later send
    sends: list[str] = []
    lock = threading.Lock()

    def sent(region: str, op: str, **_kw: Any) -> None:
        if op == DLTV:
            with lock:
                sends.append(region)

    _hook_clients(monkeypatch, "before-send.*", sent, first=False)
    # (2 attempts: the second is sent paced, and its throttle is fed to the limiter, which
    # then slows every later send to its floor of 0.5 a second, as botocore's does)
    conn = env.connector(REGIONS, max_attempts=2)
    _faults(env, {"action": DLTV, "region": "eu-west-1"})
    t0 = time.monotonic()
    inv = scan(conn, kinds=["launch-templates"])
    assert time.monotonic() - t0 < 3
    attempts = conn.client("ec2", "eu-west-1", env.role_arn).meta.config.retries[
        "total_max_attempts"
    ]
    eu = [s for s in inv.slices if s.region == "eu-west-1" and s.kind == "launch-templates"]
    assert len(eu) == 1 and not eu[0].complete and eu[0].error_code == RLE
    assert all(s.complete for s in inv.slices if s.region == "us-east-1")
    n = sends.count("eu-west-1")
    assert n == env.sandbox.fault_state()["injected"]
    assert n == attempts  # the call: exactly max attempts
    assert pacer.limited(env.account, "eu-west-1", DLTV)


def test_paced_bulk_reads_under_a_smaller_real_bucket_complete_whole(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    """The real bucket (1 + 10/s) far below the pacer's (8 + 200/s): the limiter never sees
    these throttles, botocore's back-off alone spaces the retries; the scan still completes."""
    env.load(fleet(6))
    p = pacing.Pacer(sizes={DLTV: (8, 200)}, sleep=stopping.sleep, headroom_s=0.05)
    monkeypatch.setattr(pacing, "_default", p)
    env.sandbox.set_aws_model(enabled=True, latency_ms=5, buckets={DLTV: [1, 10]})
    inv = scan(env.connector(REGIONS), kinds=["launch-templates"])
    assert int(env.sandbox.aws_model_state()["throttled"].get(f"ec2.{DLTV}", 0)) > 0
    assert all(s.complete for s in inv.slices)
    assert len([r for r in inv.references if r.kind == "launch-template-version"]) == 12


# Was a bug (fixed: the mark is in the request's context). The pacer's
# ``needs-retry`` hook flags "the current call of this thread" (the top of ``stopping``'s
# per-thread stack), not the call that got the throttle. A client paced with ``pace_client``
# but not made by the Connector (no ``stopping.install``: ``pace_client`` does not require
# it, its docstring offers it for any EC2 client) has no entry on that stack; when it is
# called from inside a tracked call (an event handler, as the nested tests above do), its
# bulk-read throttle sets ``paced`` on the OUTER call, whose own next throttle (here a
# DescribeRegions RequestLimitExceeded) is then swallowed by ``_limit``: the limiter is never
# enabled. Fix: carry the flag with the response it answers, not the thread: e.g. the pacer's
# hook sets ``request_dict["context"]["amictl_pacer_answers"] = True`` (needs-retry gets
# ``request_dict``) and ``_limit`` pops it from the same kwargs; or flag only when the
# client is tracked (``pace_client`` records ``client._amictl_tracked``, set by
# ``stopping.install``), or have ``_Call`` remember its client and ``_limit`` check it.
def test_a_paced_client_outside_the_connector_does_not_flag_the_outer_call(
    env: Any, model: Any, pacer: pacing.Pacer, fast_backoff: None, monkeypatch: Any
) -> None:
    lt, _image = _setup(env)
    outer = _client(env)
    plain = env.client("ec2")  # boto3's own client: no stopping.install
    pacing.pace_client(plain, env.account, "us-east-1", pacer)
    _bulk_read_inside_a_throttled_read(env, monkeypatch, outer, "before-send", plain, lt)
