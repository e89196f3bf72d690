"""amictl revoke / unrevoke (issue 28): a base and everything derived from it pulled in
every region, channels moved back, launches refused, what still runs it listed; undone
exactly; a killed revocation resumed to the same end state."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amictl import interrupts
from amictl.revoke import run as revoke_run
from amictl.state.store import Store
from cli_fleet import CliFleet, invoke
from conftest import Env, _accounts
from launcher_makers import beanstalk_environment

FLEET = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: base-1, name: base-1, age_days: 100, tags: {family: base, version: "1.0.0"}}
  - {alias: base-2, name: base-2, age_days: 50, tags: {family: base, version: "2.0.0"}}
  - {alias: base-1-eu, name: base-1, region: eu-west-1, age_days: 99, source: base-1,
     tags: {family: base, version: "1.0.0"}}
  - {alias: base-2-eu, name: base-2, region: eu-west-1, age_days: 49, source: base-2,
     tags: {family: base, version: "2.0.0"}}
  - {alias: web-1, name: web-1, age_days: 40, source: base-1, tags: {family: web, version: "1.0.0"}}
  - {alias: web-2, name: web-2, age_days: 10, source: base-2, tags: {family: web, version: "2.0.0"}}
  - {alias: web-2-eu, name: web-2, region: eu-west-1, age_days: 9, source: web-2,
     tags: {family: web, version: "2.0.0"}}
  - {alias: api-1, name: api-1, region: eu-west-1, age_days: 30, source: base-1-eu,
     tags: {family: api, version: "1.0.0"}}
  - {alias: api-2, name: api-2, region: eu-west-1, age_days: 5, source: base-2-eu,
     tags: {family: api, version: "2.0.0"}}
  - {alias: db-1, name: db-1, region: eu-west-1, age_days: 5, source: base-2-eu,
     tags: {family: db, version: "1.0.0"}}
  - {alias: app-1, name: app-1, age_days: 5, tags: {family: app, version: "1.0.0"}}
instances:
  - {alias: i-web, image: web-2}
  - {alias: i-api, image: api-2, region: eu-west-1}
launch_templates:
  - {alias: lt-web, name: web, versions: [{image: web-2}], tags: {"amictl:family": web}}
auto_scaling_groups:
  - {alias: asg-web, name: web-asg, launch_template: lt-web, version: "1", desired: 1}
ssm_parameters:
  - {alias: c1, name: /amictl/channels/base/prod, image: base-2}
  - {alias: c2, name: /amictl/channels/base/prod, image: base-2-eu, region: eu-west-1}
  - {alias: c3, name: /amictl/channels/web/prod, image: web-2}
  - {alias: c4, name: /amictl/channels/api/prod, image: api-2, region: eu-west-1}
  - {alias: c5, name: /amictl/channels/db/prod, image: db-1, region: eu-west-1}
  - {alias: c6, name: /amictl/channels/app/prod, image: app-1}
  - {alias: c7, name: /amictl/channels/web/prod, image: web-2-eu, region: eu-west-1}
"""
REGIONS = "us-east-1,eu-west-1"
REVOKED = {"base-2", "base-2-eu", "web-2", "web-2-eu", "api-2", "db-1"}
CHANNELS = {
    ("base", "us-east-1"): "base-1",
    ("base", "eu-west-1"): "base-1-eu",
    ("web", "us-east-1"): "web-1",
    ("api", "eu-west-1"): "api-1",
    ("db", "eu-west-1"): "db-1",  # every version revoked: left and reported
    ("web", "eu-west-1"): "web-2-eu",  # web 2.0.0 is the only version there: left too
    ("app", "us-east-1"): "app-1",
}


def fresh(sandbox: Any, tmp: Path) -> CliFleet:
    f = CliFleet(sandbox, FLEET, tmp, regions=REGIONS)
    code, out, err = f("inventory")
    assert code == 0, out + err
    return f


@pytest.fixture
def fleet(sandbox: Any, tmp_path: Path) -> CliFleet:
    return fresh(sandbox, tmp_path)


def aws_state(f: CliFleet) -> dict[str, Any]:
    """What AWS holds (by alias): each image's tags, deprecation and state; each channel."""
    by_id = {v: k for k, v in f.ids.items()}
    out: dict[str, Any] = {"images": {}, "channels": {}}
    for region in ("us-east-1", "eu-west-1"):
        ec2 = f.env.client("ec2", region)
        for img in ec2.describe_images(
            Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True
        )["Images"]:
            out["images"][by_id.get(img["ImageId"], img["ImageId"])] = {
                "tags": {t["Key"]: t["Value"] for t in img.get("Tags", [])},
                "deprecation": img.get("DeprecationTime"),
                "state": img["State"],
            }
        ssm = f.env.client("ssm", region)
        for p in ssm.describe_parameters()["Parameters"]:
            if p["Name"].startswith("/amictl/channels/"):
                v = ssm.get_parameter(Name=p["Name"])["Parameter"]["Value"]
                out["channels"][(p["Name"].split("/")[3], region)] = by_id.get(v, v)
    return out


def normal(state: dict[str, Any]) -> dict[str, Any]:
    """The state without times (two runs deprecate at different minutes)."""
    imgs = {
        a: {
            "tags": {k: ("T" if k == "amictl:revoked-at" else v) for k, v in s["tags"].items()},
            "deprecated": s["deprecation"] is not None,
            "state": s["state"],
        }
        for a, s in state["images"].items()
    }
    return {"images": imgs, "channels": state["channels"]}


def one_region(f: CliFleet, region: str, *args: str) -> tuple[int, str, str]:
    return invoke([*args, *f.env.cli_args(), "--region", region], f.vars)


def revoke(f: CliFleet, *extra: str) -> dict[str, Any]:
    code, out, err = f(
        "revoke",
        "base@2.0.0",
        "--reason",
        "CVE-2026-0001 in openssl",
        "--yes",
        "--from-state",
        "-o",
        "json",
        *extra,
    )
    assert code == 0, out + err
    return dict(json.loads(out))


def test_revoke_end_to_end_and_unrevoke_restores_exactly(fleet: CliFleet) -> None:
    before = aws_state(fleet)
    out = revoke(fleet)
    ids = fleet.ids
    # the tree: the base, its copy, and every family built from either, both regions
    assert {r["image_id"] for r in out["tree"]} == {ids[a] for a in REVOKED}
    after = aws_state(fleet)
    for alias in REVOKED:
        s = after["images"][alias]
        assert s["tags"]["amictl:revoked"] == "CVE-2026-0001 in openssl"
        assert s["tags"]["amictl:revoked-by"] and s["tags"]["amictl:revoked-at"]
        assert s["deprecation"] is not None
    for alias in ("base-1", "base-1-eu", "web-1", "api-1", "app-1"):
        assert "amictl:revoked" not in after["images"][alias]["tags"]
        assert after["images"][alias]["deprecation"] is None
    assert after["channels"] == CHANNELS
    left = [(c["family"], c["region"]) for c in out["channels_left"]]
    assert sorted(left) == [("db", "eu-west-1"), ("web", "eu-west-1")]
    # what still runs it: the instances and the ASG, each with its rollout
    running = {(r["kind"], r["id"]) for r in out["still_running"]}
    assert ("auto-scaling-group", "web-asg") in running
    kinds = {r["kind"] for r in out["still_running"]}
    assert {"instance", "auto-scaling-group", "launch-template-version"} <= kinds
    asg = next(r for r in out["still_running"] if r["kind"] == "auto-scaling-group")
    assert asg["rollout"].startswith("amictl rollout web --channel prod")
    # refused: launch, promote, rollback to it, bake from it
    launch = ["--type", "t3.micro", "--allow-deprecated"]
    code, _, err = one_region(fleet, "us-east-1", "launch", ids["web-2"], *launch)
    assert code == 3 and "revoked" in err, err
    code, _, err = one_region(fleet, "us-east-1", "launch", "base@2.0.0", *launch)
    assert code == 3 and "CVE-2026-0001" in err, err
    code, _, err = one_region(fleet, "eu-west-1", "launch", "web@prod", *launch)
    assert code == 3 and "revoked" in err, err  # the channel nobody could move
    code, _, err = one_region(fleet, "us-east-1", "launch", "base@1.0.0", *launch)
    assert code == 0, err  # the version before is fine
    code, _, err = one_region(fleet, "eu-west-1", "promote", "api", "2.0.0", "--channel", "beta")
    assert code == 3 and "revoked" in err, err
    code, _, err = one_region(fleet, "us-east-1", "rollback", "base", "--channel", "prod")
    assert code == 3, err  # base-1 is current; nothing before it in the history
    # unrevoke: channels and tags exactly as before (the parameter history grows)
    code, o, err = fleet("unrevoke", "--yes", "-o", "json")
    assert code == 0, o + err
    assert aws_state(fleet) == before
    code, _, err = fleet("unrevoke", "--yes")
    assert code == 3 and "already undone" in err


def test_bake_refuses_a_revoked_source(fleet: CliFleet, tmp_path: Path) -> None:
    revoke(fleet)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("format: 1\nfamily: web\nsource: {image: web@2.0.0}\n")
    code, _, err = one_region(fleet, "us-east-1", "bake", str(recipe))
    assert code == 3 and "revoked" in err, err
    inst = fleet.env.client("ec2").describe_instances()["Reservations"]
    launched = [i for r in inst for i in r["Instances"] if i["ImageId"] == fleet.ids["web-2"]]
    assert len(launched) == 2  # the fleet's instance and its ASG's: no builder was launched


def test_revoke_with_disable_and_gates(fleet: CliFleet, tmp_path: Path) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text("channels:\n  prod:\n    requires_tag: {approved: 'yes'}\n")
    fleet.env.client("ec2").create_tags(
        Resources=[fleet.ids["web-1"]], Tags=[{"Key": "approved", "Value": "yes"}]
    )
    out = revoke(fleet, "--disable", "--gates", str(gates))
    # only web-1 passes the gate: every other channel on a revoked image is left
    assert {(c["family"], c["region"]) for c in out["channels_left"]} == {
        ("base", "us-east-1"),
        ("base", "eu-west-1"),
        ("web", "eu-west-1"),
        ("api", "eu-west-1"),
        ("db", "eu-west-1"),
    }
    assert any("gate prod" in c["status"] for c in out["channels_left"])
    s = aws_state(fleet)
    assert s["channels"][("web", "us-east-1")] == "web-1"
    assert s["channels"][("base", "us-east-1")] == "base-2"  # never emptied
    assert all(s["images"][a]["state"] == "disabled" for a in REVOKED)
    assert fleet("unrevoke", "--yes")[0] == 0
    assert all(aws_state(fleet)["images"][a]["state"] == "available" for a in REVOKED)


def test_revoke_refuses_without_reason_or_confirmation(fleet: CliFleet) -> None:
    code, _, err = fleet("revoke", "base@2.0.0", "--from-state")
    assert code == 2 and "--reason" in err
    code, _, err = fleet("revoke", "base@2.0.0", "--reason", "x", "--from-state")
    assert code == 2 and "confirmation" in err
    code, _, err = fleet("revoke", "base@9", "--reason", "x", "--from-state", "--yes")
    assert code == 1 and "no such image" in err
    assert all("amictl:revoked" not in s["tags"] for s in aws_state(fleet)["images"].values())


def allowed_from_channels(f: CliFleet) -> None:
    code, out, err = f(
        "allowed-images",
        "set",
        "--from-channels",
        "--also",
        "amazon",
        "--mode",
        "audit-mode",
        "--yes",
    )
    assert code == 0, out + err


def full_state(f: CliFleet) -> dict[str, Any]:
    """What AWS holds, comparable across accounts and runs: tags, deprecation (set within
    minutes of the revocation, or the seeded value), state, channels and each region's
    Allowed AMIs settings, with the account id and image ids written as SELF and aliases."""
    state = aws_state(f)
    images = {}
    for alias, s in state["images"].items():
        at, dep = s["tags"].get("amictl:revoked-at"), s["deprecation"]
        if at and dep:
            lag = (dt.datetime.fromisoformat(str(dep)) - dt.datetime.fromisoformat(at)).seconds
            dep = "at revocation" if lag <= 180 else dep
        tags = {k: ("T" if k == "amictl:revoked-at" else v) for k, v in s["tags"].items()}
        images[alias] = {"tags": tags, "deprecation": dep, "state": s["state"]}
    allowed = {}
    for region in ("us-east-1", "eu-west-1"):
        got = f.env.client("ec2", region).get_allowed_images_settings()
        allowed[region] = [got.get("State"), got.get("ImageCriteria")]
    text = json.dumps(
        {"images": images, "channels": sorted(state["channels"].items()), "allowed": allowed},
        default=str,
        sort_keys=True,
    )
    for alias, iid in f.ids.items():
        text = text.replace(iid, alias)
    return dict(json.loads(text.replace(f.env.account, "SELF")))


STEPS = 18  # 6 images x (tag, deprecate), 4 channel moves, 2 regions' criteria
_REFERENCE: dict[str, Any] = {}


def killed_and_resumed(sandbox: Any, tmp: Path, kill_at: int, when: str) -> dict[str, Any]:
    """The AWS state after `amictl revoke`, run as a process, SIGKILLed at its step
    ``kill_at`` (before or after the step's AWS call: the `intended` row written, the `done`
    row never), then `revoke --resume`."""
    f = fresh(sandbox, tmp)
    allowed_from_channels(f)
    cmd = [
        sys.executable,
        "-m",
        "amictl.cli.main",
        "revoke",
        "base@2.0.0",
        "--reason",
        "CVE-2026-0001 in openssl",
        "--yes",
        "--from-state",
        "-o",
        "json",
        *f.env.cli_args(),
        *f.regions,
    ]
    env = {**os.environ, **f.vars, revoke_run.KILL_AT_ENV: f"{kill_at}:{when}"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    rows = Store(f.vars["AMICTL_STATE"]).journal_rows(plan_prefix="revoke-", limit=1000)
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == kill_at, rows  # the steps before it; the killed one has no `done`
    code, out, err = f("revoke", "--resume", "-o", "json")
    assert code == 0, out + err
    assert f("revoke", "--resume")[0] == 1  # nothing left to resume
    return full_state(f)


def reference(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not _REFERENCE:
        ref = fresh(sandbox, tmp_path_factory.mktemp("ref"))
        allowed_from_channels(ref)
        out = revoke(ref)
        assert len(out["steps"]) == STEPS
        _REFERENCE["state"] = full_state(ref)
    return dict(_REFERENCE["state"])


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kill_at=st.integers(min_value=0, max_value=STEPS - 1),
    when=st.sampled_from(["before", "after"]),
)
def test_a_revoke_sigkilled_at_any_step_resumes_to_the_same_state(
    sandbox: Any, tmp_path_factory: pytest.TempPathFactory, kill_at: int, when: str
) -> None:
    want = reference(sandbox, tmp_path_factory)
    assert killed_and_resumed(sandbox, tmp_path_factory.mktemp("kill"), kill_at, when) == want


def test_twin_a_resume_that_trusts_intended_rows_loses_a_step(
    sandbox: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard: a step journaled `intended` but not `done` is done again on resume.
    Counting it as done (patched) leaves a channel on the revoked image."""
    want = reference(sandbox, tmp_path_factory)
    real = revoke_run.Journal.states

    def trusting(self: Any) -> dict[str, tuple[str, dict[str, Any]]]:
        return {a: ("done", m) for a, (_s, m) in real(self).items()}

    monkeypatch.setattr(revoke_run.Journal, "states", trusting)
    kill_at = 12  # the first channel move: 6 images x (tag, deprecate) come first
    got = killed_and_resumed(sandbox, tmp_path_factory.mktemp("twin"), kill_at, "before")
    assert got != want
    assert got["channels"] != want["channels"]


def test_tag_names_are_reserved() -> None:
    from amictl.errors import InputError
    from amictl.tagnames import REVOKED_TAG, check_user_tags

    with pytest.raises(InputError):
        check_user_tags([REVOKED_TAG], "--tag")
    assert dt.UTC  # the module's imports stay used


def test_allowed_images_from_channels_are_recomputed_and_restored(fleet: CliFleet) -> None:
    from amictl.governance.allowed import allows

    allowed_from_channels(fleet)

    def criteria(region: str) -> list[dict[str, Any]]:
        got = fleet.env.client("ec2", region).get_allowed_images_settings()
        return list(got.get("ImageCriteria") or [])

    before = {r: criteria(r) for r in ("us-east-1", "eu-west-1")}
    at = dt.datetime.now(dt.UTC)

    def allowed_elsewhere(alias: str, region: str) -> bool:
        """Whether the criteria allow the image in an account that does not own it (AWS
        never restricts an account's own images)."""
        img = fleet.env.client("ec2", region).describe_images(
            ImageIds=[fleet.ids[alias]], IncludeDeprecated=True
        )["Images"][0]
        return allows(img, criteria(region), "999999999999", at)

    assert allowed_elsewhere("web-2", "us-east-1") and allowed_elsewhere("api-2", "eu-west-1")
    out = revoke(fleet)
    assert {a["region"] for a in out["allowed_images"]} == {"us-east-1", "eu-west-1"}
    for alias, region in (("web-2", "us-east-1"), ("api-2", "eu-west-1"), ("base-2", "us-east-1")):
        assert not allowed_elsewhere(alias, region), alias
    for alias, region in (("web-1", "us-east-1"), ("api-1", "eu-west-1"), ("app-1", "us-east-1")):
        assert allowed_elsewhere(alias, region), alias
    assert fleet("unrevoke", "--yes")[0] == 0
    assert {r: criteria(r) for r in ("us-east-1", "eu-west-1")} == before


def test_criteria_not_made_from_channels_are_left_alone(fleet: CliFleet) -> None:
    ec2 = fleet.env.client("ec2")
    mine = [
        {"ImageProviders": ["amazon"]},
        {"ImageNames": ["web-*"], "ImageProviders": ["111122223333"]},
    ]
    ec2.replace_image_criteria_in_allowed_images_settings(ImageCriteria=mine)
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    out = revoke(fleet)
    assert out["allowed_images"] == []
    assert ec2.get_allowed_images_settings()["ImageCriteria"] == mine


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_between_steps_and_resume_finishes(
    fleet: CliFleet, sig: int, code: int
) -> None:
    """SIGTERM / Ctrl-C during a revoke: the step in flight is finished and journaled, the
    run stops (143 / 130) with an `interrupted` row, and --resume carries on."""

    def hook(aid: str, moment: str) -> None:
        if aid == "tag1" and moment == "after":
            interrupts.request_stop(sig)

    revoke_run.HOOKS.append(hook)
    try:
        got, out, err = fleet(
            "revoke", "base@2.0.0", "--reason", "bad", "--yes", "--from-state", "-o", "json"
        )
    finally:
        revoke_run.HOOKS.remove(hook)
        interrupts.reset()
    assert got == code, out + err
    tagged = [a for a, s in aws_state(fleet)["images"].items() if "amictl:revoked" in s["tags"]]
    assert len(tagged) == 2  # tag0, tag1: nothing after the signal
    assert fleet("revoke", "--resume")[0] == 0
    assert aws_state(fleet)["channels"] == CHANNELS


def test_revoke_and_unrevoke_tables_fit_100_columns(fleet: CliFleet) -> None:
    code, out, err = fleet(
        "revoke", "base@2.0.0", "--reason", "bad", "--yes", "--from-state", COLUMNS="100"
    )
    assert code == 0, out + err
    assert "still launching a revoked image" in out and "web-asg" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    code, out, err = fleet("unrevoke", "--yes", COLUMNS="100")
    assert code == 0, out + err
    assert max(len(line) for line in out.splitlines()) <= 100


def test_an_image_two_revocations_name_stays_revoked_until_both_are_undone(
    fleet: CliFleet,
) -> None:
    """Round 5: app-1 revoked twice (the second from a stale state, so it tags again).
    Undoing the first is refused (exit 3) naming the second; undoing the second keeps app-1
    revoked with the first's tags and deprecation; undoing the first then lifts it."""
    app = fleet.ids["app-1"]
    ids = []
    for why in ("CVE-A", "CVE-B"):
        code, out, err = fleet(
            "revoke", app, "--reason", why, "--yes", "--from-state", "-o", "json"
        )
        assert code == 0, out + err
        ids.append(json.loads(out)["revoke_id"])
    code, out, err = fleet("unrevoke", ids[0], "--yes")
    assert code == 3 and ids[1] in err, out + err
    assert aws_state(fleet)["images"]["app-1"]["tags"]["amictl:revoked"] == "CVE-B"
    code, out, err = fleet("unrevoke", ids[1], "--yes")
    assert code == 0, out + err
    s = aws_state(fleet)["images"]["app-1"]
    assert s["tags"]["amictl:revoked"] == "CVE-A" and s["deprecation"] is not None
    code, out, err = fleet("unrevoke", ids[0], "--yes")
    assert code == 0, out + err
    s = aws_state(fleet)["images"]["app-1"]
    assert "amictl:revoked" not in s["tags"] and s["deprecation"] is None


WATERMARKED = """
images:
  - {alias: gold-1, name: gold-1, age_days: 30, watermark: golden,
     tags: {family: gold, version: "1.0.0"}}
  - {alias: svc-1, name: svc-1, age_days: 10, watermarks_of: gold-1,
     tags: {family: svc, version: "1.0.0"}}
  - {alias: svc-2, name: svc-2, age_days: 5, source: svc-1, tags: {family: svc, version: "2.0.0"}}
  - {alias: other-1, name: other-1, age_days: 5, tags: {family: other, version: "1.0.0"}}
"""


def test_an_image_related_only_by_watermark_is_found_and_revoked(
    sandbox: Any, tmp_path: Path
) -> None:
    """svc-1 carries gold-1's watermark (as CreateImage from an instance of it would) with
    no SourceImageId, no amictl:source-image, no copy description, and GetImageAncestry
    names no source: only the watermark says it was built from gold-1. It is revoked, and
    svc-2 built from it (lineage) too: the search runs to a fixed point."""
    f = CliFleet(sandbox, WATERMARKED, tmp_path)
    assert f("inventory")[0] == 0
    ids = f.ids
    ec2 = f.env.client("ec2")
    entries = ec2.get_image_ancestry(ImageId=ids["svc-1"])["ImageAncestryEntries"]
    assert {e["ImageId"] for e in entries} == {ids["svc-1"]}
    assert not any(e.get("SourceImageId") for e in entries)
    svc = ec2.describe_images(ImageIds=[ids["svc-1"]])["Images"][0]
    assert (
        "SourceImageId" not in svc and svc["ImageWatermarks"][0]["SourceImageId"] == ids["gold-1"]
    )
    code, out, err = f(
        "revoke", "gold@1.0.0", "--reason", "leaked key", "--yes", "--from-state", "-o", "json"
    )
    assert code == 0, out + err
    how = {r["image_id"]: r["how"] for r in json.loads(out)["tree"]}
    assert how == {ids["gold-1"]: "named", ids["svc-1"]: "watermark", ids["svc-2"]: "lineage"}
    tags = {
        i["ImageId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
        for i in ec2.describe_images(Owners=["self"], IncludeDeprecated=True)["Images"]
    }
    for alias in ("gold-1", "svc-1", "svc-2"):
        assert tags[ids[alias]]["amictl:revoked"] == "leaked key", alias
    assert "amictl:revoked" not in tags[ids["other-1"]]


PRODUCER = """
images:
  - {{alias: base-1, name: base-1, age_days: 100, tags: {{family: base, version: "1.0.0"}},
     shared_with: ["{b}"]}}
  - {{alias: base-2, name: base-2, age_days: 50, tags: {{family: base, version: "2.0.0"}},
     shared_with: ["{b}"]}}
  - {{alias: web-1, name: web-1, age_days: 40, source: base-1,
     tags: {{family: web, version: "1.0.0"}}, shared_with: ["{b}"]}}
  - {{alias: web-2, name: web-2, age_days: 10, source: base-2,
     tags: {{family: web, version: "2.0.0"}}, shared_with: ["{b}"]}}
  - {{alias: api-1, name: api-1, age_days: 40, source: base-1,
     tags: {{family: api, version: "1.0.0"}}, shared_with: ["{b}"]}}
  - {{alias: api-2, name: api-2, age_days: 10, source: base-2,
     tags: {{family: api, version: "2.0.0"}}, shared_with: ["{b}"]}}
ssm_parameters:
  - {{alias: c1, name: /amictl/channels/base/prod, image: base-2}}
  - {{alias: c2, name: /amictl/channels/web/prod, image: web-2}}
  - {{alias: c3, name: /amictl/channels/api/prod, image: api-2}}
"""


def test_a_consumer_accounts_criteria_refuse_the_revoked_image_but_keep_its_fleet(
    sandbox: Any, tmp_path: Path
) -> None:
    """Account B launches A's shared images; B's Allowed AMIs (enabled) come from A's
    channels (`allowed-images set --from-channels` over both accounts). Revoking base 2.0.0
    recomputes B's criteria: a new launch of base-2 is refused by RunInstances in B, while
    web-2, which B's own instance and template still use, and api-2, which B's Beanstalk
    environment launches, stay allowed and are said to be
    left non-compliant; without a terminal and --yes revoke stops (exit 2) first."""
    b = Env(sandbox, str(next(_accounts)))
    f = CliFleet(sandbox, PRODUCER.format(b=b.account), tmp_path)
    both = ["--role-arn", b.role_arn]
    ids = f.ids
    bc = b.client("ec2")
    mine = bc.run_instances(ImageId=ids["web-2"], MinCount=1, MaxCount=1)["Instances"][0]
    bc.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": ids["web-2"]}
    )
    # a launcher of another service: B's Beanstalk environment launches api-2
    beanstalk_environment(b, ids["api-2"])
    code, out, err = f(
        "allowed-images", "set", "--from-channels", "--mode", "enabled", "--yes", *both
    )
    assert code == 0, out + err
    before = bc.get_allowed_images_settings()["ImageCriteria"]
    assert f("inventory", *both)[0] == 0
    args = ("revoke", "base@2.0.0", "--reason", "CVE-1", "--from-state", *both)
    code, out, err = f(*args)
    assert code == 2 and "confirmation" in err, out + err
    assert (
        f"{b.account} us-east-1: revoked {ids['web-2']} left allowed: instance {mine['InstanceId']}"
        in err
    )
    assert "launch-template-version" in err
    assert bc.get_allowed_images_settings()["ImageCriteria"] == before  # nothing done
    code, out, err = f(*args, "--yes", "-o", "json")
    assert code == 0, out + err
    (mine_b,) = [a for a in json.loads(out)["allowed_images"] if a["account"] == b.account]
    tags = {a: s["tags"] for a, s in aws_state(f)["images"].items()}
    assert all(tags[a]["amictl:revoked"] == "CVE-1" for a in ("base-2", "web-2", "api-2")), tags
    assert {k["image_id"] for k in mine_b["kept"]} == {ids["web-2"], ids["api-2"]}

    def launches(alias: str) -> bool:
        try:
            bc.run_instances(ImageId=ids[alias], MinCount=1, MaxCount=1)
        except bc.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidAMIID.NotFound", exc
            return False
        return True

    assert bc.get_allowed_images_settings()["State"] == "enabled"
    assert not launches("base-2")  # revoked, nothing of B's uses it: refused
    assert launches("web-2")  # revoked, but B's instance and template need it
    assert launches("api-2")  # revoked, but B's Beanstalk environment needs it
    assert launches("base-1") and launches("web-1")  # the channels' images now
    meta = bc.describe_instance_image_metadata(InstanceIds=[mine["InstanceId"]])
    assert meta["InstanceImageMetadata"][0]["ImageMetadata"]["ImageAllowed"] is True
    assert f("unrevoke", "--yes", *both)[0] == 0
    assert bc.get_allowed_images_settings()["ImageCriteria"] == before


FINDINGS = """
images:
  - {alias: app-1, name: app-1, age_days: 50, tags: {family: app, version: "1.0.0"},
     findings: {items: []}}
  - {alias: app-2, name: app-2, age_days: 5, tags: {family: app, version: "2.0.0"},
     findings: {items: [{severity: critical, title: CVE-2026-0002, fix_available_days_ago: 3}]}}
  - {alias: job-1, name: job-1, age_days: 4, source: app-2, tags: {family: job, version: "1.0.0"}}
  - {alias: web-1, name: web-1, age_days: 5, tags: {family: web, version: "1.0.0"},
     findings: {items: [{severity: high}]}}
  - {alias: db-1, name: db-1, age_days: 5, tags: {family: db, version: "1.0.0"}}
ssm_parameters:
  - {alias: c1, name: /amictl/channels/app/prod, image: app-2}
  - {alias: c2, name: /amictl/channels/web/prod, image: web-1}
  - {alias: c3, name: /amictl/channels/db/prod, image: db-1}
  - {alias: c4, name: /amictl/channels/job/prod, image: job-1}
"""


def test_revoke_findings_critical_revokes_each_channel_image_with_such_findings(
    sandbox: Any, tmp_path: Path
) -> None:
    """`revoke --findings critical`: app-2 (critical) and job-1 built from it are revoked
    and the app channel goes back to app-1; web-1 (high) and db-1 (never scanned: not
    "clean", but not known bad either) are left. The list is shown first."""
    f = CliFleet(sandbox, FINDINGS, tmp_path)
    assert f("inventory")[0] == 0
    ids = f.ids
    code, out, err = f("revoke", "app@2.0.0", "--findings", "critical", "--yes", "--from-state")
    assert code == 2 and "--findings" in err
    code, out, err = f("revoke", "--findings", "critical", "--from-state", COLUMNS="100")
    assert code == 2 and "confirmation" in err, out + err
    assert "CVE" not in out and "critical" in out and ids["app-2"] in out  # listed first
    got = f.json("revoke", "--findings", "critical", "--yes", "--from-state")
    assert [r["image_id"] for r in got["findings"]] == [ids["app-2"]]
    assert {r["image_id"] for r in got["tree"]} == {ids["app-2"], ids["job-1"]}
    state = aws_state(f)
    revoked = {a for a, s in state["images"].items() if "amictl:revoked" in s["tags"]}
    assert revoked == {"app-2", "job-1"}
    assert "critical" in state["images"]["app-2"]["tags"]["amictl:revoked"]
    assert state["channels"][("app", "us-east-1")] == "app-1"
    assert state["channels"][("web", "us-east-1")] == "web-1"
    code, out, err = f("revoke", "--findings", "critical", "--yes")  # a new scan
    assert code == 0 and "nothing to revoke" in err, out + err  # the channel moved off it
