"""Issue 30.5: bench/org_paper.py, the organization's cost on paper, counts calls from the
collectors' page sizes and EC2's documented buckets (pure arithmetic, fast)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from amictl.aws.ec2_limits import size
from amictl.inventory.registry import PAGE_SIZES

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _org_paper() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import org_paper
    finally:
        sys.path.remove(str(BENCH))
    return org_paper


def test_org_paper_counts_and_hours(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "org.json"
    r = _org_paper().main(
        ["--accounts", "10", "--regions", "3", "--images", "2000", "--shards", "1,2,5"]
        + ["--json", str(out)]
    )
    assert out.exists() and "inventory (cold)" in capsys.readouterr().out
    cold = r["phases"]["inventory (cold)"]
    calls = cold["calls_per_slice"]
    assert calls["ec2.DescribeImages"] == -(-2000 // PAGE_SIZES["describe_images"])
    assert calls["ec2.DescribeImageAttribute"] == 2000  # one per image: no bulk call
    assert calls["ec2.DescribeSnapshots"] == -(-3000 // PAGE_SIZES["describe_snapshots"])
    assert cold["calls_total"] == sum(calls.values()) * 30
    # the slowest job: 2,000 DescribeImageAttribute from EC2's bucket (100, then 20 a second)
    cap, refill = size("DescribeImageAttribute")
    hours = [row["hours"] for row in cold["shards"]]
    assert hours == sorted(hours, reverse=True)
    assert hours[-1] * 3600 >= (2000 - cap) / refill  # never under one slice's floor
    warm = r["phases"]["plan (warm scan)"]
    assert warm["calls_total"] < cold["calls_total"] / 5
    apply = r["phases"]["apply"]
    cap, refill = size("DeleteSnapshot")
    assert apply["slice_seconds"] == (150 - cap) / refill  # 5% retired: 150 snapshots
    assert apply["shards"][0]["hours"] * 3600 == 30 * apply["slice_seconds"]
