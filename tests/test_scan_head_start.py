"""A cold scan spends EC2's bucket for launch-template versions from its first second
(issue 30): once throttled, those reads are paced by the bucket instead of backed off by
the adaptive mode (``pacing.BULK_READS``), and the other slices wait until every region's
templates are listed (``scan.HEAD_START_S``), so the big pages do not delay the first
version calls."""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

import pytest

from amictl.aws import pacing, stopping
from amictl.inventory.collectors import LT_WORKERS
from amictl.inventory.scan import scan

scan_mod = importlib.import_module("amictl.inventory.scan")  # the package exports the function
REGIONS = ["us-east-1", "eu-west-1"]


def _hook_clients(monkeypatch: Any, event: str, handler: Any, first: bool = True) -> None:
    """``handler(region, op, **kw)`` on ``event`` of every client amictl makes from now on."""
    orig = stopping.install

    def install(c: Any) -> None:
        orig(c)
        region = c.meta.region_name

        def h(event_name: str = "", **kw: Any) -> Any:
            return handler(region, event_name.rsplit(".", 1)[-1], **kw)

        (c.meta.events.register_first if first else c.meta.events.register)(event, h)

    monkeypatch.setattr(stopping, "install", install)


def fleet(templates: int) -> str:
    lines = ["regions: [us-east-1, eu-west-1]", "images:"]
    lines += [f"  - {{alias: {r}, age_days: 50, region: {r}}}" for r in REGIONS]
    lines.append("launch_templates:")
    lines += [
        f"  - {{alias: {r}-lt{n}, name: lt{n}, region: {r}, versions: [{{image: {r}}}]}}"
        for r in REGIONS
        for n in range(templates)
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def model(env: Any) -> Any:
    """The sandbox, its AWS model and faults reset after the test."""
    yield env.sandbox
    env.sandbox.reset_aws_model()
    env.sandbox.clear_faults()


@pytest.fixture
def pacer(monkeypatch: Any) -> pacing.Pacer:
    """A fresh process-wide pacer (the default's buckets are shared by every test)."""
    p = pacing.Pacer(sleep=stopping.sleep)
    monkeypatch.setattr(pacing, "_default", p)
    return p


def test_after_a_throttle_template_versions_are_paced(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    """The burst goes out at once; the first RequestLimitExceeded (and the calls already on
    their way with it: 3 a region) switches the bucket to pacing, and no call is throttled
    after: at most 3 a region. (Left to the adaptive mode, as before, the same scan took
    three times as long: its rate limiter, enabled by the throttle, slowed every call.)"""
    env.load(fleet(40))
    pacer = pacing.Pacer(sizes={"DescribeLaunchTemplateVersions": (8, 40)}, headroom_s=0.05)
    monkeypatch.setattr(pacing, "_default", pacer)
    env.sandbox.set_aws_model(
        enabled=True, latency_ms=5, buckets={"DescribeLaunchTemplateVersions": [8, 40]}
    )
    inv = scan(env.connector(REGIONS), kinds=["launch-templates"])
    assert all(s.complete for s in inv.slices)
    assert len([r for r in inv.references if r.kind == "launch-template-version"]) == 80
    throttled = env.sandbox.aws_model_state()["throttled"]
    assert 0 < throttled["ec2.DescribeLaunchTemplateVersions"] <= 2 * LT_WORKERS
    assert all(pacer.limited(env.account, r, "DescribeLaunchTemplateVersions") for r in REGIONS)
    assert pacer.calls > 0


def test_bulk_reads_an_endpoint_never_throttled_are_not_paced(
    env: Any, model: Any, monkeypatch: Any
) -> None:
    """Without EC2's buckets (the plain sandbox) nothing throttles: the reads are not paced
    (at this pacer's 2 + 4/s they would take over 3 s a region)."""
    env.load(fleet(16))
    pacer = pacing.Pacer(sizes={"DescribeLaunchTemplateVersions": (2, 4)}, headroom_s=0)
    monkeypatch.setattr(pacing, "_default", pacer)
    inv = scan(env.connector(REGIONS), kinds=["launch-templates"])
    assert all(s.complete for s in inv.slices)
    assert pacer.calls == 0


def _sends(conn: Any) -> list[tuple[float, str, str, str]]:
    """(time, region, event, operation) of every EC2 send and answer of the scan's clients."""
    got: list[tuple[float, str, str, str]] = []
    lock = threading.Lock()
    role = conn.role_arns[0]
    for region in REGIONS:
        client = conn.client("ec2", region, role)

        def note(event_name: str = "", _r: str = region, **_kw: Any) -> None:
            kind, op = event_name.split(".")[0], event_name.rsplit(".", 1)[-1]
            with lock:
                got.append((time.monotonic(), _r, kind, op))

        client.meta.events.register("before-send.ec2", note)
        client.meta.events.register("after-call.ec2", note)
    return got


def test_the_other_slices_start_after_every_region_listed_its_templates(
    env: Any, model: Any
) -> None:
    env.load(fleet(3))
    env.sandbox.set_aws_model(enabled=True, latency_ms=30)
    conn = env.connector(REGIONS)
    got = _sends(conn)
    inv = scan(conn, kinds=["launch-templates", "images", "instances", "snapshots"])
    assert all(s.complete for s in inv.slices)
    listed = max(
        t for t, _r, kind, op in got if op == "DescribeLaunchTemplates" and kind == "after-call"
    )
    others = [t for t, _r, kind, op in got if kind == "before-send" and "LaunchTemplate" not in op]
    assert others and min(others) > listed


def test_no_head_start_when_the_versions_are_cached_or_the_listing_fails(
    env: Any, model: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    from amictl.inventory.lt_cache import LtVersionCache
    from amictl.state.store import Store

    env.load(fleet(3))
    waits: list[int] = []
    real = scan_mod._head_start
    monkeypatch.setattr(
        scan_mod, "_head_start", lambda ev, fu: (waits.append(len(ev)), real(ev, fu))
    )
    cache = LtVersionCache(Store(f"sqlite:///{tmp_path}/s.db"))
    kinds = ["launch-templates", "images"]
    scan(env.connector(REGIONS), kinds=kinds, lt_cache=cache)
    assert waits == [2]  # cold: both regions' listings waited for
    cache = LtVersionCache(cache.store)  # the next run's, reading what the first stored
    scan(env.connector(REGIONS), kinds=kinds, lt_cache=cache)
    assert waits == [2, 0]  # warm: the versions come from the cache, nothing waits
    # a listing that fails ends its wait at once (HEAD_START_S is not spent on it)
    monkeypatch.setattr(scan_mod, "HEAD_START_S", 30.0)
    env.sandbox.set_faults(
        [{"action": "DescribeLaunchTemplates", "code": "AccessDenied", "status": 403}]
    )
    try:
        t0 = time.monotonic()
        inv = scan(env.connector(REGIONS), kinds=kinds)
        assert time.monotonic() - t0 < 10
    finally:
        env.sandbox.clear_faults()
    assert waits == [2, 0, 2]
    # more launch-template slices than run at once (an organization): no wait, those
    # queued first start first anyway
    scan(env.connector(REGIONS), kinds=kinds, workers=1)
    assert waits == [2, 0, 2, 0]
    assert {s.kind for s in inv.slices if not s.complete} == {"launch-templates"}
