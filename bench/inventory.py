"""Benchmark: seed the `large` fleet in a private sandbox, run the inventory, print the figures.

    .venv/bin/python bench/inventory.py [--images 20000 --snapshots 30000 --instances 5000
                                         --launch-templates 1000 --lt-versions 5 --regions 4]

Prints the fleet load time, the inventory's wall time, peak RSS of this process,
API calls per operation, and the minimum possible calls: Σ ⌈items / page max⌉ per
region and kind, plus one DescribeImageAttribute(launchPermission) per owned image
that is not disabled (AWS has no bulk call for launch permissions).
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from collections import Counter

from amictl.aws.session import AwsConfig, Connector
from amictl.inventory import scan
from amictl.inventory.registry import PAGE_SIZES
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--snapshots", type=int, default=30000)
    ap.add_argument("--instances", type=int, default=5000)
    ap.add_argument("--launch-templates", type=int, default=1000)
    ap.add_argument("--lt-versions", type=int, default=5)
    ap.add_argument("--regions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    opts = {
        "images": args.images,
        "snapshots": args.snapshots,
        "instances": args.instances,
        "launch_templates": args.launch_templates,
        "lt_versions": args.lt_versions,
        "regions": args.regions,
    }
    with Sandbox(tempfile.mkdtemp(prefix="amictl-bench-")) as sb:
        t0 = time.perf_counter()
        res = sb.load_builtin("large", seed=args.seed, **opts)
        load_wall = time.perf_counter() - t0
        print(f"fleet: {res['counts']}")
        print(
            f"load: {res['seconds']:.1f} s inside the sandbox, {load_wall:.1f} s wall (incl. generation)"
        )
        conn = Connector(
            AwsConfig(
                endpoint_url=sb.endpoint,
                access_key=SANDBOX_ACCESS_KEY,
                secret_key=SANDBOX_SECRET_KEY,
                regions=list(res["regions"]),
            )
        )
        t1 = time.perf_counter()
        inv = scan(conn)
        wall = time.perf_counter() - t1
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"inventory: {wall:.1f} s wall, complete={inv.complete}, {len(inv.images)} images, "
        f"{len(inv.snapshots)} snapshots, {len(inv.references)} references"
    )
    print(f"peak RSS (this process): {rss_mib:.0f} MiB")
    total = sum(inv.api_calls.values())
    print(f"API calls: {total}")
    for op, n in sorted(inv.api_calls.items()):
        print(f"  {n:7d}  {op}")
    # the minimum: every listing at its maximum page size, per region
    regions = inv.regions
    per: dict[str, Counter[str]] = {r: Counter() for r in regions}
    for i in inv.images:
        per[i.region]["images"] += 1
        if i.state != "disabled":
            per[i.region]["attr"] += 1
    for s in inv.snapshots:
        per[s.region]["snapshots"] += 1
    for sl in inv.slices:
        if sl.kind in (
            "instances",
            "launch-configurations",
            "auto-scaling-groups",
            "ssm-parameters",
        ):
            per[sl.region][sl.kind] = sl.items
        if sl.kind == "launch-templates":
            per[sl.region]["lt-versions"] = sl.items
    minimum = 0
    n_templates = args.launch_templates
    for r in regions:
        c = per[r]
        minimum += max(1, math.ceil(c["images"] / PAGE_SIZES["describe_images"]))
        minimum += c["attr"]
        minimum += max(1, math.ceil(c["snapshots"] / PAGE_SIZES["describe_snapshots"]))
        minimum += max(1, math.ceil(c["instances"] / PAGE_SIZES["describe_instances"]))
        t_here = math.ceil(n_templates / len(regions))
        minimum += max(1, math.ceil(t_here / PAGE_SIZES["describe_launch_templates"]))
        minimum += t_here * max(
            1, math.ceil(args.lt_versions / PAGE_SIZES["describe_launch_template_versions"])
        )
        minimum += max(
            1, math.ceil(c["launch-configurations"] / PAGE_SIZES["describe_launch_configurations"])
        )
        minimum += max(
            1, math.ceil(c["auto-scaling-groups"] / PAGE_SIZES["describe_auto_scaling_groups"])
        )
        minimum += max(1, math.ceil(c["ssm-parameters"] / PAGE_SIZES["describe_parameters"]))
        minimum += math.ceil(c["ssm-parameters"] / 10)  # GetParameters takes 10 names
    sts = inv.api_calls.get("sts.GetCallerIdentity", 0)
    print(
        f"minimum possible: {minimum} (+{sts} GetCallerIdentity); ratio {(total - sts) / minimum:.3f}"
    )


if __name__ == "__main__":
    main()
