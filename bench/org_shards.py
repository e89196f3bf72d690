"""Benchmark: an organization scanned as N shards vs one process (issue 22, item 4).

    .venv/bin/python bench/org_shards.py [--accounts 40] [--images 500] [--regions 4]
        [--shards 4] [--latency-ms 40] [--state postgresql|sqlite] [--json out.json]

1. Starts a private sandbox with ``--aws-model`` and seeds ``--accounts`` member accounts,
   each a scaled-down `large` fleet (``--images`` images over ``--regions`` regions, with
   snapshots, instances, launch templates, ASGs, SSM parameters in proportion), and an
   organization of them (the sandbox's Organizations, ``POST /_amictl/org``).
2. One process: ``amictl inventory --org ROLE`` into one state store, then
   ``plan --from-state --org ROLE``.
3. The shards, one at a time (as each would run on its own machine; every bucket full
   again before each): ``amictl inventory --org ROLE --shard K/N`` into a second, shared
   state store (a throwaway PostgreSQL server when one is installed, as a team would
   share), then ``plan --from-state --org ROLE`` over it.
4. Prints the single process's wall time, each shard's, the slowest shard's share of the
   single time (goal <= 0.35), the API calls (the shards' sum against the single process's
   plus the N ListAccounts of their discovery) and whether both plans are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from amictl.sandbox.builtin import REGIONS, large
from amictl.sandbox.control import Sandbox

HERE = Path(__file__).resolve().parent
ROLE = "amictl-scan"
NOW = "2030-01-01T00:00:00Z"
POLICY = """format: 1
name: org
rules:
  - name: old
    select: {families: ["*"], older_than: 90d}
    keep: {latest: 2, in_use: true}
    retire: {deregister: 30d, snapshots: delete}
snapshots:
  orphaned: {only_from_images: true, older_than: 30d, action: delete}
"""


def account_fleet(seed: int, account: str, images: int, regions: int) -> str:
    f = large(
        seed=seed,
        images=images,
        snapshots=images * 3 // 2,
        instances=max(1, images // 4),
        launch_templates=max(1, images // 20),
        lt_versions=5,
        regions=regions,
        families=max(1, images // 50),
        launch_configurations=max(1, images // 200),
        auto_scaling_groups=max(1, images // 66),
        ssm_parameters=max(1, images // 200),
    )
    f["account"] = account
    return yaml.safe_dump(f, sort_keys=False)


def state_url(kind: str, work: Path) -> tuple[str, Any]:
    """A fresh store: a database of a throwaway PostgreSQL server, or a SQLite file."""
    if kind == "postgresql":
        sys.path.insert(0, str(HERE.parent / "tests"))
        from pg import _start  # the team-state tests' throwaway server

        server, why = _start()
        if server is None:
            print(f"no PostgreSQL ({why}): SQLite instead", flush=True)
        else:
            return server.url(), server
    return f"sqlite:///{work}/{time.monotonic_ns()}.db", None


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, p


def essence(plan: dict[str, Any]) -> tuple[Any, Any]:
    actions = sorted(
        (a["type"], a["account"], a["region"], a.get("image_id"), a.get("snapshot_id"))
        for a in plan["actions"]
    )
    decisions = sorted((d["image_id"], d["verdict"]) for d in plan["decisions"])
    return actions, decisions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=40)
    ap.add_argument("--images", type=int, default=500, help="per account")
    ap.add_argument("--regions", type=int, default=4)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--state", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--json", help="Also write the results to this file.")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="amictl-org-shards-"))
    (work / "policy.yaml").write_text(POLICY)
    accounts = [f"{400000000001 + i}" for i in range(args.accounts)]
    regions = ",".join(REGIONS[: args.regions])
    amictl = [sys.executable, "-m", "amictl.cli.main"]
    servers: list[Any] = []
    result: dict[str, Any] = {}
    try:
        with Sandbox(work / "sandbox") as sb:
            t0 = time.perf_counter()
            for i, acct in enumerate(accounts):
                sb.load_text(account_fleet(i, acct, args.images, args.regions), f"{acct}.yaml")
            sb.set_org(accounts)
            print(
                f"{args.accounts} accounts x {args.images} images over {args.regions} regions "
                f"seeded in {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            base = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("AWS_", "AMICTL_")) and k != "XDG_STATE_HOME"
            }
            base.update(sb.env(), XDG_STATE_HOME=str(work))
            common = ["--org", ROLE, "--region", regions, "--no-progress", "-o", "json"]
            plan_args = ["plan", "-p", str(work / "policy.yaml"), "--from-state", "--now", NOW]
            sb.set_aws_model(enabled=True, latency_ms=args.latency_ms)

            def measured(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
                sb.set_aws_model(reset_buckets=True)
                sb.reset_call_counts()
                wall, p = run(cmd, env)
                state = sb.aws_model_state()
                return {
                    "wall_s": round(wall, 2),
                    "calls": state["calls_total"],
                    "discovery_calls": state["calls"].get("organizations.ListAccounts", 0),
                    "throttled": state["throttled_total"],
                    "stdout": p.stdout,
                }

            one_url, srv = state_url(args.state, work)
            servers.append(srv)
            one_env = {**base, "AMICTL_STATE": one_url}
            single = measured([*amictl, "inventory", *common], one_env)
            print(f"one process: {single['wall_s']:.1f} s, {single['calls']} calls", flush=True)
            _w, p = run([*amictl, *plan_args, *common], one_env)
            plan_one = json.loads(p.stdout)

            shared_url, srv = state_url(args.state, work)
            servers.append(srv)
            shard_env = {**base, "AMICTL_STATE": shared_url}
            shards = []
            for k in range(1, args.shards + 1):
                m = measured(
                    [*amictl, "inventory", "--shard", f"{k}/{args.shards}", *common], shard_env
                )
                m["accounts"] = len(json.loads(m["stdout"])["accounts"])
                shards.append(m)
                print(
                    f"shard {k}/{args.shards}: {m['accounts']} accounts, {m['wall_s']:.1f} s, "
                    f"{m['calls']} calls",
                    flush=True,
                )
            _w, p = run([*amictl, *plan_args, *common], shard_env)
            plan_shards = json.loads(p.stdout)
            load = os.getloadavg()
    finally:
        for s in servers:
            if s is not None:
                s.stop()
                shutil.rmtree(s.root, ignore_errors=True)
    slowest = max(s["wall_s"] for s in shards)
    shard_calls = sum(s["calls"] for s in shards)
    discovery = sum(s["discovery_calls"] for s in shards)
    same = essence(plan_one) == essence(plan_shards)
    result = {
        "accounts": args.accounts,
        "images_per_account": args.images,
        "regions": args.regions,
        "shards": args.shards,
        "state": args.state if servers and servers[0] is not None else "sqlite",
        "single_wall_s": single["wall_s"],
        "single_calls": single["calls"],
        "single_discovery_calls": single["discovery_calls"],
        "shard_walls_s": [s["wall_s"] for s in shards],
        "slowest_shard_share": round(slowest / single["wall_s"], 3),
        "shard_calls": shard_calls,
        "shard_discovery_calls": discovery,
        "calls_ok": shard_calls <= single["calls"] + discovery,
        "same_plan": same,
        "plan_actions": len(plan_one["actions"]),
        "throttled": {"single": single["throttled"], "shards": [s["throttled"] for s in shards]},
        "load_average": load,
    }
    print(
        f"organization of {args.accounts} accounts ({args.images} images each, "
        f"{args.regions} regions), --aws-model {args.latency_ms:g} ms, state {result['state']}"
    )
    print(f"  one process:   {single['wall_s']:.1f} s, {single['calls']} calls")
    print(
        f"  {args.shards} shards:      slowest {slowest:.1f} s "
        f"({', '.join(f'{s:.1f}' for s in result['shard_walls_s'])}), {shard_calls} calls"
    )
    print(f"  slowest shard / one process: {result['slowest_shard_share']:.2f}  (goal <= 0.35)")
    print(
        f"  calls: shards {shard_calls} <= one process {single['calls']} + the shards' "
        f"discovery {discovery} (ListAccounts): {result['calls_ok']}"
    )
    print(f"  same plan ({len(plan_one['actions'])} actions): {same}")
    print(f"  load average: {', '.join(f'{x:.1f}' for x in load)}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
