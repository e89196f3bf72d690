"""Fault benchmark for apply: throttling and 5xx bursts, SIGKILLs at random points, resume.

    .venv/bin/python bench/apply_faults.py [--families 10 --versions 8 --kills 6 --seed 1]

Seeds a fleet in a private sandbox, plans a cleanup, then applies it in a subprocess
that is SIGKILLed at random moments while the sandbox injects throttling (503
RequestLimitExceeded) and server errors (500) on a share of EC2 calls; resumes until
the apply exits 0. Then checks the end state against the plan and the journal:
prints faults injected, kills, actions lost (must be 0) and actions done twice (0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import boto3

from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from amictl.state.store import Store

POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 2}
    retire: {deregister: 0d, snapshots: delete}
snapshots:
  orphaned: {only_from_images: true, older_than: 7d, action: delete}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", type=int, default=10)
    ap.add_argument("--versions", type=int, default=8)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--throttle-rate", type=float, default=0.2)
    ap.add_argument("--error-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="amictl-faults-"))
    images = []
    for f in range(args.families):
        for v in range(1, args.versions + 1):
            images.append(
                f"  - {{alias: f{f}v{v}, age_days: {400 - v}, tags: {{family: fam{f}, version: '{v}'}}, "
                f"snapshots: [{{size_gib: 8}}, {{size_gib: 50, device: /dev/sdf}}]}}"
            )
    fleet = (
        "images:\n"
        + "\n".join(images)
        + "\nsnapshots:\n"
        + "\n".join(
            f"  - {{alias: o{i}, age_days: 60, made_for_deleted_image: true}}" for i in range(10)
        )
        + "\n"
    )
    (work / "policy.yaml").write_text(POLICY)
    with Sandbox(work / "sandbox") as sb:
        sb.load_text(fleet, "faults-fleet.yaml")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SANDBOX_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AMICTL_STATE": f"sqlite:///{work}/state.db",
            "AWS_ENDPOINT_URL": sb.endpoint,
        }
        amictl = [sys.executable, "-m", "amictl.cli.main"]
        subprocess.run(
            [
                *amictl,
                "plan",
                "-p",
                str(work / "policy.yaml"),
                "--out",
                str(work / "plan.json"),
                "-o",
                "json",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        plan = json.loads((work / "plan.json").read_text())
        ec2 = boto3.client(
            "ec2",
            endpoint_url=sb.endpoint,
            region_name="us-east-1",
            aws_access_key_id=SANDBOX_ACCESS_KEY,
            aws_secret_access_key=SANDBOX_SECRET_KEY,
        )
        before_i = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
        before_s = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
        sb.set_faults(
            [
                {
                    "service": "ec2",
                    "code": "RequestLimitExceeded",
                    "status": 503,
                    "rate": args.throttle_rate,
                },
                {"service": "ec2", "code": "InternalError", "status": 500, "rate": args.error_rate},
            ],
            seed=args.seed,
        )
        cmd = [
            *amictl,
            "apply",
            str(work / "plan.json"),
            "--yes",
            "--max-share",
            "100",
            "--allow-whole-family",
            "-o",
            "json",
            "--no-progress",
        ]
        kills, runs, exits = 0, 0, []
        t0 = time.perf_counter()
        for _ in range(args.kills):
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            runs += 1
            time.sleep(rng.uniform(0.8, 3.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            exits.append(proc.wait())
        while True:
            runs += 1
            final = subprocess.run(cmd, env=env, capture_output=True, text=True)
            exits.append(final.returncode)
            if final.returncode == 0:
                break
            if runs > args.kills + 20:
                raise SystemExit(f"apply did not finish: {final.stderr[-2000:]}")
        wall = time.perf_counter() - t0
        injected = sb.fault_state()
        sb.clear_faults()
        after_i = {
            i["ImageId"]
            for i in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
        }
        after_s = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    want_i = before_i - {a["image_id"] for a in plan["actions"] if a["type"] == "deregister"}
    want_s = before_s - {
        a["snapshot_id"] for a in plan["actions"] if a["type"] == "delete-snapshot"
    }
    rows = Store(env["AMICTL_STATE"]).journal_rows(plan_checksum=plan["checksum"], limit=10**6)
    done = Counter(r["action_id"] for r in rows if r["status"] == "done")
    lost = [a["id"] for a in plan["actions"] if a["id"] not in done]
    twice = [k for k, n in done.items() if n > 1]
    print(
        f"plan: {len(plan['actions'])} actions ({plan['summary']['deregister']} deregister, "
        f"{plan['summary']['delete-snapshot']} delete-snapshot)"
    )
    print(
        f"faults injected: {injected.get('injected', '?')} (throttle rate {args.throttle_rate}, "
        f"5xx rate {args.error_rate} of EC2 calls)"
    )
    print(f"apply runs: {runs}, SIGKILLs: {kills}, exit codes: {exits}, wall {wall:.1f} s")
    print(f"end state equals the plan's: images {after_i == want_i}, snapshots {after_s == want_s}")
    print(f"actions lost: {len(lost)}; actions done twice: {len(twice)}")
    if lost or twice or after_i != want_i or after_s != want_s:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
