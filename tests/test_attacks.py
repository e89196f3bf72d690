"""Hostile tests of apply's promises, against the sandbox (real boto3 over HTTP).

Each test asserts the SAFE behaviour: an attack that works makes its test fail.
Plans are edited and resealed with the public checksum (``Plan.checksum_of``), as
anyone with the file can.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from amictl.apply.executor import ApplyOptions, execute, prepare
from amictl.cli.main import cli
from amictl.errors import AmictlError
from amictl.policy.plan_model import Plan
from amictl.state.store import Store

POLICY = """format: 1
name: p1
holds:
  - tag: legal-hold
  - tag: retain-until
    until: value
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


def fleet(n: int = 3, fam: str = "f", more: str = "", snap_tags: str = "") -> str:
    imgs = "".join(
        f"  - {{alias: {fam}{i}, age_days: {400 - i}, tags: {{family: {fam}, version: '{i}'}}, "
        f"snapshots: [{{size_gib: 8{snap_tags}}}]}}\n"
        for i in range(1, n + 1)
    )
    return "images:\n" + imgs + more


class Cli:
    def __init__(self, env, tmp_path, monkeypatch, policy: str = POLICY):
        self.env, self.tmp = env, tmp_path
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)
        (tmp_path / "policy.yaml").write_text(policy)

    def __call__(self, *args: str) -> tuple[int, str]:
        res = CliRunner().invoke(cli, [*args, *self.env.cli_args()])
        self.stderr = f"{res.exception!r} {getattr(res.exception, '__dict__', '')}"
        code = res.exit_code
        if isinstance(res.exception, AmictlError):
            code = res.exception.exit_code
        elif res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        return code, res.stdout

    def plan(self, *extra: str) -> dict:
        out = self.tmp / "plan.json"
        code, _ = self(
            "plan", "-p", str(self.tmp / "policy.yaml"), "--out", str(out), "-o", "json", *extra
        )
        assert code == 0
        return json.loads(out.read_text())

    def write(self, plan: dict, name: str = "plan.json") -> Path:
        """Write an (edited) plan, resealed with the public checksum."""
        body = {k: v for k, v in plan.items() if k != "checksum"}
        body["checksum"] = Plan.checksum_of(body)
        path = self.tmp / name
        path.write_text(json.dumps(body))
        return path

    def apply(self, *extra: str, name: str = "plan.json") -> tuple[int, str]:
        return self("apply", str(self.tmp / name), "--yes", "-o", "json", *extra)


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def live_images(env) -> set[str]:
    ec2 = env.client("ec2")
    return {
        i["ImageId"] for i in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    }


def live_snapshots(env) -> set[str]:
    return {
        s["SnapshotId"]
        for s in env.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }


def snaps_of(env, image_id: str) -> list[str]:
    img = env.client("ec2").describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"] if m.get("Ebs")]


def act(plan: dict, type_: str, image_id: str) -> dict:
    return next(a for a in plan["actions"] if a["type"] == type_ and a.get("image_id") == image_id)


def lib_apply(env, plan: dict, conn=None, progress=None, **opts):
    """What `amictl apply` does (prepare = refusals, then execute), as a library call."""
    store = Store(os.environ["AMICTL_STATE"])
    o = ApplyOptions(**opts)
    conn = conn or env.connector()
    prep = prepare(conn, Plan.from_dict(plan), o, store)
    return execute(conn, store, prep, o, progress)


MARKED_P1 = "'amictl:retire-since': '2020-01-01T00:00:00Z', 'amictl:retired-by': p1"


# ============================================================ attacks that SUCCEED (fail now)


def test_held_snapshot_holds_its_image_even_when_describe_snapshots_is_throttled(env, run, sandbox):
    """A legal hold put on an image's snapshot after the plan was made must stop the
    deregister. recheck_image reads each snapshot through _describe_snapshot_quiet, which
    turns ANY ClientError but AccessDenied/UnauthorizedOperation (throttling after the
    retries, 5xx, ...) into "not ours to read": the hold is never seen (fail open)."""
    ids = env.load(fleet(3))["aliases"]
    p = run.plan()
    assert act(p, "deregister", ids["f1"])
    sid = snaps_of(env, ids["f1"])[0]
    env.client("ec2").create_tags(Resources=[sid], Tags=[{"Key": "legal-hold", "Value": "yes"}])
    sandbox.set_faults([{"action": "DescribeSnapshots", "code": "InternalError", "status": 500}])
    try:  # max_attempts=1 stands for "still failing after botocore's retries"
        lib_apply(env, p, conn=env.connector(max_attempts=1))
    except Exception:  # noqa: BLE001 - refusing or failing is fine; deregistering is not
        pass
    finally:
        sandbox.clear_faults()
    assert ids["f1"] in live_images(env)
    assert sid in live_snapshots(env)


def test_retain_until_with_an_empty_value_keeps_the_image(env, run):
    """docs/policy.md: 'a bad date keeps the image'. parse_time('') returns None (not
    ValueError), and hold_reasons then treats the hold as absent: planned AND applied."""
    ids = env.load(fleet(3))["aliases"]
    env.client("ec2").create_tags(
        Resources=[ids["f1"]], Tags=[{"Key": "retain-until", "Value": ""}]
    )
    run.plan()
    run.apply()
    assert ids["f1"] in live_images(env)


def test_launch_template_pinned_to_an_older_ssm_parameter_version_keeps_the_image(env, run):
    """A launch-template version whose ImageId is `resolve:ssm:/param:1` launches the image
    that version 1 of the parameter holds. The launch-template collector skips every
    `resolve:ssm:` value ('caught by the SSM parameter collector'), which reads only the
    parameter's CURRENT value: the pinned image counts as unused and is deregistered."""
    ids = env.load(fleet(3))["aliases"]
    ssm = env.client("ssm")
    ssm.put_parameter(Name="/golden/f", Value=ids["f1"], Type="String", DataType="aws:ec2:image")
    ssm.put_parameter(
        Name="/golden/f", Value=ids["f3"], Type="String", DataType="aws:ec2:image", Overwrite=True
    )
    assert ssm.get_parameter(Name="/golden/f:1")["Parameter"]["Value"] == ids["f1"]
    env.client("ec2").create_launch_template(
        LaunchTemplateName="pinned", LaunchTemplateData={"ImageId": "resolve:ssm:/golden/f:1"}
    )
    run.plan()
    run.apply()
    assert ids["f1"] in live_images(env)


def test_launch_template_created_during_apply_stops_a_later_deregister(env, run):
    """A launch template made while apply runs (right after the first deregister) must be
    seen before the next deregister: apply re-reads the references when any launch
    template changed, not only when its 60 s cache expires."""
    ids = env.load(fleet(4))["aliases"]
    p = run.plan()
    planned = {ids[f] for f in ("f1", "f2", "f3")}
    assert {a["image_id"] for a in p["actions"] if a["type"] == "deregister"} == planned
    ec2 = env.client("ec2")
    seen: list[str] = []

    def progress(a, st, msg):
        if a.type == "deregister" and not seen:
            seen.append(a.image_id)
            for other in sorted(planned - {a.image_id}):
                ec2.create_launch_template(
                    LaunchTemplateName=f"mid-apply-{other}", LaunchTemplateData={"ImageId": other}
                )

    lib_apply(env, p, progress=progress, workers=1)
    assert seen and seen[0] not in live_images(env)
    assert planned - {seen[0]} <= live_images(env)


def test_whole_family_refusal_holds_when_another_apply_runs_between_check_and_lock(
    env, run, tmp_path
):
    """The blast-radius refusal is computed in prepare() (before the confirmation prompt)
    but the account/region lock is only taken in execute(). Two plans that each leave the
    family alive, confirmed at the same time, wipe it out: the first one's check is stale."""
    ids = env.load(fleet(4))["aliases"]
    fam = {ids[f"f{i}"] for i in range(1, 5)}
    pa = run.plan()  # p1: keep latest 1 -> deregisters f1..f3
    pol_b = (
        POLICY.replace("name: p1", "name: p2")
        .replace("older_than: 30d}", "tags: {retire: 'yes'}}")
        .replace("keep: {latest: 1}", "keep: {}")
    )
    (tmp_path / "b.yaml").write_text(pol_b)
    env.client("ec2").create_tags(Resources=[ids["f4"]], Tags=[{"Key": "retire", "Value": "yes"}])
    assert run("plan", "-p", str(tmp_path / "b.yaml"), "--out", str(tmp_path / "b.json"))[0] == 0
    pb = json.loads((tmp_path / "b.json").read_text())  # p2: retires f4 only
    store = Store(os.environ["AMICTL_STATE"])
    conn = env.connector()
    o = ApplyOptions()
    prep_a = prepare(conn, Plan.from_dict(pa), o, store)  # operator A: shown, asked ...
    prep_b = prepare(conn, Plan.from_dict(pb), o, store)  # operator B: shown, asked ...
    execute(conn, store, prep_b, o)  # B confirms first
    try:
        execute(conn, store, prep_a, o)  # A confirms: its blast-radius check may be stale
    except AmictlError as exc:  # refused under the lock (exit 3): the safe outcome
        assert exc.exit_code == 3
    assert live_images(env) & fam, "every image of family f was deregistered"


@pytest.mark.xfail(
    strict=True,
    reason="by the policy spec, an instance that is shutting-down is on its way to terminated "
    "and does not keep its image",
)
def test_instance_shutting_down_counts_as_in_use(env, run):
    """The promise: an instance in ANY non-terminated state keeps its image. The collectors
    and recheck only count pending/running/stopping/stopped (ALIVE_STATES, RUNNING_STATES):
    a shutting-down instance does not keep its image."""
    ids = env.load(fleet(3) + "instances: [{alias: i, image: f1, state: shutting-down}]\n")[
        "aliases"
    ]
    run.plan()
    run.apply()
    assert ids["f1"] in live_images(env)


# ------------------------------------------- the policy a plan carries is trusted by apply


def test_edited_rule_name_does_not_extend_force_unsafe_to_another_in_use_image(env, run):
    """The operator reviews a plan whose rule `lenient` (in_use: false) retires family f and
    passes --force-unsafe. The edited plan adds a deregister of g1 (governed by `strict`,
    in use by an instance) naming rule `lenient` with unsafe: true. recheck_image trusts
    action.rule; it never checks that the rule selects the image."""
    policy = """format: 1
name: p1
rules:
  - name: lenient
    select: {families: [f], older_than: 30d}
    keep: {latest: 1, in_use: false}
    retire: {deregister: 0d, snapshots: keep}
  - name: strict
    select: {families: [g], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: keep}
"""
    (run.tmp / "policy.yaml").write_text(policy)
    ids = env.load(
        fleet(3)
        + fleet(3, fam="g").replace("images:\n", "")
        + "instances: [{alias: i1, image: f1}, {alias: i2, image: g1}]\n"
    )["aliases"]
    p = run.plan()
    assert any(a.get("unsafe") for a in p["actions"])
    assert not any(a.get("image_id") == ids["g1"] for a in p["actions"])
    base = dict(act(p, "deregister", ids["f1"]), expect={})
    p["actions"] += [
        dict(base, id="x1", type="mark", image_id=ids["g1"], unsafe=False, after=[]),
        dict(base, id="x2", image_id=ids["g1"], after=["x1"]),
    ]
    run.write(p)
    run.apply("--force-unsafe")
    assert ids["g1"] in live_images(env), "g1 is in use and its rule keeps images in use"


def test_edited_policy_families_do_not_bypass_the_whole_family_refusal(env, run):
    """blast_radius() resolves families with the plan's policy.families: a plan edited to a
    family tag and name pattern nothing has makes 'every image of a family' invisible."""
    (run.tmp / "policy.yaml").write_text(POLICY.replace("keep: {latest: 1}", "keep: {}"))
    ids = env.load(fleet(3))["aliases"]
    p = run.plan()
    assert run.apply()[0] == 3  # the honest plan is refused: whole family
    p["policy"]["families"] = {"tag": "x-none", "version_tag": "x-none", "name_pattern": "^$"}
    run.write(p)
    code, _ = run.apply()
    assert code == 3
    assert {ids["f1"], ids["f2"], ids["f3"]} <= live_images(env)


def test_edited_policy_name_does_not_advance_another_policys_marks(env, run):
    """f1 is in retirement by policy p2 (amictl:retired-by=p2); the plan of p1 leaves it.
    Renaming the plan's policy to p2 and adding a deregister makes apply advance it."""
    ids = env.load(
        fleet(3).replace(
            "{alias: f1, age_days: 399, tags: {family: f, version: '1'}",
            "{alias: f1, age_days: 399, tags: {family: f, version: '1', "
            "'amictl:retire-since': '2020-01-01T00:00:00Z', 'amictl:retired-by': p2}",
        )
    )["aliases"]
    p = run.plan()
    assert not any(a.get("image_id") == ids["f1"] for a in p["actions"])
    tmpl = act(p, "deregister", ids["f2"])
    p["policy"]["name"] = "p2"
    p["actions"] = [dict(tmpl, id="a1", image_id=ids["f1"], after=[], expect={})]
    run.write(p)
    run.apply()
    assert ids["f1"] in live_images(env)


def test_edited_plan_cannot_drop_the_policys_own_hold(env, run):
    """The policy holds `keep-me`; the planner keeps f1 (keep-me=yes). Deleting the hold
    from the plan's policy.holds and adding a mark + deregister: apply only enforces the
    built-in holds (DEFAULT_HOLDS) plus whatever the plan still lists."""
    (run.tmp / "policy.yaml").write_text(
        POLICY.replace("  - tag: legal-hold\n", "  - tag: keep-me\n")
    )
    ids = env.load(fleet(3))["aliases"]
    env.client("ec2").create_tags(Resources=[ids["f1"]], Tags=[{"Key": "keep-me", "Value": "yes"}])
    p = run.plan()
    assert not any(a.get("image_id") == ids["f1"] for a in p["actions"])
    tmpl = act(p, "deregister", ids["f2"])
    p["policy"]["holds"] = []
    p["actions"] += [
        dict(tmpl, id="x1", type="mark", image_id=ids["f1"], after=[], expect={}),
        dict(tmpl, id="x2", image_id=ids["f1"], after=["x1"], expect={}),
    ]
    run.write(p)
    run.apply()
    assert ids["f1"] in live_images(env)


def test_edited_plan_cannot_drop_require_recycle_bin(env, run):
    """options.require_recycle_bin: true refuses when deletions are not recoverable; the
    flag is read from the plan, so flipping it in the file removes the refusal."""
    (run.tmp / "policy.yaml").write_text(POLICY + "options: {require_recycle_bin: true}\n")
    ids = env.load(fleet(2))["aliases"]
    p = run.plan()
    assert run.apply()[0] == 3
    p["policy"]["options"]["require_recycle_bin"] = False
    run.write(p)
    code, _ = run.apply()
    assert code == 3
    assert ids["f1"] in live_images(env)


# ============================================================ attacks that FAIL (pass now)


def test_edited_plan_aimed_at_in_use_shared_held_protected_images_touches_none(env, run):
    """Every kind of reason to keep, on images already marked by p1 (so only the live
    re-check stands in the way), with actions flagged unsafe and --force-unsafe given
    (their rule keeps images in use and shared); snapshot actions swapped to snapshots a
    registered image uses, that are held, or shared; expect dropped; rule names kept."""
    org = "arn:aws:organizations::111122223333:organization/o-abcdefghij"
    x = [
        ("u", ""),
        ("ltimg", ""),
        ("lcimg", ""),
        ("ssmimg", ""),
        ("asgimg", ""),
        ("shared", ", shared_with: ['210987654321']"),
        ("org", f", shared_with: ['{org}']"),
        ("pub", ", public: true"),
        ("held", ""),
        ("ret", ""),
        ("prot", ", deregistration_protection: true"),
        ("snapheld", ""),
        ("other", ""),
    ]
    extra_tags = {
        "held": ", legal-hold: 'no'",
        "ret": ", retain-until: '2999-01-01T00:00:00Z'",
        "other": ", 'amictl:retire-since': '2020-01-01T00:00:00Z', 'amictl:retired-by': p2",
    }
    more = ""
    for i, (alias, opt) in enumerate(x):
        marks = "" if alias == "other" else ", " + MARKED_P1
        snaps = (
            "[{size_gib: 8, tags: {legal-hold: 'yes'}}]"
            if alias == "snapheld"
            else "[{size_gib: 8}]"
        )
        more += (
            f"  - {{alias: {alias}, age_days: {300 - i}, tags: {{family: x, version: '{i}'"
            f"{marks}{extra_tags.get(alias, '')}}}, snapshots: {snaps}{opt}}}\n"
        )
    more += "  - {alias: xkeep, age_days: 1, tags: {family: x, version: '99'}}\n"
    more += "  - {alias: twin, age_days: 200, reuse_snapshot_of: f1, tags: {family: x, version: '50'}}\n"
    refs = """instances: [{alias: i, image: u, state: stopped}]
launch_templates:
  - {alias: lt, name: lt, versions: [{image: ltimg}, {image: xkeep}], default_version: 2}
  - {alias: lt2, name: lt2, versions: [{image: asgimg}]}
launch_configurations: [{alias: lc, name: lc, image: lcimg}]
auto_scaling_groups: [{alias: g, name: g, launch_template: lt2, version: "1"}]
ssm_parameters: [{alias: s, name: /golden/x, image: ssmimg}]
snapshots:
  - {alias: loose-held, age_days: 90, tags: {legal-hold: 'yes'}}
  - {alias: loose-shared, age_days: 90}
"""
    ids = env.load(fleet(3) + more + refs)["aliases"]
    ec2 = env.client("ec2")
    ec2.modify_snapshot_attribute(
        SnapshotId=ids["loose-shared"],
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=["210987654321"],
    )
    p = run.plan()
    targets = [a for a, _ in x]
    keep = [
        a
        for a in p["actions"]
        if a.get("image_id") in (ids["f1"], ids["f2"]) and not a.get("snapshot_id")
    ]
    kept = {a["id"] for a in keep}
    keep += [a for a in p["actions"] if a.get("snapshot_id") and set(a.get("after", [])) <= kept]
    p["actions"] = keep
    dereg_f1 = act(p, "deregister", ids["f1"])
    tmpl = dict(dereg_f1, after=[], expect={}, unsafe=True)
    n = iter(range(1, 1000))
    attack = []
    for alias in targets:
        for t in ("deprecate", "disable", "deregister"):
            attack.append(dict(tmpl, id=f"x{next(n)}", type=t, image_id=ids[alias]))
    snap = dict(tmpl, type="delete-snapshot", unsafe=False)
    f1_snap = snaps_of(env, ids["f1"])[0]
    u_snap = snaps_of(env, ids["u"])[0]
    held_snap = snaps_of(env, ids["snapheld"])[0]
    attack += [
        # f1's snapshot is also twin's (RegisterImage on the same snapshot)
        dict(snap, id="s1", image_id=ids["f1"], snapshot_id=f1_snap, after=[dereg_f1["id"]]),
        dict(snap, id="s2", image_id=ids["f1"], snapshot_id=u_snap, after=[dereg_f1["id"]]),
        dict(snap, id="s3", image_id=ids["u"], snapshot_id=u_snap),
        dict(snap, id="s4", image_id=ids["f1"], snapshot_id=held_snap, after=[dereg_f1["id"]]),
        dict(snap, id="s5", snapshot_id=u_snap, image_id=None, rule="snapshots.orphaned"),
        dict(
            snap, id="s6", snapshot_id=ids["loose-held"], image_id=None, rule="snapshots.orphaned"
        ),
        dict(
            snap, id="s7", snapshot_id=ids["loose-shared"], image_id=None, rule="snapshots.orphaned"
        ),
        dict(
            snap,
            id="s8",
            type="archive-snapshot",
            snapshot_id=u_snap,
            image_id=None,
            rule="snapshots.orphaned",
        ),
    ]
    for a in attack:
        if a.get("image_id") is None:
            a.pop("image_id")
    p["actions"] += attack
    # the most permissive orphan rule, so only the live checks are left
    p["policy"]["snapshots"]["orphaned"] = {
        "only_from_images": False,
        "older_than": "0d",
        "action": "delete",
    }
    before = live_snapshots(env)
    run.write(p)
    # resealed: not signed by this store; taken as reviewed, the live re-check must hold
    assert run.apply("--force-unsafe", "--allow-whole-family")[0] == 3
    code, out = run.apply("--force-unsafe", "--allow-whole-family", "--accept-unsigned")
    assert code == 0, run.stderr
    res = json.loads(out)
    assert ids["f1"] not in live_images(env)  # the honest part ran
    assert {ids[a] for a in targets} <= live_images(env)
    assert {f1_snap, u_snap, held_snap, ids["loose-held"], ids["loose-shared"]} <= live_snapshots(
        env
    )
    assert {a["id"] for a in attack} <= set(res["skipped"]), res
    archived = ec2.describe_snapshots(SnapshotIds=[u_snap])["Snapshots"][0].get("StorageTier")
    assert archived != "archive"
    assert before - live_snapshots(env) <= set(snaps_of_plan(p))


def snaps_of_plan(p: dict) -> list[str]:
    return [
        a["snapshot_id"] for a in p["actions"] if a["id"].startswith("a") and a.get("snapshot_id")
    ]


def test_cycles_type_swaps_and_missing_after_do_no_harm(env, run):
    ids = env.load(fleet(3))["aliases"]
    p = run.plan()
    f1s = snaps_of(env, ids["f1"])[0]
    f3s = snaps_of(env, ids["f3"])[0]
    d1 = act(p, "deregister", ids["f1"])
    snap_action = next(a for a in p["actions"] if a["type"] == "delete-snapshot")
    edited = [
        # snapshot deletion with its `after` dropped and the kept image's snapshot swapped in
        dict(snap_action, id="c1", after=[], snapshot_id=f3s, image_id=ids["f3"]),
        # a deregister of the kept image inside a dependency cycle
        dict(d1, id="c2", image_id=ids["f3"], after=["c3"]),
        dict(d1, id="c3", image_id=ids["f3"], after=["c2"]),
        # a self-dependency
        dict(d1, id="c4", image_id=ids["f3"], after=["c4"]),
        # the first deregister's snapshot, deleted before its image is gone
        dict(snap_action, id="c5", after=[], snapshot_id=f1s, image_id=ids["f1"]),
    ]
    p["actions"] = edited
    run.write(p)
    code, out = run.apply("--accept-unsigned")
    assert code == 0, out
    res = json.loads(out)
    assert set(res["skipped"]) == {"c1", "c2", "c3", "c4", "c5"}
    assert {ids["f1"], ids["f3"]} <= live_images(env)
    assert {f1s, f3s} <= live_snapshots(env)


def test_future_now_created_at_and_other_account_are_refused(env, run):
    ids = env.load(fleet(2))["aliases"]
    p = run.plan()
    for key, value in (("now", "2999-01-01T00:00:00Z"), ("created_at", "2999-01-01T00:00:00Z")):
        q = copy.deepcopy(p)
        q[key] = value
        run.write(q)
        assert run.apply()[0] == 3
    q = copy.deepcopy(p)
    q["now"] = q["created_at"] = "2001-01-01T00:00:00Z"  # a stale plan made to look fresh? no
    run.write(q)
    assert run.apply()[0] == 3
    q = copy.deepcopy(p)
    for a in q["actions"]:
        a["account"] = "999999999999"
    run.write(q)
    assert run.apply()[0] == 3
    assert ids["f1"] in live_images(env)


def test_resume_only_finishes_the_latest_interrupted_run(env, run, tmp_path):
    from amictl import interrupts

    ids = env.load(fleet(4))["aliases"]
    pa = run.plan()
    stopped = []

    def progress(a, st, msg):
        if not stopped:
            stopped.append(a.id)
            interrupts.request_stop()

    try:
        with pytest.raises(AmictlError) as exc:
            lib_apply(env, pa, progress=progress, workers=1)
        assert exc.value.exit_code == 130
    finally:
        interrupts.reset()
    assert ids["f2"] in live_images(env)
    # a later apply of another plan finishes: the interrupted one is no longer resumable
    env.load(fleet(2, fam="g"))
    pb = run.plan()
    pb["actions"] = [a for a in pb["actions"] if a.get("family") == "g"]
    run.write(pb, "b.json")
    assert run.apply("--accept-unsigned", name="b.json")[0] == 0
    code, out = run("apply", "--resume", "--yes", "-o", "json")
    assert code == 0 and json.loads(out)["resumed"] is None
    assert ids["f2"] in live_images(env)


def test_sigint_mid_apply_exits_130_cleanly_and_resume_finishes(env, run, tmp_path, sandbox):
    ids = env.load(fleet(5))["aliases"]
    p = run.plan()
    environment = {**os.environ, **env.cli_env(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "amictl.cli.main",
        "apply",
        str(tmp_path / "plan.json"),
        "--yes",
        "--workers",
        "1",
        "--no-progress",
        "-o",
        "json",
        *env.cli_args(),
    ]
    sandbox.set_faults(
        [{"action": "DeregisterImage", "code": "RequestLimitExceeded", "status": 503, "count": 3}]
    )
    try:
        proc = subprocess.Popen(
            cmd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        store = Store(environment["AMICTL_STATE"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                rows = store.journal_rows(plan_checksum=p["checksum"], limit=100)
            except Exception:  # noqa: BLE001 - the table may not exist yet
                rows = []
            if any(r["type"] == "deregister" for r in rows):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        sandbox.clear_faults()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rows = store.journal_rows(plan_checksum=p["checksum"], limit=1000)
    last = {}
    for r in sorted(rows, key=lambda r: r["at"]):
        last[r["action_id"]] = r["status"]
    assert "intended" not in last.values()  # in-flight calls finished and were journaled
    code, out = run("apply", "--resume", "--yes", "-o", "json")
    assert code == 0, out
    assert not ({ids[f"f{i}"] for i in range(1, 5)} & live_images(env))
    assert ids["f5"] in live_images(env)


# ------------------------------------------------------------------- garbage plan files


def _base_plan() -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = {
        "format": 1,
        "created_at": now,
        "now": now,
        "policy": {
            "name": "p",
            "families": {"tag": "family", "version_tag": "version", "name_pattern": "^(.*)$"},
            "holds": [],
            "rules": [
                {
                    "name": "r",
                    "select": {},
                    "keep": {},
                    "retire": {"deregister": "0d", "snapshots": "delete"},
                }
            ],
        },
        "inventory": {"complete": True},
        "actions": [
            {
                "id": "a1",
                "type": "deregister",
                "account": "123456789012",
                "region": "us-east-1",
                "image_id": "ami-0123456789abcdef0",
                "rule": "r",
                "reasons": [],
            }
        ],
        "decisions": [],
        "summary": {"images_selected": 1, "monthly_savings_usd": 0.0},
        "warnings": [],
    }
    return body


def _mut(path: str, value):
    def f(d):
        keys = path.split(".")
        cur = d
        for k in keys[:-1]:
            cur = cur[int(k)] if isinstance(cur, list) else cur[k]
        last = keys[-1]
        if isinstance(cur, list):
            cur[int(last)] = value
        elif value is KeyError:
            del cur[last]
        else:
            cur[last] = value
        return d

    return f


GARBAGE = {
    "empty": b"",
    "latin1": b"\xff\xfe\x00",
    "list": b"[]",
    "null": b"null",
    "number": b"1e999",
    "deep": b"[" * 200000 + b"]" * 200000,
    "format2": _mut("format", 2),
    "now-text": _mut("now", "yesterday"),
    "now-int": _mut("now", 12345),
    "created-offset": _mut("created_at", "2024-01-01T00:00:00+25:00"),
    "no-policy": _mut("policy", KeyError),
    "policy-list": _mut("policy", []),
    "bad-regex": _mut("policy.families.name_pattern", "(("),
    "holds-dict": _mut("policy.holds", {}),
    "hold-until": _mut("policy.holds", [{"tag": "x", "until": "never"}]),
    "latest-str": _mut("policy.rules.0.keep.latest", "1"),
    "latest-neg": _mut("policy.rules.0.keep.latest", -1),
    "in-use-str": _mut("policy.rules.0.keep.in_use", "false"),
    "dur-huge": _mut("policy.rules.0.retire.deregister", "9" * 400 + "d"),
    "dur-unicode": _mut("policy.rules.0.retire.deregister", "\u0663d"),
    "mode": _mut("policy.rules.0.retire.snapshots", "shred"),
    "prices": _mut("policy.options", {"prices": {"x": "cheap"}}),
    "complete-str": _mut("inventory.complete", "true"),
    "actions-dict": _mut("actions", {}),
    "type": _mut("actions.0.type", "nuke"),
    "id-space": _mut("actions.0.id", "a 1"),
    "id-unicode": _mut("actions.0.id", "a\u0661"),
    "id-long": _mut("actions.0.id", "a" * 100),
    "account": _mut("actions.0.account", "12345678901x"),
    "account-unicode-digits": _mut("actions.0.account", "\u0661" * 12),
    "region": _mut("actions.0.region", "US-EAST-1"),
    "region-newline": _mut("actions.0.region", "us-east-1\n"),
    "image": _mut("actions.0.image_id", "ami-XYZ"),
    "image-none": _mut("actions.0.image_id", None),
    "image-newline": _mut("actions.0.image_id", "ami-0123456789abcdef0\n"),
    "snap-on-delete": _mut(
        "actions.0",
        {
            "id": "a1",
            "type": "delete-snapshot",
            "account": "123456789012",
            "region": "us-east-1",
            "rule": "r",
            "reasons": [],
        },
    ),
    "after-unknown": _mut("actions.0.after", ["a9"]),
    "after-int": _mut("actions.0.after", [1]),
    "size-neg": _mut("actions.0.size_gib", -1),
    "size-huge": _mut("actions.0.size_gib", 10**400),
    "size-float": _mut("actions.0.size_gib", 1.5),
    "unsafe-str": _mut("actions.0.unsafe", "yes"),
    "expect-key": _mut("actions.0.expect", {"in_use": 0}),
    "expect-list": _mut("actions.0.expect", ["x"]),
    "reasons-int": _mut("actions.0.reasons", [1]),
    "rule-int": _mut("actions.0.rule", 5),
    "decision-str": _mut("decisions", ["x"]),
    "decision-nokey": _mut("decisions", [{}]),
    "warnings-int": _mut("warnings", [1]),
    "id-letters": _mut("actions.0.id", "abc"),
    "summary-empty": _mut("summary", {}),
    "savings-str": _mut("summary.monthly_savings_usd", "lots"),
    "reason-markup": _mut("actions.0.reasons", ["[/x]"]),
    "family-markup": _mut("actions.0.family", "[/]"),
    "warning-markup": _mut("warnings", ["[/bold]"]),
    "dup-ids": lambda d: (d["actions"].append(dict(d["actions"][0])), d)[1],
}


WELL_SHAPED = {
    "id-letters",
    "summary-empty",
    "savings-str",
    "reason-markup",
    "family-markup",
    "warning-markup",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_plan_files_exit_2_without_a_traceback(name, env, tmp_path, capsys, monkeypatch):
    from amictl.cli import main as climain

    g = GARBAGE[name]
    if isinstance(g, bytes):
        data = g
    else:
        base = _base_plan()
        base["actions"][0]["account"] = env.account
        body = g(base)
        body = {k: v for k, v in body.items() if k != "checksum"}
        body["checksum"] = Plan.checksum_of(body)
        data = json.dumps(body).encode()
    path = tmp_path / "plan.json"
    path.write_bytes(data)
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as exc:
        climain.main(["apply", str(path), "--yes", "--accept-unsigned", *env.cli_args()])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    # well-shaped but odd plans (an id of letters, markup in texts) are applied or refused
    assert exc.value.code == 2 or (name in WELL_SHAPED and exc.value.code in (0, 3)), err


def test_tag_values_that_look_like_rich_markup_do_not_crash_plan(env, run):
    """AWS data reaches rich's markup parser: a retain-until tag value `[/b]` becomes a plan
    warning that print_plan prints with markup -> rich.errors.MarkupError traceback (the
    same for reasons, family names and action ids in `apply`'s table)."""
    ids = env.load(fleet(3))["aliases"]
    env.client("ec2").create_tags(
        Resources=[ids["f1"]], Tags=[{"Key": "retain-until", "Value": "[/b]"}]
    )
    code, _ = run("plan", "-p", str(run.tmp / "policy.yaml"))
    assert code == 0


def test_plan_for_an_unknown_region_is_not_a_traceback(env, run, capsys):
    """A region name that matches the plan's pattern but that no partition has."""
    from amictl.cli import main as climain

    env.load(fleet(2))
    p = run.plan()
    for a in p["actions"]:
        a["region"] = "zz-nowhere-9"
    path = run.write(p)
    with pytest.raises(SystemExit) as exc:
        climain.main(["apply", str(path), "--yes", *env.cli_args()])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert exc.value.code in (2, 3), err
