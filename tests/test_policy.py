"""Policy parsing: errors name file:line and the key; schema; examples."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.errors import InputError
from amictl.policy import load_policy, parse_policy_text
from amictl.policy.schema import json_schema

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
BASE = (
    "format: 1\nrules:\n  - name: r\n    select: {families: ['*']}\n    retire: {deregister: 0d}\n"
)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_and_match_the_schema(path):
    load_policy(str(path))
    jsonschema.validate(yaml.safe_load(path.read_text()), json_schema())


def test_at_least_three_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize(
    "text,line,key,needle",
    [
        (BASE + "    colour: red\n", 6, "rules[0].colour", "unknown key"),
        (BASE.replace("0d}", "30 days}"), 5, "rules[0].retire.deregister", "not a duration"),
        (
            BASE.replace("retire: {deregister: 0d}", "retire: {deprecate: 10d, deregister: 5d}"),
            5,
            "rules[0].retire.deregister",
            "backwards",
        ),
        (
            BASE.replace("retire: {deregister: 0d}", "retire: {snapshots: delete}"),
            5,
            "rules[0].retire",
            "stage",
        ),
        (
            "format: 1\nfamilies:\n  name_pattern: '^(?P<family>.*)$'\n",
            3,
            "families.name_pattern",
            "version",
        ),
        (
            "format: 1\nfamilies:\n  name_pattern: '(['\n",
            3,
            "families.name_pattern",
            "regular expression",
        ),
        (
            "format: 1\nholds:\n  - {tag: x, deregistration_protection: true}\n",
            3,
            "holds[0]",
            "exactly one",
        ),
        (
            BASE + "  - name: r\n    select: {}\n    retire: {deregister: 0d}\n",
            6,
            "rules[1].name",
            "duplicate",
        ),
        (
            BASE.replace(
                "select: {families: ['*']}", "select: {families: ['*']}\n    keep: {latest: -1}"
            ),
            5,
            "rules[0].keep.latest",
            "at least 0",
        ),
        (
            BASE.replace(
                "select: {families: ['*']}", "select: {families: ['*']}\n    keep: {latest: two}"
            ),
            5,
            "rules[0].keep.latest",
            "whole number",
        ),
        ("format: 2\n", 1, "format", "format 1"),
        (
            BASE.replace("retire: {deregister: 0d}", "retire: {deregister: 0d, snapshots: shred}"),
            5,
            "rules[0].retire.snapshots",
            "delete, archive, keep",
        ),
    ],
)
def test_errors_name_file_line_key(text, line, key, needle):
    with pytest.raises(InputError) as e:
        parse_policy_text(text, "p.yaml")
    assert (e.value.file, e.value.line, e.value.key) == ("p.yaml", line, key), str(e.value)
    assert needle in str(e.value)


def test_cli_validate_exit_codes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "    colour: red\n")
    from amictl.cli import main as climain

    with pytest.raises(SystemExit) as e:
        climain.main(["policy", "validate", str(bad)])
    assert e.value.code == 2
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    res = CliRunner().invoke(cli, ["policy", "validate", str(good), "-o", "json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["valid"]


def test_schema_command_prints_the_generated_schema():
    res = CliRunner().invoke(cli, ["policy", "schema"])
    schema = json.loads(res.stdout)
    assert (
        schema["properties"]["rules"]["items"]["properties"]["keep"]["properties"]["latest"]["type"]
        == "integer"
    )
    assert schema["additionalProperties"] is False
