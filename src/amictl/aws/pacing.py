"""Client-side pacing: send EC2 calls no faster than their documented token buckets refill.

EC2 throttles each API per account and region with a token bucket (``ec2_limits``, the
table the sandbox's ``--aws-model`` uses too). A call sent into an empty bucket comes back
``RequestLimitExceeded`` and costs a retry with back-off; a caller that knows the bucket
can instead wait just long enough, so no call is wasted. ``Pacer.take(account, region,
api)`` does that: it reserves the next token of the (account, region, api) bucket and
sleeps until the token exists. Thread-safe: the reservation is made under a lock (so
concurrent callers are served in order, each waiting for its own token) and the sleep
happens outside it.

The bucket is assumed full when first seen (as a fresh account's is); when AWS throttles
anyway (another client spends the same account's tokens), ``throttled()`` empties the
local bucket so the calls that follow wait for the refill instead of adding to the burst.

Usage: wrap a call (``pacer.take(account, region, "DeregisterImage")`` before
``ec2.deregister_image(...)``), or pace a whole client, every HTTP attempt of its
mutating calls and, once AWS throttled them, of the reads made in bulk (``BULK_READS``;
retries included):
``pace_client(ec2, account, region)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ec2_limits, stopping

Key = tuple[str, str, str]

# Reads made in bulk, one call per resource, where spending the bucket as it refills beats
# the adaptive mode's back-off: a cold scan reads every launch template's versions, one
# call per template (250 a region at the benchmark's size: 100 at once, then EC2's refill
# of 20 a second). Throttled, the adaptive mode cuts its send rate below the refill and
# climbs back slowly (cubic): about a second lost per region. These are paced from the
# first RequestLimitExceeded of their bucket on (``Pacer.throttled``): until then the
# endpoint has shown no limit (an endpoint without EC2's buckets is never slowed, and
# against EC2 the burst goes out at once), from then on each call waits for its token.
# Other reads are a few pages each and are left to the adaptive mode.
BULK_READS = frozenset({"DescribeLaunchTemplateVersions"})
PACED_SEND = "amictl_paced_send"  # in a request's context: this attempt took a pacer token


@dataclass
class _Bucket:
    capacity: float
    refill: float
    tokens: float  # may go below zero: tokens reserved by callers still waiting
    at: float


class Pacer:
    """Token buckets per (account, region, API) with the EC2 page's sizes.

    ``sizes`` overrides the table per action (tests, a raised limit); ``clock`` and
    ``sleep`` are injectable so the behaviour is testable with a fake clock; ``share``
    (0 < share <= 1) uses only that share of each refill rate, for a tool that must leave
    room for other clients of the same account; ``headroom_s``: the burst is the bucket
    less the tokens that refill in that time (at least one), a margin for calls that reach
    AWS later or in another order than they left (0: the whole bucket).
    """

    def __init__(
        self,
        sizes: dict[str, ec2_limits.Size] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        share: float = 1.0,
        headroom_s: float = 0.2,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        if headroom_s < 0:
            raise ValueError("headroom_s must be >= 0")
        self.sizes = dict(sizes or {})
        self.headroom_s = headroom_s
        self.clock = clock
        self.sleep = sleep
        self.share = share
        self._lock = threading.Lock()
        self._buckets: dict[Key, _Bucket] = {}
        self._limited: set[Key] = set()  # buckets AWS throttled: ``BULK_READS`` paced there
        self.waited = 0.0  # seconds spent waiting, all callers together
        self.calls = 0

    def size(self, api: str) -> ec2_limits.Size:
        cap, refill = self.sizes.get(api) or ec2_limits.size(api)
        return cap, refill * self.share

    def _bucket(self, key: Key, now: float) -> _Bucket:
        b = self._buckets.get(key)
        if b is None:
            cap, refill = self.size(key[2])
            # held back from the burst: the tokens that arrive in ``headroom_s``, at least
            # one, so calls that reach AWS a little out of the order (or later) than they
            # were paced still find a token there
            held = max(1.0, refill * self.headroom_s) if self.headroom_s else 0.0
            cap = max(0.0, cap - held)
            b = self._buckets[key] = _Bucket(cap, refill, cap, now)
        else:
            b.tokens = min(b.capacity, b.tokens + (now - b.at) * b.refill)
            b.at = now
        return b

    def reserve(self, account: str, region: str, api: str) -> float:
        """Take the next token of the bucket; return how many seconds from now it exists
        (0 when the bucket had one). Never blocks."""
        with self._lock:
            now = self.clock()
            b = self._bucket((account, region, api), now)
            b.tokens -= 1.0
            self.calls += 1
            wait = 0.0 if b.tokens >= 0 else -b.tokens / b.refill
            self.waited += wait
            return wait

    def take(self, account: str, region: str, api: str) -> float:
        """Block until the (account, region, api) bucket has a token for this call; return
        the seconds waited."""
        wait = self.reserve(account, region, api)
        if wait > 0:
            # a microsecond more than the exact refill time: float rounding must never make
            # the call arrive a hair before its token (0.999999 of one is an empty bucket)
            try:
                self.sleep(wait + 1e-6)
            except BaseException:  # a stop ended the wait (aws/stopping.py): nothing is sent
                self.give_back(account, region, api)
                raise
        return wait

    def give_back(self, account: str, region: str, api: str) -> None:
        """A token taken for a call that was never sent (a stop ended it first)."""
        with self._lock:
            self._bucket((account, region, api), self.clock()).tokens += 1.0
            self.calls -= 1

    def throttled(self, account: str, region: str, api: str) -> None:
        """AWS answered RequestLimitExceeded although the local bucket had a token: the real
        bucket is emptier than ours (another client). Empty ours so callers wait a refill."""
        with self._lock:
            b = self._bucket((account, region, api), self.clock())
            b.tokens = min(b.tokens, 0.0)
            self._limited.add((account, region, api))

    def limited(self, account: str, region: str, api: str) -> bool:
        """Whether AWS throttled this bucket in this process (``BULK_READS`` are paced then)."""
        return (account, region, api) in self._limited

    def tokens(self, account: str, region: str, api: str) -> float:
        """The tokens left (negative: reserved ahead) in a bucket now."""
        with self._lock:
            return self._bucket((account, region, api), self.clock()).tokens


def pace_client(
    client: Any,
    account: str,
    region: str,
    pacer: Pacer | None = None,
    *,
    mutating_only: bool = True,
) -> None:
    """Pace every HTTP attempt of an EC2 client (retries too) by the (account, region, API)
    bucket: a ``before-send`` hook takes the token; a ``RequestLimitExceeded`` answer empties
    the local bucket (``throttled``). ``mutating_only``: reads are left to the adaptive retry
    mode, but ``BULK_READS`` once their bucket was throttled. The throttle that starts a bulk
    read's pacing is the pacer's to answer (not fed to the client's adaptive rate limiter); a
    throttle of an attempt sent paced is fed to it, as botocore would: another client spends
    the same bucket, and the rate must come down. A client of another service is left alone
    (the table is EC2's). Pacing is per client, once: the connector's cached client is paced
    the same way by every caller (the scan and apply)."""
    if client.meta.service_model.service_name != "ec2" or getattr(client, "_amictl_paced", False):
        return  # another service's, or paced already (the connector caches its clients)
    client._amictl_paced = True
    p = pacer or default_pacer()

    def before_send(event_name: str = "", request: Any = None, **_kw: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        paced = (
            not mutating_only
            or ec2_limits.is_mutating(op)
            or (op in BULK_READS and p.limited(account, region, op))
        )
        if request is not None:  # the attempt's (botocore hands needs-retry the same dict)
            request.context[PACED_SEND] = paced
        if paced:
            p.take(account, region, op)
            stopping.on_unsent(lambda: p.give_back(account, region, op))

    def needs_retry(
        event_name: str = "", response: Any = None, request_dict: Any = None, **_kw: Any
    ) -> None:
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else None
        if isinstance(parsed, dict) and parsed.get("Error", {}).get("Code") == (
            "RequestLimitExceeded"
        ):
            op = event_name.rsplit(".", 1)[-1]
            p.throttled(account, region, op)
            sent_paced = ((request_dict or {}).get("context") or {}).get(PACED_SEND)
            if op in BULK_READS and not sent_paced:  # paced from now on: the pacer answers
                stopping.pacer_answers(request_dict)

    client.meta.events.register_first("before-send.ec2", before_send)
    client.meta.events.register_first("needs-retry.ec2", needs_retry)


_default: Pacer | None = None
_default_lock = threading.Lock()


def default_pacer() -> Pacer:
    """The process-wide pacer: every caller in a process shares the account's buckets."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pacer(sleep=stopping.sleep)  # a stop ends the wait (aws/stopping.py)
        return _default
