"""Fleet file -> sandbox -> `amictl plan -o json` -> exactly the expected actions."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from amictl.cli.main import cli

POLICY = """format: 1
holds:
  - tag: legal-hold
  - tag: retain-until
    until: value
  - deregistration_protection: true
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1, launched_within: 30d}
    retire: {deregister: 0d, snapshots: delete}
"""

# Every image is old and not the newest of family f, so only the thing named keeps it.
CASES = {
    "nothing": ("", False),
    "instance": ("instances: [{alias: x, image: target}]", True),
    "stopped-instance": ("instances: [{alias: x, image: target, state: stopped}]", True),
    "terminated-instance": ("instances: [{alias: x, image: target, state: terminated}]", False),
    "lt-non-default-version": (
        "launch_templates: [{alias: lt, versions: [{image: target}, {image: newest}], "
        "default_version: 2}]",
        True,
    ),
    "unattached-lc": ("launch_configurations: [{alias: lc, image: target}]", True),
    "asg-mixed-override": (
        "launch_templates: [{alias: lt1, versions: [{image: newest}]}, "
        "{alias: lt2, versions: [{image: target}]}]\n"
        "auto_scaling_groups: [{alias: g, mixed: {launch_template: lt1, "
        "overrides: [{launch_template: lt2}]}}]",
        True,
    ),
    "ssm-parameter": ("ssm_parameters: [{alias: p, name: /golden/x, image: target}]", True),
    "ssm-text-parameter": (
        "ssm_parameters: [{alias: p, name: /golden/y, image: target, data_type: text}]",
        True,
    ),
    "shared": ("", True),
    "public": ("", True),
    "legal-hold": ("", True),
    "retain-until-future": ("", True),
    "retain-until-past": ("", False),
    "protection": ("", True),
    "recent-launch": ("", True),
    "child-kept": ("", True),
}
EXTRA = {
    "shared": "shared_with: ['210987654321']",
    "public": "public: true",
    "legal-hold": "tags: {family: f, version: '1', legal-hold: 'true'}",
    "retain-until-future": "tags: {family: f, version: '1', retain-until: '2099-01-01'}",
    "retain-until-past": "tags: {family: f, version: '1', retain-until: '2001-01-01'}",
    "protection": "deregistration_protection: true",
    "recent-launch": "last_launched_days_ago: 3",
}


def fleet(case: str) -> str:
    extra, _ = CASES[case]
    attrs = EXTRA.get(case, "tags: {family: f, version: '1'}")
    if "tags:" not in attrs:
        attrs = "tags: {family: f, version: '1'}, " + attrs
    child = (
        "  - {alias: child, age_days: 5, tags: {family: g, version: '1'}, source: target}\n"
        if case == "child-kept"
        else ""
    )
    return (
        f"images:\n  - {{alias: target, age_days: 200, {attrs}}}\n"
        "  - {alias: newest, age_days: 100, tags: {family: f, version: '2'}}\n"
        + child
        + extra
        + "\n"
    )


def run_plan(env, tmp_path, monkeypatch, policy=POLICY, extra_args=()):
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    pol = tmp_path / "policy.yaml"
    pol.write_text(policy)
    res = CliRunner().invoke(
        cli, ["plan", "-p", str(pol), "-o", "json", *env.cli_args(), *extra_args]
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("case", list(CASES))
def test_each_reference_and_hold_kind_decides(env, tmp_path, monkeypatch, case):
    ids = env.load(fleet(case))["aliases"]
    p = run_plan(env, tmp_path, monkeypatch)
    target = ids["target"]
    acted = {(a["type"], a.get("image_id") or a.get("snapshot_id")) for a in p["actions"]}
    kept = CASES[case][1]
    decision = next(d for d in p["decisions"] if d["image_id"] == target)
    if kept:
        assert decision["verdict"] == "keep", decision
        assert not any(img == target for _t, img in acted)
    else:
        assert decision["verdict"] == "deregister", decision
        assert ("mark", target) in acted and ("deregister", target) in acted
        assert sum(1 for t, _ in acted if t == "delete-snapshot") == 1
    # the newest of the family is always kept by latest: 1
    assert next(d for d in p["decisions"] if d["image_id"] == ids["newest"])["verdict"] == "keep"
    assert p["inventory"]["complete"] is True
    assert len(p["checksum"]) == 64


def test_keep_latest_counts_the_whole_family(env, tmp_path, monkeypatch):
    # v3 is new (not selected by older_than), yet it counts among the 2 newest: v1 goes, v2 stays.
    ids = env.load(
        "images:\n"
        "  - {alias: v1, age_days: 300, tags: {family: f, version: '1'}}\n"
        "  - {alias: v2, age_days: 200, tags: {family: f, version: '2'}}\n"
        "  - {alias: v10, age_days: 1, tags: {family: f, version: '10'}}\n"
    )["aliases"]
    p = run_plan(env, tmp_path, monkeypatch, POLICY.replace("latest: 1", "latest: 2"))
    dereg = {a["image_id"] for a in p["actions"] if a["type"] == "deregister"}
    assert dereg == {ids["v1"]}
    assert {d["image_id"] for d in p["decisions"]} == {ids["v1"], ids["v2"]}


def test_shared_snapshot_is_not_deleted(env, tmp_path, monkeypatch):
    ids = env.load(
        "images:\n"
        "  - {alias: old, age_days: 300, tags: {family: f, version: '1'}}\n"
        "  - {alias: reg, age_days: 250, tags: {family: h, version: '1'}, reuse_snapshot_of: old}\n"
        "  - {alias: new, age_days: 100, tags: {family: f, version: '2'}}\n"
        "instances: [{alias: i, image: reg}]\n"
    )["aliases"]
    p = run_plan(env, tmp_path, monkeypatch)
    assert {a["image_id"] for a in p["actions"] if a["type"] == "deregister"} == {ids["old"]}
    assert not [a for a in p["actions"] if a["type"] == "delete-snapshot"]
    assert any("also used by" in w for w in p["warnings"])


def test_incomplete_region_gets_no_destructive_action(env, sandbox, tmp_path, monkeypatch):
    env.load(fleet("nothing"))
    sandbox.set_faults(
        [{"action": "DescribeLaunchConfigurations", "code": "AccessDenied", "status": 403}]
    )
    try:
        p = run_plan(env, tmp_path, monkeypatch)
    finally:
        sandbox.clear_faults()
    assert p["inventory"]["complete"] is False
    assert p["actions"] == []
    assert any("incomplete" in r for d in p["decisions"] for r in d["reasons"])


def test_stages_follow_the_mark(env, tmp_path, monkeypatch):
    ids = env.load(
        "images:\n"
        "  - {alias: a, age_days: 600, tags: {family: f, version: '1', "
        "amictl:retire-since: '2026-01-01T00:00:00Z'}}\n"
        "  - {alias: b, age_days: 600, tags: {family: f, version: '2'}}\n"
        "  - {alias: c, age_days: 400, tags: {family: f, version: '3'}}\n"
    )["aliases"]
    staged = POLICY.replace(
        "{deregister: 0d, snapshots: delete}",
        "{deprecate: 0d, disable: 14d, deregister: 60d, snapshots: delete}",
    )
    p = run_plan(env, tmp_path, monkeypatch, staged, ["--now", "2026-02-01T00:00:00Z"])
    acts = {(a["type"], a.get("image_id")) for a in p["actions"] if a.get("image_id")}
    # a: marked 31 days before: deprecate + disable due, deregister (60d) not yet
    assert ("deprecate", ids["a"]) in acts and ("disable", ids["a"]) in acts
    assert ("deregister", ids["a"]) not in acts
    # b: first seen: mark + deprecate (0d) now
    assert (
        ("mark", ids["b"]) in acts
        and ("deprecate", ids["b"]) in acts
        and ("disable", ids["b"]) not in acts
    )
    verdicts = {d["image_id"]: d["verdict"] for d in p["decisions"]}
    assert verdicts[ids["a"]] == "disable" and verdicts[ids["b"]] == "deprecate"


def test_marked_image_kept_again_is_restored(env, tmp_path, monkeypatch):
    ids = env.load(
        "images:\n"
        "  - {alias: a, age_days: 300, deprecated_days_ago: 5, disabled: true, "
        "tags: {family: f, version: '9', amictl:retire-since: '2026-01-01T00:00:00Z'}}\n"
    )["aliases"]
    p = run_plan(env, tmp_path, monkeypatch)
    acts = sorted(a["type"] for a in p["actions"] if a.get("image_id") == ids["a"])
    assert acts == ["enable", "undeprecate", "unmark"]


def test_explain_names_the_rule_and_reasons(env, tmp_path, monkeypatch):
    ids = env.load(fleet("unattached-lc"))["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    pol = tmp_path / "p.yaml"
    pol.write_text(POLICY)
    res = CliRunner().invoke(
        cli, ["explain", ids["target"], "-p", str(pol), "-o", "json", *env.cli_args()]
    )
    data = json.loads(res.stdout)
    assert data["verdict"] == "keep" and data["rule"] == "old"
    assert any("launch configuration" in r for r in data["reasons"])
    assert {c["condition"] for c in data["checks"]} >= {"latest 1", "in_use", "shared"}
