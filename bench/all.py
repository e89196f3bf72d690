"""`make bench`: every benchmark, then one table of the figures with their goals.

    .venv/bin/python bench/all.py [--only apply,custodian,org,org-paper,inventory,plan] [--runs 3]
        [--org-accounts 40 --org-images 500] [--markdown]

Runs, one after the other (each on its own private sandbox):

- ``bench/inventory.py`` and ``bench/plan.py`` (the scan of the `large` fleet; a
  100,000-image plan in memory, issue 30: model + plan < 2 s, its JSON < 2 s, < 512 MiB);
- ``bench/org_paper.py``: 1,000 accounts x 17 regions x 2,000 images on paper (calls and
  hours per shard count at EC2's documented buckets, no sandbox);
- ``bench/apply_limit.py``: apply of 960 actions under ``--aws-model`` against the floor
  its mutating calls need (issue 22: <= 1.1x);
- ``bench/versus_custodian.py``: amictl ``plan`` vs Cloud Custodian, cold and warm, plain
  and ``--aws-model`` (issue 22: cold >= 1.5x plain, >= 2.5x with the model; warm >= 3x
  with the model);
- ``bench/org_shards.py``: a 40-account organization as 4 shards vs one process (issue 22:
  the slowest shard <= 0.35x the one process, no more calls, the same plan).

Then prints the table (``--markdown``: as the README shows it) with the machine and date.
Benchmarks are not tests: run them on a quiet machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> int:
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, str(HERE / script), *args])


def load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def rows(out: Path) -> list[tuple[str, str, str, str]]:
    """(benchmark, measured, goal, met) of every figure found."""
    table: list[tuple[str, str, str, str]] = []

    def yes(ok: bool | None) -> str:
        return "n/a" if ok is None else ("yes" if ok else "**no**")

    a = load(out / "apply_limit.json")
    if a:
        ratio = a.get("ratio")
        table.append(
            (
                f"apply at the limit ({a['actions']} actions, --aws-model)",
                f"{a['wall_s']:.1f} s vs floor {a['floor_s']:.1f} s = "
                + (f"{ratio:.2f}x" if ratio else "n/a")
                + f"; {a['calls_total']:,} calls, {a['throttled_total']} throttled",
                "<= 1.1x the floor",
                yes(ratio is not None and ratio <= 1.1),
            )
        )
    c = load(out / "custodian.json")
    if c:
        for key in ("cold plain", "cold aws-model", "warm plain", "warm aws-model"):
            r = c.get(key)
            if not r:
                continue
            goal = r.get("goal")
            table.append(
                (
                    f"plan vs Custodian, {key}",
                    f"{r['ratio']:.2f}x ({r['custodian_s']:.1f} s vs {r['amictl_s']:.1f} s)",
                    f">= {goal}x" if goal else "-",
                    yes(r["ratio"] >= goal) if goal else "-",
                )
            )
    p = load(out / "plan.json")
    if p:
        from plan import table as plan_rows  # bench/plan.py: the same rows it prints

        label = f"planner, {p['images']:,} images in memory: "
        table.extend((label + fig, m, g, ok) for fig, m, g, ok in plan_rows(p))
    paper = load(out / "org_paper.json")
    if paper:
        for name, ph in paper["phases"].items():
            hours = ", ".join(f"{r['hours']:.2f} h on {r['shards']}" for r in ph["shards"])
            table.append(
                (
                    f"organization on paper ({paper['accounts']:,} accounts x "
                    f"{paper['regions']} regions x {paper['images_per_slice']:,} images), {name}",
                    f"{ph['calls_total']:,} calls; {hours} shard(s)",
                    "-",
                    "-",
                )
            )
    o = load(out / "org.json")
    if o:
        table.append(
            (
                f"organization, {o['accounts']} accounts x {o['images_per_account']} images, "
                f"{o['regions']} regions, {o['shards']} shards ({o['state']})",
                f"slowest shard {max(o['shard_walls_s']):.1f} s / one process "
                f"{o['single_wall_s']:.1f} s = {o['slowest_shard_share']:.2f}",
                "<= 0.35",
                yes(o["slowest_shard_share"] <= 0.35),
            )
        )
        table.append(
            (
                "organization: API calls, shards vs one process",
                f"{o['shard_calls']:,} vs {o['single_calls']:,} (+{o['shard_discovery_calls']} "
                "ListAccounts)",
                "<= one process + discovery",
                yes(o["calls_ok"]),
            )
        )
        table.append(
            ("organization: the same plan", str(o["same_plan"]), "same", yes(o["same_plan"]))
        )
    return table


def print_table(table: list[tuple[str, str, str, str]], markdown: bool) -> None:
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    head = (
        f"{dt.date.today().isoformat()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load_avg}"
    )
    print(f"\n{head}")
    header = ("benchmark", "measured", "goal", "met")
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("| " + " | ".join("---" for _ in header) + " |")
        for r in table:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(x) for x in col) for col in zip(header, *table, strict=False)]
    for r in (header, *table):
        print("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="inventory,plan,org-paper,apply,custodian,org")
    ap.add_argument("--runs", default="3", help="versus_custodian.py's interleaved runs")
    ap.add_argument("--org-accounts", default="40")
    ap.add_argument("--org-images", default="500")
    ap.add_argument("--out", help="Keep the JSON results in this directory.")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="amictl-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    steps = [
        ("inventory", "inventory.py", []),
        ("plan", "plan.py", ["--json", str(out / "plan.json")]),
        (
            "org-paper",
            "org_paper.py",
            ["--shards", "1,16,64", "--json", str(out / "org_paper.json")],
        ),
        ("apply", "apply_limit.py", ["--json", str(out / "apply_limit.json")]),
        (
            "custodian",
            "versus_custodian.py",
            ["--runs", args.runs, "--summary-json", str(out / "custodian.json")],
        ),
        (
            "org",
            "org_shards.py",
            [
                "--accounts",
                args.org_accounts,
                "--images",
                args.org_images,
                "--json",
                str(out / "org.json"),
            ],
        ),  # fmt: skip
    ]
    for name, script, extra in steps:
        if name in only and run(script, *extra) != 0:
            failed.append(script)
    print_table(rows(out), args.markdown)
    if failed:
        print(f"failed: {', '.join(failed)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
