"""Benchmark (issue 26.5): what reading the other services that launch from AMI ids costs a scan.

    .venv/bin/python bench/launcher_kinds.py [--images 20000] [--runs 3] [--latency-ms 40]

Seeds the `large` fleet, then in every region one item of each issue-26 kind (a Spot
request, a Spot Fleet, an EC2 Fleet, an EMR cluster, a Batch compute environment, a
CloudFormation stack, a Beanstalk environment, an Image Builder recipe), and under the
sandbox's `--aws-model` (latency and EC2's request buckets) scans it, interleaved, with
EC2's own kinds only (what `plan` read before issue 26) and with every registered kind:
cold (nothing cached) and warm (launch-template versions cached in a state store, as a
`plan` after a `plan` has them). Prints the medians side by side, the ratio, the load
average and the calls per API each added kind made. The goal: at most 10% more time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from amictl.aws.session import AwsConfig, Connector
from amictl.inventory import scan
from amictl.inventory.kinds import COLLECTORS
from amictl.inventory.lt_cache import LtVersionCache
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from amictl.state.store import Store

EC2_OWN = [k for k, s in COLLECTORS.items() if s.fn.__module__ == "amictl.inventory.collectors"]
EVERY = list(COLLECTORS)


def launchers_fleet(regions: list[str]) -> str:
    """One image and one item of each issue-26 kind per region."""
    lines = ["format: 1", f"regions: [{', '.join(regions)}]", "images:"]
    for i, r in enumerate(regions):
        lines.append(f"  - {{alias: k{i}, name: kinds{i}-1.0.0, region: {r}, age_days: 90}}")
    lines.append("launch_templates:")
    lines += [f"  - {{alias: klt{i}, versions: [{{image: k{i}}}]}}" for i in range(len(regions))]
    sections = {
        "spot_requests": "{{alias: ks{i}, image: k{i}, type: persistent, state: open}}",
        "spot_fleets": "{{alias: ksf{i}, image: k{i}, type: maintain, capacity: 0}}",
        "ec2_fleets": "{{alias: kef{i}, launch_template: klt{i}, image: k{i}, capacity: 0}}",
        "emr_clusters": "{{alias: kemr{i}, image: k{i}}}",
        "batch_compute_environments": "{{alias: kce{i}, image: k{i}}}",
        "cloudformation_stacks": "{{alias: kst{i}, image: k{i}}}",
        "beanstalk_environments": "{{alias: keb{i}, name: kenv{i}, image: k{i}}}",
        "image_recipes": "{{alias: krc{i}, name: kr{i}, version: 1.0.0, image: k{i}}}",
    }
    for section, item in sections.items():
        lines.append(f"{section}:")
        lines += ["  - " + item.format(i=i) for i in range(len(regions))]
    return "\n".join(lines) + "\n"


def timed(conn: Connector, kinds: list[str], cache: Any) -> tuple[float, dict[str, int]]:
    t0 = time.perf_counter()
    inv = scan(conn, kinds=kinds, lt_cache=cache)
    wall = time.perf_counter() - t0
    bad = [s for s in inv.incomplete_slices()]
    if bad:
        raise SystemExit(f"incomplete scan: {[(s.region, s.kind, s.error_code) for s in bad]}")
    return wall, inv.api_calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--json", help="Also write the figures to this file.")
    args = ap.parse_args()
    with Sandbox(tempfile.mkdtemp(prefix="amictl-bench-")) as sb:
        res = sb.load_builtin("large", images=args.images, snapshots=args.images * 3 // 2)
        regions = list(res["regions"])
        sb.load_text(launchers_fleet(regions))
        sb.set_aws_model(enabled=True, latency_ms=args.latency_ms)
        conn = Connector(
            AwsConfig(
                endpoint_url=sb.endpoint,
                access_key=SANDBOX_ACCESS_KEY,
                secret_key=SANDBOX_SECRET_KEY,
                regions=regions,
            )
        )
        walls: dict[tuple[str, str], list[float]] = {}
        calls: dict[str, dict[str, int]] = {}
        stores = {name: Store(f"sqlite:///{tempfile.mkdtemp()}/s.db") for name in ("ec2", "all")}
        for name, kinds in (("ec2", EC2_OWN), ("all", EVERY)):  # fill each warm cache once
            timed(conn, kinds, LtVersionCache(stores[name]))
        for _ in range(args.runs):
            for name, kinds in (("ec2", EC2_OWN), ("all", EVERY)):
                for state in ("cold", "warm"):
                    cache = LtVersionCache(stores[name]) if state == "warm" else None
                    wall, got = timed(conn, kinds, cache)
                    walls.setdefault((name, state), []).append(wall)
                    calls[name] = got
    load = os.getloadavg()[0]
    print(
        f"scan of {args.images} images x {len(regions)} regions, --aws-model "
        f"({args.latency_ms:g} ms), median of {args.runs}, load average {load:.1f}"
    )
    print(f"{'':6} {'EC2 own kinds':>14} {'every kind':>11} {'ratio':>6}  goal <= 1.10")
    out: dict[str, Any] = {"images": args.images, "load": load}
    for state in ("cold", "warm"):
        a = statistics.median(walls[("ec2", state)])
        b = statistics.median(walls[("all", state)])
        out[state] = {"ec2_own_s": round(a, 2), "every_s": round(b, 2), "ratio": round(b / a, 3)}
        print(f"{state:6} {a:13.2f}s {b:10.2f}s {b / a:6.2f}")
    added = {k: v for k, v in calls["all"].items() if k not in calls["ec2"]}
    print("calls the added kinds made (one scan):")
    for op, n in sorted(added.items()):
        print(f"  {n:5d}  {op}")
    out["added_calls"] = added
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
