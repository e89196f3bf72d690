"""Pace per-item calls to EC2's documented request buckets instead of running into them.

EC2 throttles each API per account and region with a token bucket; for non-mutating
calls (Describe*) a bucket of 100 refilled at 20 per second ("Request throttling for the
Amazon EC2 API", Request token bucket sizes and refill rates). A scan that asks once per
launch template (or per image) would empty it in a burst and then spend its time in
RequestLimitExceeded answers and the adaptive retry mode's back-off. A :class:`Pacer`
spends the same bucket on the client side: the burst first, then the refill rate, so the
calls go out as fast as the account allows and no faster. Other callers in the account
share the real bucket: when they drain it, the throttling answers are still retried by
botocore's adaptive mode, so pacing only ever saves calls.
"""

from __future__ import annotations

import threading
import time

from .. import interrupts

# (capacity, refill per second) of the EC2 API reference's bucket classes
EC2_NON_MUTATING = (100.0, 20.0)


class Pacer:
    """A token bucket shared by the threads calling one API in one account and region."""

    def __init__(self, capacity: float, refill: float) -> None:
        self.capacity, self.refill = capacity, refill
        self._tokens, self._at = capacity, time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for a token (reserving it at once, so waiters queue fairly); the wait in s."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.refill)
            self._at = now
            self._tokens -= 1.0
            wait = -self._tokens / self.refill if self._tokens < 0 else 0.0
        if wait > 0:
            interrupts.sleep(wait)
        return wait


_PACERS: dict[tuple[str, str, str], Pacer] = {}
_LOCK = threading.Lock()


def pacer(
    account: str, region: str, api: str, bucket: tuple[float, float] = EC2_NON_MUTATING
) -> Pacer:
    """The process-wide pacer of one API in one account and region."""
    with _LOCK:
        p = _PACERS.get((account, region, api))
        if p is None:
            p = _PACERS[(account, region, api)] = Pacer(*bucket)
        return p
