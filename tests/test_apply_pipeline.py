"""Issue 30: the pipelined apply and DeregisterImage's DeleteAssociatedSnapshots.

A deregister takes its snapshots with it only where the live decision of its wave lets
every one of them go; AWS's per-snapshot answer is recorded, and a snapshot AWS skipped
stays in the plan as its own action. Each test checks AWS's own state; the twin patches
the guard out and shows the kept snapshot is then lost.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from amictl.apply import executor, pipeline
from amictl.apply.executor import ApplyOptions, execute, prepare
from amictl.apply.pipeline import pick
from amictl.aws.pacing import Pacer
from amictl.inventory import scan
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_model import Action, Plan
from amictl.state.store import Store
from conftest import Env

POLICY = """format: 1
name: p1
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""

FLEET = """images:
  - {alias: f1, age_days: 300, tags: {family: f, version: '1'},
     snapshots: [{size_gib: 8}, {size_gib: 4, device: /dev/sdf}]}
  - {alias: f2, age_days: 200, tags: {family: f, version: '2'},
     snapshots: [{size_gib: 8}, {size_gib: 4, device: /dev/sdf}]}
  - {alias: f3, age_days: 100, tags: {family: f, version: '3'}}
"""


def make_plan(env: Env) -> Plan:
    return plan(
        scan(env.connector()), parse_policy_text(POLICY, "p1.yaml"), dt.datetime.now(dt.UTC)
    )


def apply(env: Env, p: Plan, tmp_path: Any, workers: int = 2) -> Any:
    store = Store(f"sqlite:///{tmp_path}/state-{env.account}.db")
    o = ApplyOptions(max_destroy=100, max_share=1.0, allow_whole_family=True, workers=workers)
    conn = env.connector()
    return execute(conn, store, prepare(conn, p, o, store), o), store


def snaps_of(env: Env, image_id: str) -> list[str]:
    img = env.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"] if "Ebs" in m]


def live_snapshots(env: Env) -> set[str]:
    ec2 = env.client("ec2")
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def messages(store: Store, p: Plan) -> dict[str, str]:
    rows = store.journal_rows(plan_checksum=p.checksum, limit=1000)
    return {r["action_id"]: r["message"] or "" for r in rows if r["status"] != "intended"}


def test_snapshots_go_with_their_image_when_every_one_may(env, tmp_path):
    ids = env.load(FLEET)["aliases"]
    before = {i: snaps_of(env, ids[i]) for i in ("f1", "f2")}
    p = make_plan(env)
    res, store = apply(env, p, tmp_path)
    assert not res.failed and not res.skipped
    assert len(res.done) == len(p.actions)  # every snapshot action done, none by its own call
    left = live_snapshots(env)
    assert not {s for ss in before.values() for s in ss} & left
    msg = messages(store, p)
    snap_actions = [a for a in p.actions if a.type == "delete-snapshot"]
    assert len(snap_actions) == 4
    assert all("DeleteAssociatedSnapshots" in msg[a.id] for a in snap_actions)


def _share_after_plan(env: Env) -> tuple[Plan, str, str, str]:
    """A plan that deletes both snapshots of f1; then its data snapshot is shared with
    another account (createVolumePermission): that snapshot must stay, the image goes."""
    ids = env.load(FLEET)["aliases"]
    root, data = snaps_of(env, ids["f1"])
    p = make_plan(env)
    assert {a.snapshot_id for a in p.actions if a.type == "delete-snapshot"} >= {root, data}
    env.client("ec2").modify_snapshot_attribute(
        SnapshotId=data,
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=["444455556666"],
    )
    return p, ids["f1"], root, data


def test_a_snapshot_shared_after_the_plan_keeps_delete_associated_snapshots_off(env, tmp_path):
    p, image, root, data = _share_after_plan(env)
    res, store = apply(env, p, tmp_path)
    left = live_snapshots(env)
    assert image not in {
        i["ImageId"] for i in env.client("ec2").describe_images(Owners=["self"])["Images"]
    }
    assert data in left  # AWS still has the shared snapshot
    assert root not in left  # the other went by its own DeleteSnapshot
    by_snap = {a.snapshot_id: a.id for a in p.actions if a.type == "delete-snapshot"}
    msg = messages(store, p)
    assert "DeleteAssociatedSnapshots" not in msg[by_snap[root]]
    assert by_snap[data] in res.skipped and "shared with" in res.skipped[by_snap[data]]
    dereg = next(a.id for a in p.actions if a.type == "deregister" and a.image_id == image)
    assert "with its snapshots" not in msg[dereg]


def test_twin_without_the_guard_the_shared_snapshot_is_lost(env, tmp_path, monkeypatch):
    """The same attack with the live snapshot decision patched out of ``with_associated``:
    DeleteAssociatedSnapshots is used and AWS deletes the shared snapshot."""

    def no_guard(ec2, dereg, verdict, followers, view, ctx, now):  # noqa: ANN001, ANN202
        if not verdict.go or not followers:
            return verdict
        return replace(verdict, with_snapshots=tuple(f.id for f in followers))

    monkeypatch.setattr(executor, "with_associated", no_guard)
    p, _image, _root, data = _share_after_plan(env)
    apply(env, p, tmp_path)
    assert data not in live_snapshots(env)  # the guard is what keeps it


def test_a_snapshot_aws_skips_stays_its_own_action(env, tmp_path, monkeypatch):
    """AWS skips a snapshot another image registered on since the view was read: its
    delete-snapshot action is decided again on its own (kept: now used by an image)."""
    ids = env.load(FLEET)["aliases"]
    root, data = snaps_of(env, ids["f1"])
    p = make_plan(env)
    real = executor.deregister_with_snapshots
    newcomer: list[str] = []

    def racing(ec2: Any, a: Action) -> Any:
        if a.image_id == ids["f1"] and not newcomer:
            mapping = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": data}}]
            newcomer.append(
                env.client("ec2").register_image(
                    Name="late", RootDeviceName="/dev/xvda", BlockDeviceMappings=mapping
                )["ImageId"]
            )
        return real(ec2, a)

    monkeypatch.setattr(executor, "deregister_with_snapshots", racing)
    res, store = apply(env, p, tmp_path, workers=1)
    assert newcomer
    left = live_snapshots(env)
    assert data in left and root not in left
    by_snap = {a.snapshot_id: a.id for a in p.actions if a.type == "delete-snapshot"}
    assert by_snap[data] in res.skipped and "used by" in res.skipped[by_snap[data]]
    assert "DeleteAssociatedSnapshots" in messages(store, p)[by_snap[root]]
    rows = store.journal_rows(plan_checksum=p.checksum, limit=1000)
    finals = Counter(r["action_id"] for r in rows if r["status"] != "intended")
    assert max(finals.values()) == 1  # one final row per action


def _act(i: int, type_: str) -> Action:
    return Action(
        id=f"a{i}", type=type_, account="111122223333", region="us-east-1", rule="r", reasons=()
    )


@pytest.mark.parametrize("horizon", [0.0, 1.0])
def test_pick_fills_a_wave_by_each_api_bucket(horizon):
    """A wave takes an action only when its API's bucket has a token for it (now or within
    the horizon), after the started ones: an empty bucket never holds up another API."""
    clock = [0.0]
    pacer = Pacer(
        {"DeregisterImage": (3.0, 1.0), "CreateTags": (10.0, 10.0)},
        clock=lambda: clock[0],
        headroom_s=0,
    )
    ready = [_act(i, "deregister") for i in range(6)] + [_act(10 + i, "mark") for i in range(3)]
    started: Counter[tuple[str, str, str]] = Counter(
        {("111122223333", "us-east-1", "DeregisterImage"): 1}
    )
    wave = pick(ready, started, pacer, per_api=100, horizon=horizon)
    deregs = [a for a in wave if a.type == "deregister"]
    # 3 tokens, 1 promised to a started call, + 1 a second when the horizon is 1 s
    assert len(deregs) == 2 + int(horizon)
    assert sum(a.type == "mark" for a in wave) == 3
    # at most per_api of each API in one wave
    assert Counter(a.type for a in pick(ready, Counter(), pacer, 1, horizon)) == {
        "deregister": 1,
        "mark": 1,
    }
    assert pipeline.api_key(_act(1, "unmark")) == ("111122223333", "us-east-1", "DeleteTags")


def test_cadence_sizes_a_wave_by_what_the_workers_start_within_one_read():
    c = pipeline.Cadence(workers=4)
    assert c.per_api(2) == 4  # nothing measured: --workers of each (the first wave)
    assert not c.room(1) and c.room(0)
    c.read_s, c.action_s = 0.5, 0.1
    assert c.per_api(1) == 20 and c.per_api(2) == 10  # 4 workers x 5 actions a read
    c.read_s = 0.05
    assert c.per_api(2) == 4  # never fewer than --workers of each API
    c.read_s = 0.5
    assert c.room(10)  # 10 waiting x 0.1 s / 4 workers = 0.25 s <= half a read
    assert not c.room(11)
    c.took(0.3)
    assert c.action_s == pytest.approx(0.1 + 0.2 * (0.3 - 0.1))
    assert pipeline.Cadence(workers=4, batch=7).per_api(2) == 7  # --batch fixes it


def test_the_first_actions_of_an_api_wait_for_what_unlocks_them():
    marks = [_act(i, "mark") for i in range(3)]
    dereg = replace(_act(10, "deregister"), after=("a0",))
    snap = replace(_act(20, "delete-snapshot"), after=("a10",), snapshot_id="snap-1")
    inflight = {"a0": None}
    assert pipeline.opens_an_api([dereg, *marks[1:]], inflight, seen={"mark"}) is True
    key = pipeline.api_key(dereg)
    assert pipeline.opens_an_api([dereg], inflight, seen={key}) is False  # started before
    assert pipeline.opens_an_api(marks[1:], inflight, seen=set()) is False  # none held back
    # a snapshot its in-flight deregister deletes with it (DeleteAssociatedSnapshots)
    verdict = executor.Verdict("go", with_snapshots=("a20",))
    assert pipeline.opens_an_api([snap], {"a10": verdict}, seen=set()) is False
    assert pipeline.opens_an_api([snap], {"a10": None}, seen=set()) is True


FRESH_FLEET = "images:\n" + "".join(
    f"  - {{alias: g{i}, age_days: {300 - i}, tags: {{family: g, version: '{i}'}}}}\n"
    for i in range(1, 10)
)


def _freshness(env: Env, tmp_path: Any, monkeypatch: Any) -> tuple[list[str], int]:
    """Apply a 24-action plan with 2 workers, the next wave read while calls go out;
    return the actions decided on a view that began before one of their dependencies
    finished (the scheduler saw it final). Each read's start and each finish is timed."""
    env.load(FRESH_FLEET)
    p = make_plan(env)
    reads: list[tuple[float, set[str]]] = []
    real_read = executor.LiveReader.read

    def read(self: Any, target: Any, image_ids: set[str], snapshot_ids: set[str]) -> Any:
        reads.append((time.monotonic(), set(image_ids) | set(snapshot_ids)))
        return real_read(self, target, image_ids, snapshot_ids)

    monkeypatch.setattr(executor.LiveReader, "read", read)
    done_at: dict[str, float] = {}
    store = Store(f"sqlite:///{tmp_path}/fresh.db")
    o = ApplyOptions(max_destroy=100, max_share=1.0, allow_whole_family=True, workers=2)
    conn = env.connector()
    res = execute(
        conn,
        store,
        prepare(conn, p, o, store),
        o,
        progress=lambda a, st, msg: done_at.setdefault(a.id, time.monotonic()),
    )
    with_image = {aid for aid, m in messages(store, p).items() if "DeleteAssociatedSnapshots" in m}
    stale = []
    for a in p.actions:
        if a.id in with_image:
            continue  # done by its deregister's call, decided on that deregister's view
        resource = a.snapshot_id if a.type == "delete-snapshot" else a.image_id
        # the view it was decided on: the last read of its resource before it ended
        began = [t for t, ids in reads if resource in ids and t < done_at[a.id]]
        deps = [done_at.get(d, float("inf")) for d in a.after]
        if began and deps and max(began) < max(deps):
            stale.append(a.id)
    return stale, len(res.done)


def test_every_view_begins_after_the_actions_its_wave_depends_on(env, tmp_path, monkeypatch):
    assert _freshness(env, tmp_path, monkeypatch) == ([], 24)


def test_twin_a_wave_that_takes_actions_whose_dependency_is_in_flight_is_stale(
    env, tmp_path, monkeypatch
):
    """The same apply with the dependency guard of ``_ready`` weakened (an action counts
    as ready while its dependency is still in flight): the freshness check catches it."""

    def ready(pending: Any, status: Any, record: Any) -> list[Action]:
        return sorted(pending.values(), key=lambda a: executor._order(a.id))

    monkeypatch.setattr(executor, "_ready", ready)
    assert _freshness(env, tmp_path, monkeypatch)[0]
