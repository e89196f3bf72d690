"""``--aws-model``: make the sandbox answer like AWS's regional endpoints, not one local process.

Opt-in (``amictl sandbox up --aws-model``, or ``POST /_amictl/aws-model``). When on:

- every AWS call waits a configurable per-call latency, like a regional endpoint's round
  trip, OUTSIDE the server's global lock (server.py sleeps before taking it), so calls to
  different regions and accounts are served concurrently, as AWS does;
- EC2 calls take a token from a bucket per API per (account, region), with the sizes and
  refill rates of the EC2 API reference's "Request throttling for the Amazon EC2 API" page
  (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html, "Request
  token bucket sizes and refill rates"), as tabled in ``amictl.aws.ec2_limits`` (the same
  table amictl's client-side pacer uses): the actions the page lists with sizes of their
  own (DeregisterImage 100 / 5, DeleteSnapshot 100 / 5, CreateTags 100 / 10, CopyImage
  100 / 1, ModifyImageAttribute 100 / 5, ...) get them; every other action its category's
  (non-mutating 100 / 20, unfiltered and unpaginated 50 / 10, mutating 50 / 5,
  resource-intensive 50 / 5). Each API has its own bucket ("each API is evaluated
  individually"). An empty bucket answers ``RequestLimitExceeded`` with HTTP 503 in EC2's
  XML error shape, which botocore's retry modes treat as throttling.

Whether the model is on or not, the sandbox counts the calls it serves per service and
action (``GET /_amictl/aws-model``), so a benchmark counts every tool's calls the same way.
Tests shrink the latency and bucket sizes through the control API to stay fast.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..aws import ec2_limits

# Bucket classes (capacity, refill per second) of the EC2 throttling page, and the actions
# it sizes individually: one table, shared with the client's pacer (aws/pacing.py).
DEFAULT_BUCKETS: dict[str, tuple[float, float]] = dict(ec2_limits.CATEGORIES)


def bucket_class(action: str, params: dict[str, list[str]]) -> str:
    """The category an EC2 call draws from (``uncategorized`` for the actions sized
    individually), by its action and query parameters."""
    return ec2_limits.category(action, params)


@dataclass
class _Bucket:
    capacity: float
    refill: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill)
        self.at = now
        # a token is a token within float rounding: (now - at) * refill at a clock of 1,000 s
        # loses ~1e-13 (0.99999999999966 of a token after exactly one refill time)
        if self.tokens >= 1.0 - 1e-9:
            self.tokens -= 1.0
            return True
        return False


class AwsModel:
    """Latency and request limits of AWS endpoints; call counts at the sandbox side."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enabled = False
        self.latency_ms = 40.0
        self.buckets = dict(DEFAULT_BUCKETS)
        self.overrides: dict[str, tuple[float, float]] = {}  # classes or actions set by a caller
        self._state: dict[tuple[str, str, str, str], _Bucket] = {}
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.cpu: dict[str, float] = {}  # the sandbox's own CPU seconds per action
        self.first: dict[str, float] = {}  # when each action was first served (epoch s)

    def configure(self, body: dict[str, Any]) -> None:
        """``{"enabled": bool, "latency_ms": float, "buckets": {name: [capacity, refill]}}``
        where a name is a category (it then sizes every action of the category, those the
        page sizes individually too) or an action name (that action alone); keys left out
        keep their value; buckets start full again."""
        with self.lock:
            if "enabled" in body:
                self.enabled = bool(body["enabled"])
            if body.get("latency_ms") is not None:
                latency = float(body["latency_ms"])
                if not 0 <= latency <= 10_000:
                    raise ValueError("latency_ms must be between 0 and 10000")
                self.latency_ms = latency
            for name, value in (body.get("buckets") or {}).items():
                if name not in DEFAULT_BUCKETS and not name[:1].isupper():
                    raise ValueError(
                        f"unknown bucket class {name!r} (one of {', '.join(DEFAULT_BUCKETS)},"
                        " or an EC2 action name)"
                    )
                cap, refill = float(value[0]), float(value[1])
                if cap < 1 or refill <= 0:
                    raise ValueError("a bucket needs capacity >= 1 and refill > 0")
                self.overrides[name] = (cap, refill)
                if name in DEFAULT_BUCKETS:
                    self.buckets[name] = (cap, refill)
            if body.get("reset_buckets", True):
                self._state.clear()
            if body.get("defaults"):
                self.buckets = dict(DEFAULT_BUCKETS)
                self.overrides.clear()

    def size(self, action: str, params: dict[str, list[str]]) -> tuple[float, float]:
        """An action's bucket: a caller's override of the action, then of its category, then
        the page's size (the action's own row, else its category's)."""
        if action in self.overrides:
            return self.overrides[action]
        cls = bucket_class(action, params)
        if cls == "uncategorized":
            cls = "mutating" if ec2_limits.is_mutating(action) else "non-mutating"
            if cls in self.overrides:
                return self.overrides[cls]
            return ec2_limits.size(action, params)
        return self.overrides.get(cls) or self.buckets[cls]

    def reset_counts(self) -> None:
        with self.lock:
            self.calls.clear()
            self.throttled.clear()
            self.cpu.clear()
            self.first.clear()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "enabled": self.enabled,
                "latency_ms": self.latency_ms,
                "buckets": {k: list(v) for k, v in self.buckets.items()},
                "overrides": {k: list(v) for k, v in sorted(self.overrides.items())},
                "calls": dict(sorted(self.calls.items())),
                "calls_total": sum(self.calls.values()),
                "throttled": dict(sorted(self.throttled.items())),
                "throttled_total": sum(self.throttled.values()),
                "sandbox_cpu_s": {k: round(v, 3) for k, v in sorted(self.cpu.items())},
                "sandbox_cpu_total_s": round(sum(self.cpu.values()), 3),
                "first_call_at": dict(sorted(self.first.items())),
            }

    def admit(
        self, service: str, account: str, region: str, action: str, params: dict[str, list[str]]
    ) -> bool:
        """Count the call; False when the model is on and its bucket is empty (throttled)."""
        key = f"{service}.{action}"
        with self.lock:
            if self.enabled and service == "ec2":
                bkey = (account, region, action, bucket_class(action, params))
                now = time.monotonic()
                b = self._state.get(bkey)
                if b is None:
                    cap, refill = self.size(action, params)
                    b = self._state[bkey] = _Bucket(cap, refill, cap, now)
                if not b.take(now):
                    self.throttled[key] += 1
                    return False
            self.calls[key] += 1
            self.first.setdefault(key, time.time())
            return True

    def spent(self, service: str, action: str, cpu_seconds: float) -> None:
        """CPU the sandbox spent serving one call (moto and its serializer): the part of
        a benchmark's time that is this local process, not the modelled endpoint."""
        with self.lock:
            key = f"{service}.{action}"
            self.cpu[key] = self.cpu.get(key, 0.0) + cpu_seconds

    def delay(self) -> None:
        """The endpoint's latency; called with no lock held."""
        if self.enabled and self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0)
