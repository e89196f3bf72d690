"""Organization scale on paper (issue 30, item 5): what scanning, planning and applying
an organization costs in API calls and hours at EC2's documented request buckets, per
shard count. Pure arithmetic: no sandbox, no endpoint, runs in well under a second.

    .venv/bin/python bench/org_paper.py [--accounts 1000 --regions 17 --images 2000]
        [--shards 1,4,16,64,256] [--changed 0.05 --retire 0.05] [--latency-ms 40]
        [--json out.json]

``--images`` is per account and region (1,000 x 17 x 2,000 = 34 million images). The
other resources of a slice are in the proportions of the project's benchmark fleet
(``amictl.sandbox.builtin.large``'s defaults: per 20,000 images 30,000 snapshots, 5,000
instances, 1,000 launch templates of 5 versions, 100 launch configurations, 300 ASGs, 100
SSM parameters). Calls per API come from the collectors' page sizes
(``amictl.inventory.registry.PAGE_SIZES``) and their per-item calls (one
DescribeImageAttribute per image, one DescribeLaunchTemplateVersions per template, one
GetParameters per 10 parameters); bucket sizes from ``amictl.aws.ec2_limits`` (EC2's
documented table, the one the pacer and the sandbox use).

Each account and region has its own buckets, so a slice's floor is its slowest API's
``(calls - capacity) / refill`` (``ec2_limits.floor_seconds``), or the time its calls
take one after the other at ``--latency-ms`` (8 image attributes, 3 template versions at
once, as the collectors read them), whichever is longer. A shard runs ``MAX_WORKERS``
scan jobs (one kind of one slice) at once (``inventory.scan``), so its wall is its jobs'
time divided by that (or its longest job); apply goes one slice after the other,
``ApplyOptions.workers`` actions at once. Shards run at the same time on their own
runners; a plan runs per shard over its stored inventory (``plan --from-state``): the CPU
and memory it needs per image come from bench/plan.py. Quotas of Auto Scaling and SSM are not EC2's and are left out (their calls
are few). What this leaves out: the runner's CPU for parsing pages (bench/inventory.py),
retries after throttling (the pacer keeps to the buckets), and the state store's writes.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amictl.apply.options import ApplyOptions
from amictl.aws.ec2_limits import floor_seconds, size
from amictl.inventory.collectors import LT_WORKERS, collect_images
from amictl.inventory.registry import PAGE_SIZES
from amictl.inventory.scan import MAX_WORKERS
from amictl.sandbox.builtin import large

# planner CPU and memory per image, from bench/plan.py at 100,000 images: model build +
# plan 4.06 s on a quiet machine before issue 30's changes (an upper bound), peak RSS
# 468 MiB (the inventory with two snapshots an image, the plan and its file written)
PLAN_CPU_S_PER_IMAGE = 4.06 / 100_000
PLAN_MIB_PER_IMAGE = 468 / 100_000
SSM_NAMES_PER_CALL = 10  # GetParameters takes 10 names
OTHER_KINDS = (  # the other launchers' listings: one page each where nothing is found
    "elasticbeanstalk.DescribeEnvironments",
    "imagebuilder.ListImageRecipes",
    "imagebuilder.ListContainerRecipes",
    "imagebuilder.ListDistributionConfigurations",
    "cloudformation.DescribeStacks",
    "emr.ListClusters",
    "batch.DescribeComputeEnvironments",
    "ec2.DescribeSpotInstanceRequests",
    "ec2.DescribeSpotFleetRequests",
    "ec2.DescribeFleets",
)


@dataclass(frozen=True)
class Slice:
    """One account and region's resources."""

    images: int
    snapshots: int
    instances: int
    templates: int
    versions: int
    launch_configurations: int
    asgs: int
    parameters: int


def slice_of(images: int) -> Slice:
    """A slice of ``images`` images, the rest in the benchmark fleet's proportions."""
    d = {k: p.default for k, p in inspect.signature(large).parameters.items()}
    r = images / d["images"]
    return Slice(
        images=images,
        snapshots=round(d["snapshots"] * r),
        instances=round(d["instances"] * r),
        templates=round(d["launch_templates"] * r),
        versions=d["lt_versions"],
        launch_configurations=round(d["launch_configurations"] * r),
        asgs=round(d["auto_scaling_groups"] * r),
        parameters=round(d["ssm_parameters"] * r),
    )


def pages(n: int, op: str) -> int:
    return max(1, math.ceil(n / PAGE_SIZES[op]))


def inventory_calls(s: Slice, changed: float = 1.0) -> dict[str, int]:
    """Calls per API of one slice's scan. ``changed``: the share of images and templates
    read again item by item (1.0: a cold scan; a warm one reads the launch permissions
    of new or changed images and the versions of templates whose latest moved)."""
    return {
        "ec2.DescribeImages": pages(s.images, "describe_images"),
        "ec2.DescribeImageAttribute": math.ceil(s.images * changed),
        "ec2.DescribeStoreImageTasks": 1,
        "ec2.DescribeSnapshots": pages(s.snapshots, "describe_snapshots"),
        "ec2.DescribeLockedSnapshots": 1,  # lists locked snapshots only (LOCK_PAGE a page)
        "ec2.DescribeInstances": pages(s.instances, "describe_instances"),
        "ec2.DescribeLaunchTemplates": pages(s.templates, "describe_launch_templates"),
        "ec2.DescribeLaunchTemplateVersions": math.ceil(s.templates * changed)
        * pages(s.versions, "describe_launch_template_versions"),
        "autoscaling.DescribeLaunchConfigurations": pages(
            s.launch_configurations, "describe_launch_configurations"
        ),
        "autoscaling.DescribeAutoScalingGroups": pages(s.asgs, "describe_auto_scaling_groups"),
        "ssm.DescribeParameters": pages(s.parameters, "describe_parameters"),
        "ssm.GetParameters": math.ceil(s.parameters / SSM_NAMES_PER_CALL),
        **{k: 1 for k in OTHER_KINDS},
    }


def apply_calls(s: Slice, retire: float) -> dict[str, int]:
    """Mutating calls of retiring ``retire`` of a slice's images: mark (CreateTags),
    deregister, delete their snapshots (the plan's actions; the live view's reads are
    batched per wave and draw from other buckets)."""
    n = math.ceil(s.images * retire)
    return {
        "ec2.CreateTags": n,
        "ec2.DeregisterImage": n,
        "ec2.DeleteSnapshot": math.ceil(n * s.snapshots / max(1, s.images)),
    }


# The scan's jobs (one collector on one slice) and the APIs each calls; a job's calls
# are one after the other but ``LT_WORKERS`` template versions and ``collect_images``'s
# ``workers`` launch permissions at once.
JOBS = {
    "images": ("ec2.DescribeImages", "ec2.DescribeImageAttribute", "ec2.DescribeStoreImageTasks"),
    "snapshots": ("ec2.DescribeSnapshots", "ec2.DescribeLockedSnapshots"),
    "instances": ("ec2.DescribeInstances",),
    "launch-templates": ("ec2.DescribeLaunchTemplates", "ec2.DescribeLaunchTemplateVersions"),
    "launch-configurations": ("autoscaling.DescribeLaunchConfigurations",),
    "auto-scaling-groups": ("autoscaling.DescribeAutoScalingGroups",),
    "ssm-parameters": ("ssm.DescribeParameters", "ssm.GetParameters"),
    **{k: (k,) for k in OTHER_KINDS},
}
AT_ONCE = {
    "ec2.DescribeImageAttribute": inspect.signature(collect_images).parameters["workers"].default,
    "ec2.DescribeLaunchTemplateVersions": LT_WORKERS,
}


def job_seconds(calls: dict[str, int], latency_s: float, at_once: dict[str, int]) -> float:
    """The least time calls of one job (or one apply) take: the slowest EC2 bucket
    (``ec2_limits.floor_seconds``), or the calls one after the other at ``latency_s``
    (``at_once`` of an API at a time), whichever is longer."""
    ec2 = {k.split(".", 1)[1]: n for k, n in calls.items() if k.startswith("ec2.")}
    serial = sum(n * latency_s / at_once.get(k, 1) for k, n in calls.items())
    return max(floor_seconds(ec2), serial)


def scan_seconds(calls: dict[str, int], latency_s: float) -> tuple[float, float]:
    """(worker-seconds of a slice's jobs, its longest job)."""
    times = [job_seconds({a: calls[a] for a in apis}, latency_s, AT_ONCE) for apis in JOBS.values()]
    return sum(times), max(times)


def model(args: argparse.Namespace) -> dict[str, Any]:
    s = slice_of(args.images)
    slices = args.accounts * args.regions
    latency = args.latency_ms / 1000
    phases = {
        "inventory (cold)": inventory_calls(s, 1.0),
        "plan (warm scan)": inventory_calls(s, args.changed),
        "apply": apply_calls(s, args.retire),
    }
    out: dict[str, Any] = {
        "accounts": args.accounts,
        "regions": args.regions,
        "images_per_slice": args.images,
        "images": slices * args.images,
        "slice": s.__dict__,
        "phases": {},
    }
    apply_workers = ApplyOptions().workers
    for name, calls in phases.items():
        if name == "apply":  # one slice after the other, ``workers`` actions at once
            busy = job_seconds(calls, latency, {k: apply_workers for k in calls})
            longest, parallel = busy, 1
        else:  # MAX_WORKERS jobs at once, over every slice of the shard
            busy, longest = scan_seconds(calls, latency)
            parallel = MAX_WORKERS
        rows = []
        for n in args.shards:
            mine = math.ceil(args.accounts / n) * args.regions  # the largest shard's slices
            wall = max(mine * busy / parallel, longest)
            row = {"shards": n, "slices": mine, "hours": wall / 3600}
            if name.startswith("plan"):
                images = mine * args.images
                row["plan_cpu_hours"] = images * PLAN_CPU_S_PER_IMAGE / 3600
                row["plan_gib"] = images * PLAN_MIB_PER_IMAGE / 1024
            rows.append(row)
        limit = {
            k: list(size(k.split(".", 1)[1])) for k in calls if k.startswith("ec2.") and calls[k]
        }
        out["phases"][name] = {
            "calls_per_slice": calls,
            "calls_total": sum(calls.values()) * slices,
            "slice_seconds": busy,
            "buckets": limit,
            "shards": rows,
        }
    return out


def show(r: dict[str, Any]) -> None:
    print(
        f"{r['accounts']:,} accounts x {r['regions']} regions x {r['images_per_slice']:,} images "
        f"= {r['images']:,} images; a slice (one account and region): {r['slice']}"
    )
    for name, p in r["phases"].items():
        print(f"\n{name}: {p['calls_total']:,} calls; {p['slice_seconds']:.0f} s a slice")
        for api, n in p["calls_per_slice"].items():
            if n > 1:
                b = p["buckets"].get(api)
                note = f"  (bucket {b[0]:.0f}, +{b[1]:g}/s)" if b else ""
                print(f"  {n:8,} {api} a slice{note}")
        head = f"  {'shards':>6}  {'slices/shard':>12}  {'hours':>8}"
        if name.startswith("plan"):
            head += f"  {'plan CPU h':>10}  {'plan GiB':>8}"
        print(head)
        for row in p["shards"]:
            line = f"  {row['shards']:>6}  {row['slices']:>12,}  {row['hours']:>8.2f}"
            if "plan_cpu_hours" in row:
                line += f"  {row['plan_cpu_hours']:>10.2f}  {row['plan_gib']:>8.1f}"
            print(line)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--regions", type=int, default=17)
    ap.add_argument("--images", type=int, default=2000, help="per account and region")
    ap.add_argument("--shards", default="1,4,16,64,256")
    ap.add_argument("--changed", type=float, default=0.05, help="warm: share read again")
    ap.add_argument("--retire", type=float, default=0.05, help="apply: share retired a run")
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--json", help="Also write the figures to this JSON file.")
    args = ap.parse_args(argv)
    args.shards = [int(x) for x in args.shards.split(",")]
    r = model(args)
    show(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return r


if __name__ == "__main__":
    main()
