"""Benchmark: plan a synthetic inventory of 100,000 images, 200,000 snapshots and
50,000 references in memory (no endpoint). Prints seconds and peak RSS.

    .venv/bin/python bench/plan.py [--images 100000 --snapshots 200000 --references 50000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import time

from amictl.model import FamilyRule, Image, Inventory, Reference, SliceStatus, Snapshot
from amictl.policy import parse_policy_text, plan

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
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
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
                f"snap-o{k:011x}",
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--snapshots", type=int, default=200_000)
    ap.add_argument("--references", type=int, default=50_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    inv = build(args.images, args.snapshots, args.references)
    built = time.perf_counter() - t0
    t_idx = time.perf_counter()
    inv.resolve_families(FamilyRule())  # as the scanner does when it makes an inventory
    inv.build_indexes()
    indexed = time.perf_counter() - t_idx
    policy = parse_policy_text(POLICY, "bench-policy.yaml")
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    t1 = time.perf_counter()
    p = plan(inv, policy, now)
    planned = time.perf_counter() - t1
    t2 = time.perf_counter()
    body = p.to_json()
    serialised = time.perf_counter() - t2
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"inventory: {len(inv.images)} images, {len(inv.snapshots)} snapshots, {len(inv.references)} references "
        f"(generated in {built:.1f} s; families, indexes and fingerprint, as the scanner makes them: "
        f"{indexed:.2f} s)"
    )
    t3 = time.perf_counter()
    plan(inv, policy, now)
    again = time.perf_counter() - t3
    print(
        f"plan: {planned:.2f} s  ({len(p.actions)} actions, {len(p.decisions)} decisions); "
        f"again on the same inventory: {again:.2f} s"
    )
    print(f"plan JSON + checksum: {serialised:.2f} s ({len(body) / 1e6:.1f} MB)")
    print(f"peak RSS: {rss:.0f} MiB")
    print(f"summary: {p.summary}")


if __name__ == "__main__":
    main()
