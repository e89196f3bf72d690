"""Benchmark: plan a synthetic inventory of 100,000 images, 200,000 snapshots and
50,000 references in memory (no endpoint), as a scan would hand them over. Prints a
short table, each figure beside its goal (issue 30: model build + plan < 2 s, the plan's
JSON written with its checksum < 2 s, peak RSS < 512 MiB), with the load average: the
wall seconds of a loaded machine say little, the CPU seconds beside them say more. Last,
the floor (:func:`floor`): the CPU of one pass over the inventory and of building the
plan's actions and decisions with their reasons, what any Python planner must spend, and
how many times that the planner takes.

    .venv/bin/python bench/plan.py [--images 100000 --snapshots 200000 --references 50000]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from amictl.memory import gc_paused
from amictl.model import FamilyRule, Image, Inventory, Reference, SliceStatus, Snapshot
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_io import write_plan
from amictl.policy.plan_model import Action, Decision, Plan
from amictl.tagnames import MARK_TAG

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)

POLICY = """format: 1
holds:
  - tag: legal-hold
  - tag: retain-until
    until: value
  - deregistration_protection: true
rules:
  - name: ci
    select: {families: ["ci-*"], older_than: 7d}
    keep: {latest: 3, newer_than: 14d, launched_within: 14d}
    retire: {deregister: 0d, snapshots: delete}
  - name: rest
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 5, newer_than: 90d}
    retire: {deprecate: 0d, disable: 14d, deregister: 30d, snapshots: archive}
snapshots:
  orphaned: {only_from_images: true, older_than: 30d, action: delete}
"""


def build(n_images: int, n_snaps: int, n_refs: int, seed: int = 0) -> Inventory:
    rng = random.Random(seed)
    now = NOW
    acct = "123456789012"
    regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
    images, snaps, refs = [], [], []
    extra = n_snaps - n_images
    for i in range(n_images):
        region = regions[i % 4]
        fam = ("ci-" if i % 3 == 0 else "app-") + str(rng.randrange(2000))
        bdm = []
        s = Snapshot(
            f"snap-{i:012x}",
            acct,
            region,
            rng.choice((8, 16, 30)),
            now - dt.timedelta(days=rng.randrange(700)),
            f"Created by CreateImage(i-1) for ami-{i:012x}",
            owner_id=acct,
        )
        snaps.append(s)
        bdm.append({"device": "/dev/xvda", "snapshot_id": s.snapshot_id, "size_gib": s.size_gib})
        if i < extra // 2:
            s2 = Snapshot(
                f"snap-d{i:011x}", acct, region, 100, s.start_time, s.description, owner_id=acct
            )
            snaps.append(s2)
            bdm.append({"device": "/dev/sdf", "snapshot_id": s2.snapshot_id, "size_gib": 100})
        tags = {"family": fam, "version": str(rng.randrange(1, 60))}
        if rng.random() < 0.01:
            tags["legal-hold"] = "true"
        images.append(
            Image(
                f"ami-{i:012x}",
                acct,
                region,
                f"{fam}-{i}",
                acct,
                "available",
                now - dt.timedelta(days=rng.randrange(700)),
                tags,
                public=rng.random() < 0.005,
                block_devices=bdm,
                last_launched_time=now - dt.timedelta(days=rng.randrange(400))
                if rng.random() < 0.3
                else None,
            )
        )
    while len(snaps) < n_snaps:
        k = len(snaps)
        snaps.append(
            Snapshot(
                f"snap-f{k:011x}",
                acct,
                regions[k % 4],
                20,
                now - dt.timedelta(days=rng.randrange(700)),
                f"Created by CreateImage(i-1) for ami-f{k:011x}",
                owner_id=acct,
            )
        )
    kinds = [
        "instance",
        "launch-template-version",
        "launch-configuration",
        "auto-scaling-group",
        "ssm-parameter",
    ]
    for r in range(n_refs):
        img = images[rng.randrange(n_images)]
        refs.append(
            Reference(rng.choice(kinds), f"ref-{r}", "synthetic", img.image_id, acct, img.region)
        )
    slices = [
        SliceStatus(acct, r, k, True) for r in regions for k in ("images", "snapshots", "instances")
    ]
    return Inventory(
        images=images,
        snapshots=snaps,
        references=refs,
        slices=slices,
        accounts=[acct],
        regions=regions,
        scanned_at=now,
    )


GOALS = {"model_plan_s": 2.0, "json_s": 2.0, "rss_mib": 512.0}  # issue 30, item 3


def _halves(text: str) -> tuple[str, str]:
    return text[: len(text) // 2], text[len(text) // 2 :]


def floor(inv: Inventory, p: Plan) -> float:
    """The CPU seconds any Python planner must spend on this plan: one pass over the
    inventory (each image's owner, account, family, creation time and tags; each
    snapshot's id and tags; each reference's image) and the plan's output objects, built
    as the planner builds them: every action and decision (by position), every reason
    string and check detail made anew (one f-string of two pieces: an allocation and a copy
    of its length, less than any formatting), their tuples, the plan's two tuples; the
    garbage collector paused as the planner pauses it (what it made promoted when it ends,
    not walked). What is reused, not made: the inventory's strings (ids, regions, families)
    and the expectation tuples (the planner shares them)."""
    acts = [
        (a.type, a.account, a.region, a.rule, [_halves(r) for r in a.reasons], a.image_id,
         a.snapshot_id, list(a.after), a.size_gib, a.unsafe, a.family, a.expect)
        for a in p.actions
    ]  # fmt: skip
    decs = [
        (d.image_id, d.region, d.account, d.verdict, d.rule, [_halves(r) for r in d.reasons],
         d.family, d.version, [(n, hit, _halves(why)) for n, hit, why in d.checks])
        for d in p.decisions
    ]  # fmt: skip
    gc.collect()
    cpu = time.process_time()
    with gc_paused(promote=True):
        seen = 0
        for img in inv.images:
            if img.owner_id == img.account and img.family and img.created_at and MARK_TAG in img.tags:  # fmt: skip
                seen += 1
        for snap in inv.snapshots:
            if snap.snapshot_id and snap.tags:
                seen += 1
        for ref in inv.references:
            if ref.image_id:
                seen += 1
        actions = [
            Action(f"a{n}", t, acct, region, rule, tuple([f"{x}{y}" for x, y in why]), image,
                   snap, tuple(after), size, unsafe, family, expect)
            for n, (t, acct, region, rule, why, image, snap, after, size, unsafe, family, expect)
            in enumerate(acts, 1)
        ]  # fmt: skip
        decisions = [
            Decision(image, region, acct, verdict, rule, tuple([f"{x}{y}" for x, y in why]),
                     family, version, tuple([(c, hit, f"{x}{y}") for c, hit, (x, y) in checks]))
            for image, region, acct, verdict, rule, why, family, version, checks in decs
        ]  # fmt: skip
        made = (tuple(actions), tuple(decisions), seen)
    cpu = time.process_time() - cpu
    del made
    return cpu


def measure(n_images: int, n_snaps: int, n_refs: int, out: Path) -> dict[str, Any]:
    """Each phase's wall and CPU seconds, the plan file's size and the peak RSS."""
    inv = build(n_images, n_snaps, n_refs)
    policy = parse_policy_text(POLICY, "bench-policy.yaml")
    times: dict[str, tuple[float, float]] = {}
    w, c = time.perf_counter(), time.process_time()
    inv.resolve_families(FamilyRule())  # as the scanner does when it makes an inventory
    inv.build_indexes()
    times["model"] = (time.perf_counter() - w, time.process_time() - c)
    w, c = time.perf_counter(), time.process_time()
    p = plan(inv, policy, NOW)
    times["plan"] = (time.perf_counter() - w, time.process_time() - c)
    w, c = time.perf_counter(), time.process_time()
    checksum = write_plan(p, out)  # as `amictl plan --out` writes it: one streamed pass
    times["json"] = (time.perf_counter() - w, time.process_time() - c)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (before the floor's)
    floor_cpu = floor(inv, p)
    return {
        "images": len(inv.images),
        "snapshots": len(inv.snapshots),
        "references": len(inv.references),
        "actions": len(p.actions),
        "decisions": len(p.decisions),
        "checksum": checksum,
        "model_s": times["model"][0],
        "plan_s": times["plan"][0],
        "model_plan_s": times["model"][0] + times["plan"][0],
        "model_plan_cpu_s": times["model"][1] + times["plan"][1],
        "model_cpu_s": times["model"][1],
        "plan_cpu_s": times["plan"][1],
        "json_s": times["json"][0],
        "json_cpu_s": times["json"][1],
        "json_mb": out.stat().st_size / 1e6,
        "floor_cpu_s": floor_cpu,
        "rss_mib": rss_mib,
        "load": os.getloadavg()[0],
    }


def table(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, measured, goal, met) rows; all.py prints the same ones."""

    def met(key: str) -> str:
        return "yes" if r[key] < GOALS[key] else "**no**"

    return [
        (
            "model build + plan (wall; CPU)",
            f"{r['model_plan_s']:.2f} s ({r['model_s']:.2f} + {r['plan_s']:.2f}); "
            f"CPU {r['model_plan_cpu_s']:.2f} s ({r['model_cpu_s']:.2f} + {r['plan_cpu_s']:.2f})",
            f"< {GOALS['model_plan_s']:.0f} s",
            met("model_plan_s"),
        ),
        (
            "plan JSON written + checksum (wall; CPU)",
            f"{r['json_s']:.2f} s ({r['json_mb']:.1f} MB); CPU {r['json_cpu_s']:.2f} s",
            f"< {GOALS['json_s']:.0f} s",
            met("json_s"),
        ),
        ("peak RSS", f"{r['rss_mib']:.0f} MiB", f"< {GOALS['rss_mib']:.0f} MiB", met("rss_mib")),
    ] + (
        [
            (
                "floor: one pass + the plan's objects (CPU)",
                f"{r['floor_cpu_s']:.2f} s; plan CPU {r['plan_cpu_s'] / r['floor_cpu_s']:.1f}x "
                f"it, model + plan {r['model_plan_cpu_s'] / r['floor_cpu_s']:.1f}x",
                "(no goal)",
                "-",
            )
        ]
        if r.get("floor_cpu_s")
        else []
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--snapshots", type=int, default=200_000)
    ap.add_argument("--references", type=int, default=50_000)
    ap.add_argument("--json", help="Also write the figures to this JSON file (bench/all.py).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="amictl-bench-plan-") as tmp:
        r = measure(args.images, args.snapshots, args.references, Path(tmp) / "plan.json")
    print(
        f"{r['images']:,} images, {r['snapshots']:,} snapshots, {r['references']:,} references: "
        f"{r['actions']:,} actions, {r['decisions']:,} decisions; "
        f"load average {r['load']:.1f} ({os.cpu_count()} CPUs)"
    )
    rows = table(r)
    widths = [max(len(x[i]) for x in rows) for i in range(4)]
    for row in (("figure", "measured", "goal", "met"), *rows):
        print("  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
