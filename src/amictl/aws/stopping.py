"""botocore's adaptive retries, with the waits inside a call ended by a stop (SIGINT/SIGTERM).

botocore waits in two places a signal never wakes: the back-off before a retry (up to 20 s,
``time.sleep`` in ``Endpoint._needs_retry``) and adaptive mode's client-side send bucket
(``TokenBucket.acquire``, a ``Condition.wait``; throttling slows it to 0.5 sends a second).
Under throttling a dozen of a scan's or an apply's calls wait there, so an apply took up to
20 s to stop after Ctrl-C (``tests/test_interrupts.py``), far past its "within seconds".

:func:`install` assembles botocore's own adaptive mode on a client made in ``standard`` mode,
from botocore's parts (``botocore/retries/standard.py`` ``register_retry_handler`` and
``adaptive.py`` ``register_retry_handler``, the same objects in the same events), with the
two waits stop-aware. A call made inside ``interrupts.cooperative(end_calls=True)`` (apply's
executor and live reads, the inventory scan), by its thread or by the workers of an
``interrupts.Pool`` made there, ends with :class:`amictl.errors.Interrupted` at a stop, at
once from either wait or before its next request, when no attempt of it can have been done
by AWS:

- nothing sent yet; or a read (``Describe``/``Get``/``List``/``Search``);
- a mutating call every attempt of which was throttled or never connected (AWS did none).

A mutating call any attempt of which may have been done (a 5xx, a connection lost after
sending) is retried as before, so its outcome is known. A request already sent is always
answered and kept. Callers treat ``Interrupted`` as "not started": apply journals the action
``stopped`` and keeps it to do (AWS did not do it: found gone at ``--resume``, someone
else did). Calls made outside such a block (a bake's clean-up in its ``finally``, even
beside an apply on another thread) are never ended; a waiter's polls end through
:func:`wait`. The state is per call: a stack per thread, held for exactly the client's
``_make_api_call`` (whatever exception ends it), so a call made from inside another's event
handler changes nothing of it. A pacer's token taken for an attempt a stop ends before it
is sent is given back (:func:`on_unsent`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
from botocore.retries import adaptive, bucket, quota, standard, throttling

from .. import interrupts
from .ec2_limits import NON_MUTATING_PREFIXES as READ_PREFIXES

SLICE_S = 0.1  # how often a wait in the send bucket looks at the stop flag


@dataclass(eq=False)
class _Call:
    """One call in flight on a thread: may a stop end it, and can AWS have done any of it?"""

    ends_at_stop: bool
    undone: bool = True  # nothing sent, a read, or every attempt refused (nothing done)
    delay: float = 0.0  # the back-off botocore's handler asked for, slept by back_off
    # what to give back when the attempt being prepared is never sent (a pacer's token)
    unsent: list[Callable[[], None]] = field(default_factory=list)


class _Calls(threading.local):
    def __init__(self) -> None:
        self.stack: list[_Call] = []  # a call made from inside another call's handler: on top


_calls = _Calls()


def _current() -> _Call | None:
    stack = _calls.stack
    return stack[-1] if stack else None


def may_end() -> bool:
    """This thread's current call may end at a stop (none in flight: False)."""
    c = _current()
    return c is not None and c.ends_at_stop and c.undone


def ending() -> bool:
    """True when a stop was requested and this thread's current call may end now."""
    return interrupts.stop_requested() and may_end()


def _end_if_stopped() -> None:
    if ending():
        c = _current()
        assert c is not None
        for give_back in c.unsent:
            give_back()
        c.unsent.clear()
        interrupts.check()


def on_unsent(give_back: Callable[[], None]) -> None:
    """Call ``give_back`` if a stop ends this thread's call before its request leaves (the
    pacer's token for this attempt)."""
    c = _current()
    if c is not None:
        c.unsent.append(give_back)


PACER_ANSWERS = "amictl_pacer_answers"  # in a request's context: see pacer_answers


def pacer_answers(request_dict: dict[str, Any] | None) -> None:
    """The throttle the request just got is answered by the pacer (aws/pacing.py, which paces
    the call's API from now on): it is not fed to the client's adaptive rate limiter, which
    would slow every call of the client, other APIs' buckets too (EC2 throttles per API).
    The mark is on the request itself (its context, which botocore hands to every handler of
    that attempt), so no other call's throttle is ever taken for it."""
    if request_dict is not None:
        request_dict.setdefault("context", {})[PACER_ANSWERS] = True


def _limit(limiter: adaptive.ClientRateLimiter) -> Callable[..., None]:
    """The limiter's ``needs-retry`` handler, but for a throttle the pacer answers."""

    def on_response(request_dict: dict[str, Any] | None = None, **kw: Any) -> None:
        if ((request_dict or {}).get("context") or {}).pop(PACER_ANSWERS, False):
            return
        limiter.on_receiving_response(request_dict=request_dict, **kw)

    return on_response


def _sending(**_kw: Any) -> None:
    """The last word before a request leaves: ended at a stop, else it goes."""
    _end_if_stopped()
    c = _current()
    if c is not None:
        c.unsent.clear()


def wait(waiter: Any, **kwargs: Any) -> None:
    """botocore's ``waiter.wait``, whose polls (reads) end at a stop: a Ctrl-C is seen after
    the current delay, as ``Interrupted`` (its ``time.sleep`` is botocore's own)."""
    with interrupts.end_calls():
        waiter.wait(**kwargs)


def sleep(seconds: float) -> None:
    """Wait (a back-off, a pacer's token), cut short when this thread's call ends at a stop."""
    if may_end():
        interrupts.sleep(seconds)
        _end_if_stopped()
    else:
        time.sleep(seconds)


class _StopCondition(threading.Condition):
    """The send bucket's condition: its waits end when the waiting call ends at a stop."""

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            _end_if_stopped()  # raises with the lock held: ``with`` in acquire releases it
            left = SLICE_S if end is None else min(SLICE_S, end - time.monotonic())
            if left <= 0:
                return False
            if super().wait(left):
                return True


class _Bucket(bucket.TokenBucket):
    def __init__(self, max_rate: float, clock: Any) -> None:
        super().__init__(max_rate=max_rate, clock=clock)
        # botocore's own condition, over the same lock, made stop-aware
        self._new_fill_rate_condition = _StopCondition(self._lock)


# Errors that say no byte of the request reached AWS (botocore/httpsession.py: a refused or
# unresolved connection, a connect timeout, a proxy that would not connect)
NOT_SENT = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ProxyConnectionError,
)


class _Retry:
    """botocore's standard ``RetryHandler``, whose back-off is slept by :meth:`back_off`
    (the last ``needs-retry`` handler, after adaptive mode has seen the answer, as
    botocore's own sleep comes after every handler)."""

    def __init__(self, handler: Any, detector: Any) -> None:
        self.handler, self.detector = handler, detector

    def needs_retry(self, operation: Any = None, caught_exception: Any = None, **kw: Any) -> Any:
        delay = self.handler.needs_retry(
            operation=operation, caught_exception=caught_exception, **kw
        )
        c = _current()
        if c is None or not isinstance(delay, int | float) or isinstance(delay, bool):
            return delay  # None: no retry; False: botocore's "no retry, and no sleep"
        # once an attempt may have been done, the call is retried to its answer
        c.undone = c.undone and (
            getattr(operation, "name", "").startswith(READ_PREFIXES)
            or isinstance(caught_exception, NOT_SENT)
            or bool(
                self.detector.is_throttling_error(
                    operation=operation, caught_exception=caught_exception, **kw
                )
            )
        )
        c.delay = delay
        return 0  # botocore sleeps 0; back_off sleeps the delay

    def back_off(self, **_kw: Any) -> None:
        c = _current()
        if c is not None and c.delay:
            s, c.delay = c.delay, 0.0
            sleep(s)


def _tracked(make_api_call: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """The client's ``_make_api_call`` (every operation, page and waiter poll goes through
    it) with the call's state on the thread's stack for exactly its duration, whatever
    ends it (an exception of any kind, in any handler)."""

    def call(operation_name: str, api_params: Any) -> Any:
        stack = _calls.stack
        c = _Call(interrupts.calls_end())
        stack.append(c)
        try:
            return make_api_call(operation_name, api_params)
        finally:
            del stack[stack.index(c) :]  # with any a nested call left above it

    return call


def install(client: Any) -> None:
    """botocore's ``adaptive`` retry mode on ``client`` (made with ``mode: standard``), as
    botocore registers it, with stop-aware waits."""
    events = client.meta.events
    name = client.meta.service_model.service_id.hyphenize()
    max_attempts = client.meta.config.retries.get("total_max_attempts")
    if max_attempts is None:
        max_attempts = standard.DEFAULT_MAX_ATTEMPTS
    # standard: the handler botocore registered is replaced by the same one, wrapped
    adapter = standard.RetryEventAdapter()
    detector = standard.ThrottlingErrorDetector(adapter)
    checker = standard.RetryQuotaChecker(quota.RetryQuota(), detector)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=max_attempts),
            retry_backoff=standard.ExponentialBackoff(
                service_name=name, throttling_detector=detector
            ),
        ),
        retry_event_adapter=adapter,
        retry_quota=checker,
        service_name=name,
    )
    retry = _Retry(handler, detector)
    uid = f"retry-config-{name}"
    events.unregister(f"needs-retry.{name}", unique_id=uid)
    events.register(f"after-call.{name}", checker.release_retry_quota)
    events.register(f"needs-retry.{name}", retry.needs_retry, unique_id=uid)
    # adaptive: botocore's client rate limiter over a stop-aware bucket
    clock = bucket.Clock()
    limiter = adaptive.ClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(
            starting_max_rate=0, start_time=clock.current_time()
        ),
        rate_clocker=adaptive.RateClocker(clock),
        token_bucket=_Bucket(max_rate=1, clock=clock),
        throttling_detector=standard.ThrottlingErrorDetector(standard.RetryEventAdapter()),
        clock=clock,
    )
    events.register("before-send", limiter.on_sending_request)
    events.register("needs-retry", _limit(limiter))
    # the call's own state, and the last word before a request leaves or is retried
    client._make_api_call = _tracked(client._make_api_call)
    events.register_last("before-send", _sending)
    events.register_last("needs-retry", retry.back_off)
