"""Bake and promotion gates agree (issue 23 item 4, issue 19 item 5): one source for the tag
names, the doc's gate example passes for a baked image (in every copy region too), a gate
asking for a tested image reads the bake journal, and the ``amictl:`` namespace is amictl's."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from amictl import channels
from amictl.aws.session import Target
from amictl.conventions.lint import FixPlan, apply_fixes
from amictl.creation import bake_journal
from amictl.creation.bake import bake
from amictl.creation.recipe import parse_recipe_text
from amictl.creation.runsteps import Waits
from amictl.errors import InputError, SafetyError
from amictl.state.store import Store
from amictl.tagnames import (
    ABANDONED,
    BAKE_STATUS_TAG,
    BAKE_STATUSES,
    BUILDING,
    BUILT,
    FAILED,
    RESERVED_TAG_PREFIX,
    TESTED,
    bake_failed,
)
from cli_fleet import invoke

DOCS = Path(__file__).resolve().parent.parent / "docs"

FLEET = """
images:
  - {alias: base1, name: base-al2023-1.0.0, tags: {family: base-al2023, version: "1.0.0"}, age_days: 20}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/base-al2023/prod, image: base1, data_type: "aws:ec2:image"}
"""

RECIPE = """\
format: 1
family: gated
version: {bump: minor}
source: {image: base-al2023@prod}
builder: {instance_type: t3.micro, ready_timeout: 30s}
provision:
  - {name: install, shell: dnf install -y nginx, timeout: 2m}
image:
  tags: {team: web}
  copy_to: [eu-west-1]
tests:
  steps:
    - {name: nginx-active, shell: systemctl is-active nginx, timeout: 1m}
promote: staging
"""

REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture
def outcomes(sandbox):
    yield sandbox
    sandbox.set_run_command(clear=True)
    sandbox.set_ssm(reset=True)


def doc_gates(tmp_path: Path) -> str:
    """The gates example of docs/cli.md (section `amictl promote`), as a file."""
    text = (DOCS / "cli.md").read_text()
    section = text[text.index("### `amictl promote`") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "docs/cli.md's promote section has a gates example"
    path = tmp_path / "gates.yaml"
    path.write_text(block.group(1))
    return str(path)


def baked(env, tmp_path, text=RECIPE):
    conn = env.connector(regions=REGIONS)
    store = Store(f"sqlite:///{tmp_path}/state.db")
    t = conn.targets()[0]
    target = Target(t.account, "us-east-1", t.role_arn)
    recipe = parse_recipe_text(text, str(tmp_path / "gated.recipe.yaml"))
    rec = bake(conn, target, recipe, store, waits=Waits.fast())
    return conn, store, rec


def tags_of(env, region: str, image_id: str) -> dict[str, str]:
    img = env.client("ec2", region).describe_images(ImageIds=[image_id])["Images"][0]
    return {t["Key"]: t["Value"] for t in img.get("Tags", [])}


def test_bake_failed_and_the_status_values():
    assert BAKE_STATUS_TAG.startswith(RESERVED_TAG_PREFIX)
    assert set(BAKE_STATUSES) == {BUILDING, TESTED, BUILT, FAILED, ABANDONED}
    assert bake_failed({BAKE_STATUS_TAG: FAILED}) and bake_failed({BAKE_STATUS_TAG: ABANDONED})
    for ok in (TESTED, BUILT, BUILDING):
        assert not bake_failed({BAKE_STATUS_TAG: ok})
    assert not bake_failed({}) and not bake_failed({"status": FAILED})


def test_the_docs_gate_example_passes_for_a_baked_image_in_every_copy_region(
    env, tmp_path, outcomes
):
    env.load(FLEET)
    conn, store, rec = baked(env, tmp_path)
    assert rec["status"] == "succeeded", rec
    (copy,) = rec["copies"]
    # promoted to staging where it was made AND in the copy region
    assert {(r["region"], r["image_id"]) for r in rec["promoted"]} == {
        ("us-east-1", rec["image_id"]),
        ("eu-west-1", copy["image_id"]),
    }
    for region, image_id in (("us-east-1", rec["image_id"]), ("eu-west-1", copy["image_id"])):
        assert tags_of(env, region, image_id)[BAKE_STATUS_TAG] == TESTED
    made = bake_journal.made_image(store, rec["account"], "eu-west-1", copy["image_id"])
    assert made and made["tested"] and made["copy"] and made["bake_id"] == rec["bake_id"]
    gates = channels.load_gates(doc_gates(tmp_path), bake_journal.lookup(store))
    assert gates["prod"].requires_tested
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=4)  # past the example's min_days_in
    targets = conn.targets()
    assert {t.region for t in targets} == set(REGIONS)
    rows = channels.promote(conn, targets, "gated", rec["version"], "prod", gates, now=later)
    assert sorted((r["region"], r["status"]) for r in rows) == [
        ("eu-west-1", "promoted"),
        ("us-east-1", "promoted"),
    ]
    # the same gate, too early: closed by min_days_in, not by the tag (the example is sound)
    with pytest.raises(SafetyError, match="min_days_in") as exc:
        channels.promote(conn, targets, "gated", rec["version"], "prod2", {"prod2": gates["prod"]})
    assert "requires_tag" not in exc.value.message


def test_a_gate_for_tested_images_reads_the_journal_not_only_the_tag(env, tmp_path, outcomes):
    forged = (
        '  - {alias: forged, name: gated-9.0.0, tags: {family: gated, version: "9.0.0", '
        '"amictl:bake-status": tested}}\n'
    )
    ids = env.load(FLEET.replace("ssm_parameters:", forged + "ssm_parameters:"))["aliases"]
    store = Store(f"sqlite:///{tmp_path}/state.db")
    gate_file = tmp_path / "gates.yaml"
    gate_file.write_text("channels:\n  prod:\n    requires_tag: {amictl:bake-status: tested}\n")
    conn = env.connector()
    gates = channels.load_gates(str(gate_file), bake_journal.lookup(store))
    with pytest.raises(SafetyError, match="no bake in the journal") as exc:
        channels.promote(conn, conn.targets(), "gated", "9.0.0", "prod", gates)
    assert ids["forged"] in exc.value.message
    # without a journal to ask, the gate stays closed too
    with pytest.raises(SafetyError, match="no bake journal"):
        channels.promote(
            conn, conn.targets(), "gated", "9.0.0", "prod", channels.load_gates(str(gate_file))
        )
    # and through the CLI: exit 3, nothing written
    code, out, err = invoke(
        ["promote", "gated", "9.0.0", "--channel", "prod", "--gates", str(gate_file)]
        + env.cli_args(),
        env.cli_env(tmp_path),
    )
    assert code == 3, out + err
    assert "no bake in the journal" in err


def test_a_bake_whose_tests_failed_is_not_tested_in_the_journal(env, tmp_path, outcomes):
    env.load(FLEET)
    outcomes.set_run_command("comment:* test nginx-active", status="Failed", response_code=3)
    conn, store, rec = baked(env, tmp_path)
    assert rec["status"] == "failed" and rec["image_id"]
    # someone re-tags it tested by hand: the journal still says no
    env.client("ec2").create_tags(
        Resources=[rec["image_id"]], Tags=[{"Key": BAKE_STATUS_TAG, "Value": TESTED}]
    )
    made = bake_journal.made_image(store, rec["account"], "us-east-1", rec["image_id"])
    assert made and not made["tested"] and made["status"] == "failed"
    gate_file = tmp_path / "gates.yaml"
    gate_file.write_text("channels:\n  prod:\n    requires_tag: {amictl:bake-status: tested}\n")
    gates = channels.load_gates(str(gate_file), bake_journal.lookup(store))
    with pytest.raises(SafetyError, match="did not pass its tests"):
        channels.promote(conn, [conn.targets()[0]], "gated", rec["version"], "prod", gates)


@pytest.mark.parametrize("key", ["amictl:bake-status", "AMICTL:tested", "amictl:recipe"])
def test_a_recipe_may_not_set_amictl_tags(tmp_path, key):
    text = RECIPE.replace("tags: {team: web}", f'tags: {{team: web, "{key}": tested}}')
    path = tmp_path / "r.recipe.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        parse_recipe_text(text, str(path))
    assert exc.value.line == 9 and exc.value.key == f"image.tags.{key}"
    code, _out, err = invoke(["recipe", "validate", str(path)])
    assert code == 2
    assert f"{path}:9: image.tags.{key}:" in err and "reserved" in err


def test_lint_fix_never_writes_amictl_tags(env, tmp_path):
    ids = env.load("images:\n  - {alias: a, name: web-1.0.0}\n")["aliases"]
    plan = FixPlan(conventions={"path": None, "sha256": None}, created_at="2026-01-01T00:00:00Z")
    plan.actions.append(
        {
            "id": "f1",
            "type": "tag",
            "account": env.account,
            "region": "us-east-1",
            "image_id": ids["a"],
            "name": "web-1.0.0",
            "tags": {"family": "web", "amictl:bake-status": "tested"},
        }
    )
    conn = env.connector()
    store = Store(f"sqlite:///{tmp_path}/state.db")
    result = apply_fixes(conn, store, plan, conn.targets())
    assert result.done == [] and "reserved" in result.skipped["f1"]
    assert tags_of(env, "us-east-1", ids["a"]) == {}


@pytest.mark.parametrize("status", [FAILED, ABANDONED])
def test_a_bake_refuses_a_source_whose_own_bake_failed(env, tmp_path, outcomes, status):
    ids = env.load(
        FLEET.replace('version: "1.0.0"}', f'version: "1.0.0", "{BAKE_STATUS_TAG}": {status}}}')
    )["aliases"]
    with pytest.raises(SafetyError, match="is a bake that is (failed|abandoned)") as exc:
        baked(env, tmp_path)
    assert ids["base1"] in exc.value.message and exc.value.exit_code == 3
    resv = env.client("ec2").describe_instances()["Reservations"]
    assert resv == []  # refused before anything was launched
