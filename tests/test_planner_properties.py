"""Hypothesis: over generated fleets and policies, the planner never breaks a safety rule."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amictl.model import IN_USE_KINDS, Image, Inventory, Reference, SliceStatus, Snapshot
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_model import DESTRUCTIVE
from amictl.tagnames import bake_unusable

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
ACCT, OTHER = "123456789012", "999999999999"
REF_KINDS = [
    "instance",
    "launch-template-version",
    "launch-configuration",
    "auto-scaling-group",
    "ssm-parameter",
    "channel",
]


@st.composite
def inventories(draw):
    n = draw(st.integers(1, 14))
    regions = ["us-east-1", "eu-west-1"]
    snaps: list[Snapshot] = []
    images: list[Image] = []
    refs: list[Reference] = []
    for i in range(n):
        region = draw(st.sampled_from(regions))
        fam = draw(st.sampled_from(["web", "db", "ci", None]))
        owner = ACCT if draw(st.integers(0, 9)) else OTHER
        bdm = []
        reuse = [s for s in snaps if s.region == region]
        if reuse and draw(st.booleans()) and draw(st.booleans()):
            s = draw(st.sampled_from(reuse))
            bdm.append(
                {"device": "/dev/xvda", "snapshot_id": s.snapshot_id, "size_gib": s.size_gib}
            )
        else:
            for j in range(draw(st.integers(1, 2))):
                s = Snapshot(
                    f"snap-{i:04d}{j}",
                    ACCT,
                    region,
                    draw(st.integers(1, 100)),
                    NOW - dt.timedelta(days=draw(st.integers(0, 800))),
                    f"Created by CreateImage(i-1) for ami-{i:08x}",
                    owner_id=ACCT,
                )
                snaps.append(s)
                bdm.append(
                    {"device": f"/dev/sd{j}", "snapshot_id": s.snapshot_id, "size_gib": s.size_gib}
                )
        tags = {}
        if fam:
            tags = {"family": fam, "version": str(draw(st.integers(1, 12)))}
        if draw(st.integers(0, 6)) == 0:
            tags["legal-hold"] = draw(st.sampled_from(["true", "false", "yes"]))
        if draw(st.integers(0, 8)) == 0:
            tags["retain-until"] = draw(st.sampled_from(["2027-01-01", "2020-01-01", "not-a-date"]))
        if draw(st.integers(0, 5)) == 0:
            tags["amictl:retire-since"] = (
                NOW - dt.timedelta(days=draw(st.integers(0, 60)))
            ).isoformat()
        img = Image(
            image_id=f"ami-{i:08x}",
            account=ACCT,
            region=region,
            name=f"img-{i}",
            owner_id=owner,
            state=draw(st.sampled_from(["available", "available", "disabled", "pending"])),
            created_at=NOW - dt.timedelta(days=draw(st.integers(0, 800))),
            tags=tags,
            public=draw(st.integers(0, 8)) == 0,
            shared_with=["210987654321"] if draw(st.integers(0, 8)) == 0 else [],
            deregistration_protection=draw(st.sampled_from(["disabled"] * 6 + ["enabled"])),
            last_launched_time=(NOW - dt.timedelta(days=draw(st.integers(0, 400))))
            if draw(st.booleans())
            else None,
            block_devices=bdm,
        )
        if images and draw(st.integers(0, 4)) == 0:
            img.source_image_id = draw(st.sampled_from(images)).image_id
        images.append(img)
        for k in draw(st.lists(st.sampled_from(REF_KINDS), max_size=2)):
            refs.append(Reference(k, f"{k}-{i}", f"{k} {i}", img.image_id, ACCT, region))
    slices = []
    for r in regions:
        for kind in ("images", "snapshots", "instances", "launch-templates"):
            ok = draw(st.integers(0, 12)) != 0
            slices.append(SliceStatus(ACCT, r, kind, ok, error_code=None if ok else "AccessDenied"))
    return Inventory(
        images=images,
        snapshots=snaps,
        references=refs,
        slices=slices,
        accounts=[ACCT],
        regions=regions,
        scanned_at=NOW,
    )


@st.composite
def policies(draw):
    latest = draw(st.sampled_from(["", "latest: 0", "latest: 1", "latest: 3"]))
    in_use = draw(st.sampled_from(["", "in_use: false"]))
    shared = draw(st.sampled_from(["", "shared: false"]))
    anc = draw(st.sampled_from(["", "ancestors: false"]))
    stages = draw(
        st.sampled_from(
            [
                "deregister: 0d",
                "deprecate: 0d\n      deregister: 30d",
                "deprecate: 0d\n      disable: 7d\n      deregister: 14d",
                "disable: 0d",
            ]
        )
    )
    snaps = draw(st.sampled_from(["delete", "archive", "keep"]))
    fams = draw(st.sampled_from(['["*"]', '["web", "ci"]', '["d*"]']))
    unf = draw(st.booleans())
    keep_lines = (
        "\n".join(f"      {x}" for x in (latest, in_use, shared, anc) if x)
        or "      newer_than: 0d"
    )
    orphan = draw(st.sampled_from(["delete", "archive", "report"]))
    text = f"""format: 1
holds:
  - tag: legal-hold
  - tag: retain-until
    until: value
  - deregistration_protection: true
rules:
  - name: r1
    select:
      families: {fams}
      unfamilied: {str(unf).lower()}
    keep:
{keep_lines}
    retire:
      {stages}
      snapshots: {snaps}
snapshots:
  orphaned:
    only_from_images: {str(draw(st.booleans())).lower()}
    older_than: 7d
    action: {orphan}
"""
    return parse_policy_text(text, "generated.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories(), policies())
def test_planner_never_breaks_a_safety_rule(inv, policy):
    p = plan(inv, policy, NOW)
    by_id = {i.image_id: i for i in inv.images}
    rule = policy.rules[0]
    dereg = {a.image_id for a in p.actions if a.type == "deregister"}
    for a in p.actions:
        if a.type not in DESTRUCTIVE:
            continue
        # rule 3: nothing destructive in an incomplete slice
        assert inv.slice_complete(a.account, a.region), a
        if a.image_id and a.type in ("deprecate", "disable", "deregister"):
            img = by_id[a.image_id]
            # rule 1: owned only
            assert img.owned
            # rule 2: holds win
            assert img.tags.get("legal-hold", "false").lower() == "false"
            ru = img.tags.get("retain-until")
            assert ru is None or ru == "2020-01-01"
            assert not img.protected
            # in use: kept, unless in_use: false, and then flagged unsafe
            in_use = any(r.kind in IN_USE_KINDS for r in inv.refs(img.image_id))
            if in_use:
                assert not rule.keep.in_use and a.unsafe
            if img.shared:
                assert not rule.keep.shared
            if rule.keep.latest and img.family:
                # fewer than N versions that can launch (available, not a failed or
                # unfinished bake) are newer than it: it is among the N newest
                fam = inv.families[(img.account, img.region, img.family)]
                newer = fam[: fam.index(img)]
                usable = [i for i in newer if i.state == "available" and not bake_unusable(i.tags)]
                assert bake_unusable(img.tags) or len(usable) >= rule.keep.latest
            assert img.state != "pending"
        if a.type in ("delete-snapshot", "archive-snapshot"):
            users = inv.images_by_snapshot.get(a.snapshot_id, [])
            # rule 4: never a snapshot an image that stays still uses
            assert all(u.image_id in dereg for u in users), (a, users)
            for u in users:
                assert any(
                    b.image_id == u.image_id and b.type == "deregister" and b.id in a.after
                    for b in p.actions
                )
    # every selected image appears once in decisions
    ids = [d.image_id for d in p.decisions]
    assert len(ids) == len(set(ids))
    # deterministic: same input, same plan and checksum
    again = plan(inv, policy, NOW)
    assert again.to_dict() == p.to_dict()
    assert again.checksum == p.checksum


@settings(max_examples=50, deadline=None)
@given(inventories())
def test_incomplete_inventory_blocks_everything_destructive(inv):
    for s in inv.slices:
        s.complete = False
        s.error_code = "AccessDenied"
    policy = parse_policy_text(
        "format: 1\nrules:\n  - name: all\n    select: {families: ['*'], unfamilied: true}\n"
        "    keep: {in_use: false, shared: false}\n    retire: {deregister: 0d}\n"
        "snapshots: {orphaned: {only_from_images: false, older_than: 0d, action: delete}}\n"
    )
    p = plan(inv, policy, NOW)
    assert not [a for a in p.actions if a.type in DESTRUCTIVE or a.type == "mark"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories(), policies())
def test_plan_json_round_trip_keeps_the_checksum(inv, policy):
    import json

    from amictl.policy.plan_model import Plan

    p = plan(inv, policy, NOW)
    d = json.loads(p.to_json())
    again = Plan.from_dict(d)
    assert again.checksum == d["checksum"] == p.checksum
    assert again.to_dict() == d
