"""Benchmark: apply at AWS's request limit (issue 22, item 1).

    .venv/bin/python bench/apply_limit.py [--images 320] [--latency-ms 40] [--json out.json]

Seeds one account and region of a private sandbox with ``--images`` unused images (one
snapshot each, in families of 9 of which the policy keeps the newest), plans their
retirement (mark, deregister, delete snapshot: 3 actions an image), switches the
sandbox's ``--aws-model`` on (per-call latency and EC2's request buckets, full), applies
the plan in a subprocess and prints:

- the floor: the least time the apply's mutating calls need under the sandbox's buckets
  (each API its own bucket, per ``amictl.aws.ec2_limits``, the table the sandbox uses):
  max over mutating APIs of (calls - bucket capacity) / refill rate;
- the apply's wall time and the ratio wall / floor (goal: <= 1.1);
- per API: the calls the sandbox counted, the calls it throttled (``RequestLimitExceeded``:
  each one a wasted round trip), for a mutating API the floor of its calls alone, and when
  the sandbox served its first call (seconds after the apply started: a bucket is full, and
  its refill lost, until its API's first call; the first DeregisterImage's time does not
  depend on the machine's other load as much as the wall time does);
- the floor the plan's actions would need made one call each: apply deregisters an image
  with ``DeleteAssociatedSnapshots`` where every snapshot of it goes (docs/cli.md), so its
  snapshots cost no DeleteSnapshot call and the floor is the DeregisterImage bucket's.

It runs against whatever `amictl apply` the checkout has. The machine's load average is
printed with the results: on a shared machine run it when it is quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from amictl.aws import ec2_limits
from amictl.policy.plan_model import ACTION_TYPES
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox

ACCOUNT = "222233334444"
REGION = "us-east-1"
PER_FAMILY = 9

POLICY = """format: 1
name: apply-limit
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


def fleet(images: int) -> str:
    """``images`` retired images: families of PER_FAMILY, the newest of each kept."""
    per_retired = PER_FAMILY - 1
    families = -(-images // per_retired)
    lines = [f"account: '{ACCOUNT}'", f"regions: [{REGION}]", "images:"]
    n = 0
    for f in range(families):
        for v in range(1, PER_FAMILY + 1):
            if v < PER_FAMILY and n >= images:
                continue
            n += v < PER_FAMILY
            lines.append(
                f"  - {{alias: f{f}v{v}, region: {REGION}, age_days: {400 - v}, "
                f"tags: {{family: fam{f}, version: '{v}'}}}}"
            )
    return "\n".join(lines) + "\n"


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def mutating(calls: dict[str, int]) -> dict[str, int]:
    """EC2 mutating calls per action, from the sandbox's ``ec2.Action`` counts."""
    out = {}
    for key, n in calls.items():
        service, _, action = key.partition(".")
        if service == "ec2" and ec2_limits.is_mutating(action):
            out[action] = n
    return out


def measure(
    images: int, latency_ms: float, keep: bool = False, apply_args: list[str] | None = None
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="amictl-apply-limit-"))
    (work / "policy.yaml").write_text(POLICY)
    with Sandbox(work / "sandbox") as sb:
        sb.load_text(fleet(images), "apply-limit-fleet.yaml")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SANDBOX_SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AMICTL_STATE": f"sqlite:///{work}/state.db",
            "AWS_ENDPOINT_URL": sb.endpoint,
        }
        amictl = [sys.executable, "-m", "amictl.cli.main"]
        role = ["--role-arn", f"arn:aws:iam::{ACCOUNT}:role/bench", "--region", REGION]
        plan_file = work / "plan.json"
        p = run(
            [*amictl, "plan", "-p", str(work / "policy.yaml"), "--out", str(plan_file), *role],
            env,
        )
        if p.returncode != 0:
            raise SystemExit(f"plan failed ({p.returncode}): {p.stderr[-2000:]}")
        plan = json.loads(plan_file.read_text())
        summary = {k: v for k, v in plan["summary"].items() if k in ACTION_TYPES and v}
        # the model on, buckets full, counts from zero: only the apply is measured
        sb.set_aws_model(enabled=True, latency_ms=latency_ms, reset_buckets=True)
        sb.reset_call_counts()
        before = sb.aws_model_state()
        t0 = time.perf_counter()
        t0_epoch = time.time()
        a = run(
            [
                *amictl,
                "apply",
                str(plan_file),
                "--yes",
                "--max-share",
                "100",
                "--allow-whole-family",
                "--max-destroy",
                str(2 * len(plan["actions"])),
                "--no-progress",
                "-o",
                "json",
                *(apply_args or []),
                *role,
            ],
            env,
        )
        wall = time.perf_counter() - t0
        after = sb.aws_model_state()
        sb.set_aws_model(enabled=False)
    if a.returncode != 0:
        raise SystemExit(f"apply failed ({a.returncode}): {a.stderr[-2000:]}")
    calls = {
        k: n - before["calls"].get(k, 0)
        for k, n in after["calls"].items()
        if n - before["calls"].get(k, 0)
    }
    throttled = {
        k: n - before["throttled"].get(k, 0)
        for k, n in after["throttled"].items()
        if n - before["throttled"].get(k, 0)
    }
    muts = mutating(calls)
    floor = ec2_limits.floor_seconds(muts)
    # the floor if every action of the plan were its own call (no DeleteAssociatedSnapshots)
    api = {
        "mark": "CreateTags",
        "deregister": "DeregisterImage",
        "delete-snapshot": "DeleteSnapshot",
    }
    one_each: dict[str, int] = {}
    for act in plan["actions"]:
        if act["type"] in api:
            one_each[api[act["type"]]] = one_each.get(api[act["type"]], 0) + 1
    plan_floor = ec2_limits.floor_seconds(one_each)
    result = {
        "images": images,
        "actions": len(plan["actions"]),
        "plan_summary": summary,
        "latency_ms": latency_ms,
        "wall_s": round(wall, 2),
        "floor_s": round(floor, 2),
        "plan_floor_s": round(plan_floor, 2),
        "ratio": round(wall / floor, 2) if floor else None,
        "calls": dict(sorted(calls.items())),
        "calls_total": sum(calls.values()),
        "mutating_calls": muts,
        "throttled": throttled,
        "throttled_total": sum(throttled.values()),
        # seconds from the apply's start to each API's first call the sandbox served
        "first_call_s": {
            k: round(at - t0_epoch, 2) for k, at in after.get("first_call_at", {}).items()
        },
        "load_average": os.getloadavg(),
    }
    if not keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return result


def per_api(r: dict[str, Any]) -> list[tuple[str, int, int, float | None]]:
    """(API, calls, throttled, floor seconds or None for a read), most calls first."""
    rows = []
    for k, n in sorted(r["calls"].items(), key=lambda kv: -kv[1]):
        action = k.partition(".")[2]
        floor = None
        if k.startswith("ec2.") and ec2_limits.is_mutating(action):
            floor = ec2_limits.floor_seconds({action: n})
        rows.append((k, n, r["throttled"].get(k, 0), floor))
    return rows


def report(r: dict[str, Any]) -> None:
    print(
        f"apply of {r['actions']} actions ({r['images']} images: "
        + ", ".join(f"{n} {k}" for k, n in r["plan_summary"].items())
        + f"), --aws-model {r['latency_ms']:g} ms a call"
    )
    print(f"  floor (mutating calls made, under the buckets): {r['floor_s']:.1f} s")
    print(f"  floor of the plan's actions one call each:      {r['plan_floor_s']:.1f} s")
    print(f"  apply wall time:                                {r['wall_s']:.1f} s")
    ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "n/a (no mutating call above a bucket)"
    load = ", ".join(f"{x:.1f}" for x in r["load_average"])
    print(f"  ratio wall / floor: {ratio}  (goal <= 1.1x)   load average: {load}")
    print(f"  calls: {r['calls_total']}, throttled (RequestLimitExceeded): {r['throttled_total']}")
    first = r.get("first_call_s", {}).get("ec2.DeregisterImage")
    if first is not None:
        # the bucket is full until then: every second before it is refill lost for good
        print(f"  first DeregisterImage {first:.2f} s after the apply started")
    print(f"    {'calls':>6}  {'throttled':>9}  {'floor':>7}  {'first':>6}  API")
    for k, n, thr, floor in per_api(r):
        action = k.partition(".")[2]
        size = ""
        if floor is not None:
            cap, refill = ec2_limits.size(action)
            size = f"  (mutating; bucket {cap:g}, {refill:g}/s)"
        fl = f"{floor:6.1f}s" if floor is not None else "      -"
        at = r.get("first_call_s", {}).get(k)
        first = f"{at:5.2f}s" if at is not None else "     -"
        print(f"    {n:6d}  {thr:9d}  {fl}  {first}  {k}{size}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=320)
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--json", help="Also write the result to this file.")
    ap.add_argument(
        "--apply-arg",
        action="append",
        default=[],
        help="Pass this to `amictl apply` (repeat), e.g. --apply-arg=--batch --apply-arg=100.",
    )
    args = ap.parse_args()
    r = measure(args.images, args.latency_ms, apply_args=args.apply_arg)
    r["apply_args"] = args.apply_arg
    report(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
