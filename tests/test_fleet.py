"""Fleet files: validation with file:line errors; the built-in fleets."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.errors import InputError
from amictl.sandbox import builtin
from amictl.sandbox.fleet import parse_text

GOOD = """\
format: 1
regions: [us-east-1, eu-west-1]
images:
  - alias: web-v1
    tags: {family: web, version: "1"}
  - {alias: web-v2, region: eu-west-1}
launch_templates:
  - {alias: lt, versions: [{image: web-v1}]}
auto_scaling_groups:
  - {alias: asg, launch_template: lt}
"""


def test_good_fleet_fills_defaults():
    f = parse_text(GOOD)
    assert f.images[0]["name"] == "web-v1" and f.images[0]["region"] == "us-east-1"
    assert f.images[0]["snapshots"][0]["size_gib"] == 8
    assert f.auto_scaling_groups[0]["region"] == "us-east-1"


@pytest.mark.parametrize(
    "text,line,needle",
    [
        ("images:\n  - alias: a\n    colour: blue\n", 3, "images[0].colour: unknown key"),
        (
            "images:\n  - {alias: a}\ninstances:\n  - {alias: i, image: nope}\n",
            4,
            "no image has alias 'nope'",
        ),
        ("images:\n  - {alias: a}\n  - {alias: a}\n", 3, "duplicate alias"),
        ("images:\n  - {alias: a, age_days: old}\n", 2, "expected int or float"),
        (
            "regions: [us-east-1]\nimages:\n  - {alias: a, region: eu-west-1}\n",
            3,
            "not in the fleet's regions",
        ),
        (
            "images:\n  - {alias: a}\nlaunch_templates:\n  - {alias: lt, versions: [{image: a}], default_version: 3}\n",
            4,
            "default_version",
        ),
        ("account: 42\n", 1, "12 digits"),
        ("images: [\n", 2, "YAML syntax error"),
    ],
)
def test_bad_fleets_name_file_line_and_key(text, line, needle):
    with pytest.raises(InputError) as e:
        parse_text(text, "fleet.yaml")
    assert e.value.file == "fleet.yaml"
    assert e.value.line == line, str(e.value)
    assert needle in str(e.value)


def test_cli_bad_fleet_exits_2_with_file_line(tmp_path, sandbox, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("images:\n  - alias: a\n    colour: blue\n")
    monkeypatch.setenv("AMICTL_SANDBOX_HOME", str(sandbox.home))
    from amictl.cli import main as climain

    with pytest.raises(SystemExit) as e:
        climain.main(["sandbox", "load", str(bad)])
    assert e.value.code == 2


def test_demo_fleet_is_deterministic_and_complete():
    a, b = builtin.demo(7), builtin.demo(7)
    assert a == b
    f = builtin.build("demo", seed=7)
    assert 4 <= len({i["tags"].get("family") for i in f.images if i["tags"].get("family")}) <= 8
    assert any(i["public"] for i in f.images) and any(i["shared_with"] for i in f.images)
    assert any(i["disabled"] for i in f.images) and any(i["deprecated_days_ago"] for i in f.images)
    assert any("legal-hold" in i["tags"] for i in f.images)
    assert f.launch_configurations and f.ssm_parameters and f.auto_scaling_groups
    assert any(s["made_for_deleted_image"] for s in f.snapshots)
    assert any(not s["made_for_deleted_image"] for s in f.snapshots)
    assert len(f.regions) == 2


def test_large_fleet_is_sized_by_options():
    f = builtin.build(
        "large",
        seed=1,
        images=200,
        snapshots=300,
        instances=50,
        launch_templates=10,
        lt_versions=5,
        regions=2,
    )
    c = f.counts()
    assert (c["images"], c["snapshots"], c["instances"], c["launch_template_versions"]) == (
        200,
        300,
        50,
        50,
    )


def test_sandbox_load_json_prints_alias_map(tmp_path, sandbox, monkeypatch):
    good = tmp_path / "fleet.yaml"
    good.write_text("account: '333344445555'\n" + GOOD)
    monkeypatch.setenv("AMICTL_SANDBOX_HOME", str(sandbox.home))
    res = CliRunner().invoke(cli, ["sandbox", "load", str(good), "-o", "json"])
    assert res.exit_code == 0, res.output
    import json

    aliases = json.loads(res.stdout)["aliases"]
    assert set(aliases) == {"web-v1", "web-v2", "lt", "asg"}
    assert aliases["web-v1"].startswith("ami-") and aliases["lt"].startswith("lt-")


def test_sandbox_up_status_down_leaves_no_process(tmp_path, monkeypatch):
    import os
    import time

    from amictl.sandbox.control import Sandbox

    monkeypatch.setenv("AMICTL_SANDBOX_HOME", str(tmp_path / "sb"))
    r = CliRunner()
    res = r.invoke(cli, ["sandbox", "up", "--port", "0", "-o", "json"])
    assert res.exit_code == 0, res.output
    import json

    info = json.loads(res.stdout)
    pid = info["pid"]
    assert info["export"].startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:")
    res = r.invoke(cli, ["sandbox", "status", "-o", "json"])
    assert json.loads(res.stdout)["running"] is True
    assert r.invoke(cli, ["sandbox", "down"]).exit_code == 0
    time.sleep(0.2)
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            alive = not fh.read().split(") ", 1)[1].startswith("Z")
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive
    assert Sandbox(tmp_path / "sb").running() is None
