"""lint: conventions file validation, violations, --strict, --fix (journaled, live re-check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amictl import conventions
from amictl.cli.main import cli
from amictl.errors import InputError
from amictl.model import Image
from amictl.state.store import Store
from cli_fleet import invoke

CONVENTIONS = """\
name_template: "{family}-{version}"
required_tags:
  owner: "[a-z]+"
allowed_families: ["app", "web-*"]
"""

FLEET = """
images:
  - {alias: good, name: app-1.2.0, tags: {family: app, version: 1.2.0, owner: ops}}
  - {alias: untagged, name: web-server-2.0, tags: {owner: ops}}
  - {alias: ambiguous, name: app-1-2, tags: {owner: ops}}
  - {alias: badname, name: "Random Image", tags: {owner: ops}}
  - {alias: badfam, name: db-3, tags: {family: db, version: "3", owner: ops}}
  - {alias: noowner, name: app-7, tags: {family: app, version: "7"}}
  - {alias: mismatch, name: app-8, tags: {family: app, version: "9", owner: ops}}
"""


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env = env
        self.tmp_path = tmp_path
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)
        monkeypatch.chdir(tmp_path)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return invoke([*args, *self.env.cli_args()])


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    (tmp_path / "amictl-conventions.yaml").write_text(CONVENTIONS)
    return Cli(env, tmp_path, monkeypatch)


def tags_of(ec2, image_id: str) -> dict[str, str]:
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return {t["Key"]: t["Value"] for t in img.get("Tags", [])}


def test_violations_listed_and_strict_exit_1(env, run):
    ids = env.load(FLEET)["aliases"]
    code, out, err = run("lint", "-o", "json")
    assert code == 0, out + err
    data = json.loads(out)
    got = {(v["image_id"], v["rule"]) for v in data["violations"]}
    assert got == {
        (ids["badname"], "name"),
        (ids["badfam"], "family"),
        (ids["noowner"], "required-tag"),
        (ids["mismatch"], "name-tags"),
    }
    assert not any(v["image_id"] == ids["good"] for v in data["violations"])
    assert all(v["region"] == "us-east-1" for v in data["violations"])
    code, out, err = run("lint")
    assert code == 0 and "name-tags" in out
    code, out, err = run("lint", "--strict")
    assert code == 1, out + err


def test_strict_clean_exit_0(env, run, tmp_path):
    env.load("images:\n  - {alias: a, name: app-1, tags: {family: app, version: '1', owner: x}}\n")
    code, out, err = run("lint", "--strict")
    assert code == 0, out + err


def test_required_tag_null_means_present(env, run, tmp_path):
    ids = env.load("images:\n  - {alias: a, name: app-1, tags: {owner: x}}\n")["aliases"]
    f = tmp_path / "c.yaml"
    f.write_text("required_tags: {family: null, owner: null}\n")
    code, out, _ = run("lint", "--conventions", str(f), "-o", "json")
    assert code == 0
    vs = json.loads(out)["violations"]
    assert [(v["image_id"], v["rule"], v["detail"]) for v in vs] == [
        (ids["a"], "required-tag", "tag 'family' is missing")
    ]


@pytest.mark.parametrize(
    "text,line,key",
    [
        ("name_template: '{family}-{version}'\nbogus: 1\n", 2, "bogus"),
        ("required_tags:\n  owner: '[a-z'\n", 2, "required_tags.owner"),
        ("name_template: '{family'\n", 1, "name_template"),
        ("name_template: 'plain'\n", 1, "name_template"),
        ("allowed_families: [web, 3]\n", 1, "allowed_families[1]"),
        ("version_pattern: '(?P<x>\\d+)'\n", 1, "version_pattern"),
        ("required_tags: [owner]\n", 1, "required_tags"),
    ],
)
def test_bad_conventions_file_exit_2_with_file_line(run, tmp_path, text, line, key):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as e:
        conventions.load(str(f))
    assert e.value.line == line and e.value.key == key and e.value.file == str(f)
    code, out, err = run("lint", "--conventions", str(f))
    assert code == 2
    assert f"{f}:{line}" in str(e.value)


def test_missing_default_file_exit_2(env, run, tmp_path):
    (tmp_path / "amictl-conventions.yaml").unlink()
    code, _, _ = run("lint")
    assert code == 2


def test_example_file_is_valid():
    path = Path(__file__).resolve().parents[1] / "examples" / "conventions.yml"
    conv = conventions.load(str(path))
    assert conv.allowed_families and "owner" in conv.required_tags


def test_template_parses_and_ambiguity():
    conv = conventions.parse({}, conventions.model.Positions("<t>"))
    assert conv.parses("web-server-1.2.3") == [{"family": "web-server", "version": "1.2.3"}]
    assert conv.parses("app-2-rc1") == [{"family": "app", "version": "2-rc1"}]
    assert len(conv.parses("app-1-2")) == 2
    assert conv.parses("nope") == []
    assert conv.name_regex.startswith("^(?P<family>")


def test_fix_plan_is_pure_and_skips_ambiguous():
    conv = conventions.parse({}, conventions.model.Positions("<t>"))
    imgs = [
        Image("ami-1", "111", "us-east-1", name="web-3", owner_id="111"),
        Image("ami-2", "111", "us-east-1", name="app-1-2", owner_id="111"),
        Image("ami-3", "111", "us-east-1", name="db-4", owner_id="111", tags={"family": "x"}),
        Image("ami-4", "111", "us-east-1", name="db-5", owner_id="111", tags={"family": "db"}),
        Image("ami-5", "111", "us-east-1", name="ext-1", owner_id="999"),
    ]
    plan = conventions.plan_fixes(imgs, conv)
    assert [(a["image_id"], a["tags"]) for a in plan.actions] == [
        ("ami-4", {"version": "5"}),
        ("ami-1", {"family": "web", "version": "3"}),
    ]
    assert {u["image_id"] for u in plan.untouched} == {"ami-2", "ami-3"}
    assert plan.checksum == conventions.lint.checksum_of(plan.body())


def test_fix_tags_images_and_journals(env, run, tmp_path):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    code, out, err = run("lint", "--fix")  # no terminal, no --yes: refuses
    assert code == 2 and "confirmation" in err  # issue 31: one code
    assert "family" not in tags_of(ec2, ids["untagged"])
    code, out, err = run("lint", "--fix", "--yes", "-o", "json")
    assert code == 0, out + err
    data = json.loads(out)
    fix = data["fix"]
    assert [a["image_id"] for a in fix["actions"]] == [ids["untagged"]]
    assert fix["actions"][0]["tags"] == {"family": "web-server", "version": "2.0"}
    untouched = {u["image_id"]: u["reason"] for u in fix["untouched"]}
    assert "ambiguous" in untouched[ids["ambiguous"]]
    assert ids["badname"] in untouched
    assert data["result"]["done"] == ["f1"]
    assert tags_of(ec2, ids["untagged"])["family"] == "web-server"
    assert tags_of(ec2, ids["untagged"])["version"] == "2.0"
    t = tags_of(ec2, ids["ambiguous"])
    assert "family" not in t and "version" not in t
    body = dict(fix)
    checksum = body.pop("checksum")
    assert checksum == conventions.lint.checksum_of(body)
    rows = Store(f"sqlite:///{tmp_path}/state.db").journal_rows(plan_checksum=checksum)
    assert [(r["action_id"], r["type"], r["resource"], r["status"]) for r in rows] == [
        ("f1", "tag", ids["untagged"], "intended"),
        ("f1", "tag", ids["untagged"], "done"),
    ]
    # a second run has nothing left to fix
    code, out, err = run("lint", "--fix", "--yes", "-o", "json")
    assert code == 0 and json.loads(out)["result"] is None


def test_fix_rechecks_live_before_tagging(env, run, tmp_path):
    ids = env.load(
        """
images:
  - {alias: a, name: app-1, tags: {owner: x}}
  - {alias: b, name: app-2, tags: {owner: x}}
  - {alias: c, name: app-3, tags: {owner: x}}
"""
    )["aliases"]
    ec2 = env.client("ec2")
    conv = conventions.load(str(tmp_path / "amictl-conventions.yaml"))
    conn = env.connector()
    targets = conn.targets()
    from amictl.inventory.scan import scan

    plan = conventions.plan_fixes(scan(conn, targets, kinds=["images"]).images, conv)
    assert len(plan.actions) == 3
    # since the scan: one image got its tags by other means, one was deregistered
    ec2.create_tags(Resources=[ids["a"]], Tags=[{"Key": "version", "Value": "1"}])
    ec2.deregister_image(ImageId=ids["b"])
    store = Store(f"sqlite:///{tmp_path}/s.db")
    res = conventions.apply_fixes(conn, store, plan, targets)
    by_image = {a["image_id"]: a["id"] for a in plan.actions}
    assert res.done == [by_image[ids["c"]]]
    assert by_image[ids["a"]] in res.skipped and "appeared" in res.skipped[by_image[ids["a"]]]
    assert by_image[ids["b"]] in res.not_found
    assert "family" not in tags_of(ec2, ids["a"])
    statuses = [
        (r["action_id"], r["status"]) for r in store.journal_rows(plan_checksum=plan.checksum)
    ]
    assert (by_image[ids["a"]], "intended") not in statuses
    assert (by_image[ids["c"]], "intended") in statuses


def test_iam_policy_lint(run):
    res = CliRunner().invoke(cli, ["iam-policy", "lint"])
    actions = {a for st in json.loads(res.stdout)["Statement"] for a in st["Action"]}
    assert {"ec2:DescribeImages", "ec2:CreateTags"} <= actions
    assert "ec2:DeregisterImage" not in actions
